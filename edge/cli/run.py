"""`edge run`: stream sources through a detector and publish events to sinks."""
from __future__ import annotations

import argparse
import functools
import logging
from typing import Optional

from ..errors import ConfigError, FamilyMismatch
from ..settings import Config, JsonlConfig
from ..stream.sources import split_name
from ..track import parse_line, parse_zone
from .flags import flag_error, given, lay_over, model_flags, setting, thresholds_used

log = logging.getLogger("edge")


def add_run_parser(sub) -> None:
    """Register the `run` subcommand."""
    p = sub.add_parser("run", help="stream camera/stream/file sources through the model and publish events")
    p.add_argument("--config", metavar="FILE", help="YAML config (edge/schema/config.schema.json); flags given "
                   "as well override its keys; SIGHUP re-reads it")
    model_flags(p, flag=True)
    p.add_argument("--source", action="append", metavar="[NAME=]URI",
                   help="synthetic[:WxH[@fps]], video file, image folder, /dev/videoN, v4l2:N, rtsp://, http(s)://, "
                        "gst:PIPELINE or picamera2[:N]; repeat for several sources (shared round-robin); replaces "
                        "the config's sources")
    for flag in ("all-frames", "every", "max-fps", "drop", "queue-size", "max-frames", "require-sources", "overlap", "batch"):
        setting(p, f"--{flag}", f"pipeline.{flag.replace('-', '_')}")
    for flag in ("width", "height", "fps", "fourcc"):
        setting(p, f"--{flag}", f"sources.{flag}", help=f"capture {flag} for every source (cameras, synthetic)")
    g = p.add_argument_group("sinks", "every event goes to each sink given here or in the config; with none, events "
                             "are printed to stdout as JSON lines (as with --jsonl -)")
    setting(g, "--jsonl", "sinks.jsonl.path", metavar="PATH", help="write events as JSON lines to PATH ('-': stdout)")
    setting(g, "--jsonl-max-bytes", "sinks.jsonl.max_bytes", metavar="N")
    setting(g, "--jsonl-backups", "sinks.jsonl.backups", metavar="N")
    setting(g, "--mqtt", "sinks.mqtt.url", metavar="URL",
            help="publish to an MQTT broker: mqtt[s]://[user:pass@]host[:port]")
    for flag in ("qos", "topic-prefix", "client-id", "ca", "cert", "key"):
        setting(g, f"--mqtt-{flag}", f"sinks.mqtt.{flag.replace('-', '_')}")
    setting(g, "--http", "sinks.http.listen", metavar="HOST:PORT",
            help="serve /healthz /readyz /metrics /latest /stream.mjpg /snapshot.jpg")
    setting(g, "--http-token", "sinks.http.token", metavar="TOKEN",
            help="bearer token (required off loopback; or EDGE_HTTP_TOKEN)")
    setting(g, "--http-max-age", "sinks.http.max_age", metavar="S")
    setting(g, "--http-preview-fps", "sinks.http.preview_fps", metavar="FPS")
    setting(g, "--webhook", "sinks.webhook.url", metavar="URL", help="POST each event to this URL")
    setting(g, "--webhook-timeout", "sinks.webhook.timeout", metavar="S")
    setting(g, "--webhook-retries", "sinks.webhook.retries", metavar="N")
    setting(g, "--sink-queue", "sinks.queue", metavar="N")
    a = p.add_argument_group("tracking, zones and lines")
    setting(a, "--track", "tracking.enabled", help="track objects: detections get a track_id (on with any --zone or "
            "--line; --no-track turns it off)")
    a.add_argument("--zone", action="append", default=[], metavar="[SOURCE/]NAME=x1,y1,x2,y2,x3,y3,...[:CLASSES]",
                   help="polygon zone (pixels, or all within 0..1), optionally only these comma-separated classes; "
                        "added to every source, or to SOURCE only; repeatable")
    a.add_argument("--line", action="append", default=[], metavar="[SOURCE/]NAME=x1,y1,x2,y2[:CLASSES]",
                   help="counting line; crossing from its left to its right (looking from point 1 to 2) counts as in")
    m = p.add_argument_group("event snapshots and clips")
    setting(m, "--media-dir", "media.dir", metavar="DIR", help="save a snapshot (and with --clip-seconds a clip) "
            "of each zone or line event here; served at /media/ by --http")
    setting(m, "--snapshots", "media.snapshots", action=argparse.BooleanOptionalAction)
    for flag in ("clip-seconds", "pre-roll-seconds"):
        setting(m, f"--{flag}", f"media.{flag.replace('-', '_')}", metavar="S")
    for flag in ("max-files", "max-mb", "max-age-hours"):
        setting(m, f"--media-{flag}", f"media.{flag.replace('-', '_')}", metavar="N")
    p.set_defaults(func=functools.partial(cmd_run, parser=p))


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run until the sources end, --max-frames, or SIGTERM/SIGINT; exit 78 (EX_CONFIG) on any configuration error."""
    from ..service.config import EX_CONFIG, check
    from ..service.daemon import Daemon

    if args.config is None and ("model.path" not in given(args) or not args.source):
        parser.error("--model and --source are required (or a --config FILE)")
    args.areas, args.area_paths = area_flags(args, parser), {}
    resolve = functools.partial(run_config, args)
    try:
        config = resolve()
        problems = check(config)  # what `edge check-config` checks beyond the settings themselves
        if problems:
            raise ConfigError("\n".join(located(p, args) for p in problems))
        try:
            daemon = Daemon(config, resolve, debug=args.debug)  # checks zone and line classes against the model's;
            # resolves the secrets (a missing one is a ConfigError)
        except FamilyMismatch as e:  # a raw model's metadata or outputs name another family
            raise ConfigError(located(e.text("model.family"), args)) from None
    except ConfigError as e:
        lines = str(e).splitlines()
        wrong_flags = [m for m in (wrong_flag(line, args) for line in lines) if m]
        if wrong_flags:
            parser.error("; ".join(wrong_flags))
        for line in lines:
            log.error("%s", line)
        return EX_CONFIG
    daemon.start()  # a file that cannot be read, a required source that is down: one error line, nothing else
    if hasattr(daemon, "pipeline"):  # unset when a SIGTERM came during the model load
        log.info("%s", thresholds_used(daemon.pipeline.detector, given(args))[1])
        loop = daemon.pipeline.loop()
        said = daemon.spinning()
        spinning = f", onnxruntime threads spin {said} (--spin)" if said else ""
        log.info("frame loop: %s, %d frame(s) per inference (--overlap, --batch)%s",
                 "overlapped" if loop["overlap"] else "one stage at a time", loop["batch"], spinning)
        if getattr(args, "stdout_sink", False):
            log.info("no sink given (--jsonl, --mqtt, --http, --webhook or the config's sinks): printing the events "
                     "to stdout as JSON lines")
    return daemon.run()


def located(line: str, args: argparse.Namespace) -> str:
    """A problem line prefixed with the config file's name, unless a flag caused it."""
    return line if not args.config or wrong_flag(line, args) else f"{args.config}: {line}"


