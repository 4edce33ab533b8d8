"""`edge run --config FILE`: the daemon's YAML configuration, validated into typed objects.

Why YAML rather than TOML: TOML needs `tomli` on Python 3.9/3.10 (tomllib is 3.11+) anyway, so neither is free;
YAML is what the fleet tooling speaks (Ansible templates and `to_nice_yaml` write it natively, no TOML filter),
keeps comments, and PyYAML is a small package (pure Python fallback, libyaml when present) shipped by every
distribution (python3-yaml). YAML's traps are closed here: safe_load only, duplicate keys are errors, and the
validator is strict about types (`no` is not a string, `"5"` is not a number).

Why no pydantic: pydantic-core is a ~5 MB compiled extension (more to install and seconds to import on a Pi
Zero) for ~40 settings; `edge.typed` (dataclasses + a small validator) gives the same typed objects, errors that
name the key path (`sinks.mqtt.qos: must be 0, 1 or 2, got 5`) and the JSON Schema from the same definitions.

Secrets are never needed in the file: a config names an environment variable (`password_env`) or a systemd
credential (`password_credential`, read from $CREDENTIALS_DIRECTORY/NAME), resolved when `edge run` starts.
PyYAML is imported only when a config is read (`pip install 'edge[service]'`); `import edge` never loads it.
Regenerate the committed schema: `python -m edge.service.config --schema > edge/schema/config.schema.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from ..bundle import is_bundle, read_bundle
from ..errors import ConfigError, EdgeError, FamilyMismatch
from ..schema import schema_path
from ..settings import Config, HttpConfig
from ..stream.analytics import check as check_analytics
from ..stream.sources import open_source
from ..typed import collect, schema

EX_CONFIG = 78
SCHEMA_PATH = schema_path("config")
MAX_BYTES = 1 << 20  # a config is a few KiB; a bigger file is a mistake or an attack
MAX_NODES = 100_000  # YAML nodes after alias expansion: stops "billion laughs" before anything is built
MAX_DEPTH = 64


def parse(data: object) -> Config:
    """A Config from plain data (what YAML gives); ConfigError lists every problem, one `key.path: problem` a line."""
    errors: list = []
    config = collect(Config, data, errors)
    problems = [str(e) for e in errors] + (rules(config) if config is not None else [])
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def rules(config: Config) -> List[str]:
    """The problems no single field shows: cross-field rules and what the sinks' constructors would reject."""
    problems = []
    if not config.sources:
        problems.append("sources: needs at least one source")
    names = [s.name for s in config.sources if s.name]
    problems += [f"sources: name {name!r} is used twice" for i, name in enumerate(names) if name in names[:i]]
    try:
        check_analytics(config)
    except ConfigError as e:
        problems.append(str(e))
    if not config.model.path:
        problems.append("model.path: must not be empty")
    mqtt, http, jsonl = config.sinks.mqtt, config.sinks.http, config.sinks.jsonl
    if mqtt and mqtt.password_env and mqtt.password_credential:
        problems.append("sinks.mqtt: set password_env or password_credential, not both")
    if mqtt and mqtt.username and mqtt.username_env:
        problems.append("sinks.mqtt: set username or username_env, not both")
    if http and sum(bool(x) for x in (http.token, http.token_env, http.token_credential)) > 1:
        problems.append("sinks.http: set one of token, token_env or token_credential")
    if http and int(http.listen.rpartition(":")[2]) > 65535:
        problems.append(f"sinks.http.listen: port must be at most 65535, got {http.listen!r}")
    if jsonl and not jsonl.path:
        problems.append("sinks.jsonl.path: must not be empty (a file path, or '-' for stdout)")
    return problems


