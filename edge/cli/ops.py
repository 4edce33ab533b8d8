"""Operations subcommands: `edge check-config`, `edge doctor`, `edge health`."""
from __future__ import annotations

import argparse
import json
import logging

from ..errors import BackendUnavailable, ConfigError, EdgeError, FamilyMismatch

log = logging.getLogger("edge")


def add_ops_parsers(sub) -> None:
    """Register check-config, doctor and health."""
    p = sub.add_parser("check-config", help="validate an `edge run` config file (exit 78 when it is bad)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--no-load", action="store_true", help="do not load the model (validate on a machine without "
                   "the device's inference library)")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("doctor", help="check this device: libraries, backends, cameras, directories, the model")
    p.add_argument("--config", metavar="FILE", help="also check this config and its model "
                   "(default: /etc/edge/config.yaml when present)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("health", help="exit 0 only when the running daemon's frames and inferences are fresh")
    p.add_argument("--url", help="the daemon's HTTP sink (default: from --config, else http://127.0.0.1:8080)")
    p.add_argument("--config", metavar="FILE", help="take the URL (and token) from this config's sinks.http")
    p.add_argument("--token-env", metavar="NAME", help="environment variable with the bearer token "
                   "(default EDGE_HTTP_TOKEN)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S", help="keep asking up to S seconds until healthy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the file as `edge run` would (every problem, one a line), then check the model as `edge run` starts
    it: a raw file's family, a damaged model, a missing inference library, zone/line classes the model lacks.
    Secrets are resolved only by `edge run`."""
    from ..service.config import EX_CONFIG, read, validate

    try:
        config = validate(read(args.file), where=args.file)
        if not args.no_load:
            _load_model(config)
    except ConfigError as e:
        for line in str(e).splitlines():
            log.error("%s", line if line.startswith(f"{args.file}:") else f"{args.file}: {line}")
        return EX_CONFIG
    except EdgeError as e:  # the model itself (damaged, unsupported, its library missing): 1, as `edge run` exits
        log.error("%s: model.path: %s", args.file, e)
        return 1
    print(f"{args.file}: ok (model {config.model.path}; {len(config.sources)} source(s); "
          f"sinks: {', '.join(config.sinks.enabled()) or 'none (edge run prints the events to stdout)'})")
    return 0


def _load_model(config) -> None:
    """What `edge run` finds when it starts the model: a raw file is loaded (its family, whether it loads at all), a
    bundle is read from its manifest (its TensorRT engine may not be built yet); then the zone/line classes are
    checked against the model's. ConfigError for what the config says wrong, the model's EdgeError otherwise."""
    from ..bundle import is_bundle, read_bundle
    from ..detector import load_detector
    from ..names import load_names
    from ..stream.analytics import source_analytics

    model = config.model
    if is_bundle(model.path):
        bundle = read_bundle(model.path)  # its checksum too, as edge run checks it
        names = load_names(model.names) if model.names else bundle.contract.names
    else:
        try:
            detector = load_detector(model, config.thresholds)
        except FamilyMismatch as e:
            raise ConfigError(e.text("model.family")) from None
        except BackendUnavailable as e:
            raise BackendUnavailable(f"{e} (check-config --no-load validates without it)") from None
        names = detector.names
        detector.backend.close()
    source_analytics(config, names)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the checks; exit 1 with one fix-it line per blocking problem."""
    from ..service.doctor import diagnose, report

    result = report(diagnose(args.config))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for check in result["checks"]:
            print(f"{check['status'].upper():<5} {check['name']:<22} {check['detail']}")
        for fix in result["fixes"]:
            print(f"fix: {fix}")
    return 0 if result["ok"] else 1


def cmd_health(args: argparse.Namespace) -> int:
    """Ask /readyz (and /latest); 0 ready, 1 not ready, 3 not running or unreachable."""
    from ..service.doctor import default_config
    from ..service.health import DEFAULT_URL, token_from_env, url_from_config, wait_healthy

    url, token = args.url, token_from_env(args.token_env)
    config = args.config or (None if url else default_config())
    if config:
        from_config, config_token = url_from_config(config)
        url, token = url or from_config, token or config_token
    code, result = wait_healthy(url or DEFAULT_URL, token, args.wait)
    if args.json:
        print(json.dumps(result))
    else:
        latest = result.get("latest") or {}
        detail = f" (last event {latest['age_s']} s ago from {latest['source']})" if latest else ""
        print(f"{result['url']}: " + ("healthy" + detail if result["ok"] else "; ".join(result["reasons"])))
    return code