def wrong_flag(line: str, args: argparse.Namespace) -> Optional[str]:
    """The usage error when a flag (or --zone/--line) caused this line of a ConfigError; None when the file did."""
    error = ConfigError(line)
    return flag_error(error, given(args)) or area_flag_error(error, getattr(args, "area_paths", {}))


def area_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list:
    """[(source name or None, "zones"/"lines", flag text, {name, points, classes})] of --zone/--line; usage error
    when one is malformed."""
    out = []
    for flag, kind, parse in (("--zone", "zones", parse_zone), ("--line", "lines", parse_line)):
        for text in getattr(args, flag[2:]):
            head, _, _ = text.partition("=")
            source, slash, _ = head.rpartition("/")
            try:
                area = parse(text[len(source) + len(slash):])
            except ValueError as e:
                parser.error(f"{flag} {text}: {e}")
            out.append((source or None, kind, f"{flag} {text}",
                        {"name": area.name, "points": [list(p) for p in area.points], "classes": list(area.classes)}))
    return out


def area_flag_error(error: ConfigError, paths: dict) -> Optional[str]:
    """`--zone door=...: unknown class 'x' ...` when a zone or line from a flag caused the error."""
    text = str(error)
    if text.startswith(("--zone ", "--line ")):
        return text
    for path, flag in paths.items():
        if text.startswith(path + ".") or text.startswith(path + ":"):
            return f"{flag}:{text.split(':', 1)[1]}"
    return None


def run_config(args: argparse.Namespace) -> Config:
    """The config file's settings (or none) with the flags given on the command line laid over them; ConfigError
    lists every problem, one a line."""
    from ..service.config import parse, read

    data = read(args.config) if args.config else {}
    if args.source:
        data["sources"] = [{"uri": uri, **({"name": name} if name else {})}
                           for name, uri in map(split_name, args.source)]
    lay_over(data, given(args))
    args.area_paths = add_areas(data, getattr(args, "areas", []))
    try:
        config = parse(data)
    except ConfigError as e:
        lines = str(e).splitlines()
        raise ConfigError("\n".join(located(line, args) for line in lines)) from None
    args.stdout_sink = not config.sinks.enabled()
    if args.stdout_sink:  # results are never thrown away silently (cmd_run says so once)
        config.sinks.jsonl = JsonlConfig(path="-")
    return config


def add_areas(data: dict, areas: list) -> dict:
    """Append the --zone/--line areas to their sources in the config data; returns {key path: flag} of each."""
    paths = {}
    sources = [s for s in data.get("sources") or [] if isinstance(s, dict)]
    names = [s.get("name") for s in sources]
    for source, kind, flag, area in areas:
        if source is not None and source not in names:
            raise ConfigError(f"{flag}: no source named {source!r}; name it: --source {source}=URI")
        for i, item in enumerate(sources):
            if source is None or names[i] == source:
                item.setdefault(kind, [])
                paths[f"sources[{i}].{kind}[{len(item[kind])}]"] = flag
                item[kind].append(dict(area))
    return paths