def check(config: Config) -> List[str]:
    """What `edge run` would fail on at start-up, without starting anything: the model file, the sources' URIs,
    the JSON lines directory, TLS files and the HTTP token rule. Empty when all is well."""
    problems = []
    path = config.model.path
    if path and not os.path.exists(path):
        problems.append(f"model.path: {path} does not exist")
    elif os.path.isdir(path) and not os.path.isfile(os.path.join(path, "manifest.json")):
        problems.append(f"model.path: {path} is a directory without manifest.json (not a bundle)")
    elif config.model.family and is_bundle(path):
        problems += _family_problems(path, config.model.family)
    for i, s in enumerate(config.sources):
        try:
            open_source(s.uri, source_id=s.name, width=s.width, height=s.height, fps=s.fps, fourcc=s.fourcc)
        except EdgeError as e:
            problems.append(f"sources[{i}].uri: {e}")
    jsonl, mqtt, http = config.sinks.jsonl, config.sinks.mqtt, config.sinks.http
    if jsonl and jsonl.path and jsonl.path != "-":
        folder = os.path.dirname(os.path.abspath(jsonl.path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"sinks.jsonl.path: directory {folder} does not exist or is not writable by this user")
    for key in ("ca", "cert", "key"):
        value = getattr(mqtt, key, None)
        if value and not os.path.isfile(value):
            problems.append(f"sinks.mqtt.{key}: {value} is not a file")
    if http:
        problems += _http_problems(http)
    return problems


def _family_problems(bundle: str, family: str) -> List[str]:
    """model.family must agree with the bundle's manifest."""
    try:
        found = read_bundle(bundle, verify=False).manifest.family
    except EdgeError as e:
        return [f"model.path: {e}"]
    return [] if found == family else [FamilyMismatch(family, found, bundle, "manifest").text("model.family")]


def _http_problems(http: HttpConfig) -> List[str]:
    """The HTTP server's own rules: prometheus-client installed, a token off loopback."""
    try:
        from .server import TOKEN_ENV, is_loopback
    except ModuleNotFoundError as e:
        return [f"sinks.http: needs {e.name}: pip install 'edge[http]'"]
    host = http.listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
    if is_loopback(host) or http.token or http.token_env or http.token_credential or os.environ.get(TOKEN_ENV):
        return []
    return [f"sinks.http.listen: {host} is reachable from other machines; set a bearer token (token_env, "
            f"token_credential or {TOKEN_ENV}), or listen on 127.0.0.1"]


def validate(data: object, where: Optional[str] = None) -> Config:
    """parse() then check(): the one validation `edge run` and `edge check-config` share; ConfigError lists all."""
    try:
        config = parse(data)
    except ConfigError as e:
        raise _located(where, e) from None
    problems = check(config)
    if problems:
        raise _located(where, ConfigError("\n".join(problems)))
    return config


def load(path: str) -> Config:
    """Read and validate a YAML config file (structure and rules; check() does the file system)."""
    data = read(path)
    try:
        return parse(data)
    except ConfigError as e:
        raise _located(path, e) from None


def _located(where: Optional[str], error: ConfigError) -> ConfigError:
    """Each line of the error prefixed with `where: ` (the config file)."""
    return ConfigError("\n".join(f"{where}: {line}" for line in str(error).splitlines())) if where else error


def read(path: str) -> dict:
    """The plain data of a YAML config file (not validated yet); at most MAX_BYTES and MAX_NODES."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise MissingYaml("reading a config needs PyYAML: pip install 'edge[service]' "
                          "(or apt install python3-yaml)") from None
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a config file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r}); "
                          "save the file as UTF-8") from None
    try:
        data = _safe_load(yaml, text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    if data is None:
        raise ConfigError(f"{path}: empty config (expected model: and sources:)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with model: and sources:, got {type(data).__name__}")
    return data


class MissingYaml(EdgeError):
    """PyYAML is not installed: an installation problem (exit 1), not a bad config (78)."""


def _safe_load(yaml, text: str) -> object:
    """yaml.safe_load with duplicate keys refused and the node tree bounded (aliases counted as expanded)."""
    loader = _loader(yaml)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _bound(yaml, node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _bound(yaml, root) -> None:
    """Walk the composed nodes as the constructed data would repeat them; a ConstructorError past the limits."""
    stack, seen = [(root, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES or depth > MAX_DEPTH:
            what = f"more than {MAX_NODES} values" if seen > MAX_NODES else f"nested more than {MAX_DEPTH} deep"
            raise yaml.constructor.ConstructorError(None, None, f"{what} (aliases count as expanded)",
                                                    node.start_mark)
        if isinstance(node, yaml.MappingNode):
            stack += [(n, depth + 1) for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(n, depth + 1) for n in node.value]


def _loader(yaml) -> type:
    """yaml's safe loader (libyaml when available) that rejects duplicate and unhashable (list or map) keys."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[valid-type,misc]  # a base chosen at run time (libyaml or not)
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool, type(None))):
                    raise yaml.constructor.ConstructorError(None, None, f"a key must be a plain value, not a "
                                                            f"{type(key).__name__}", key_node.start_mark)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return Loader


def json_schema() -> dict:
    """The config's JSON Schema, generated from the dataclasses above."""
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://github.com/edge/edge/schema/config.schema.json",
            "title": "edge run configuration", **schema(Config)}


def schema_text() -> str:
    """The schema exactly as committed at edge/schema/config.schema.json."""
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m edge.service.config --schema`: print the JSON Schema (`edge check-config FILE` validates a file)."""
    parser = argparse.ArgumentParser(prog="python -m edge.service.config")
    parser.add_argument("--schema", action="store_true", required=True, help="print the JSON Schema")
    parser.parse_args(argv)
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
