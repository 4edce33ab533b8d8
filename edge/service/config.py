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
import sys
from typing import List, Optional

from ..errors import ConfigError
from ..schema import schema_path
from ..settings import Config
from ..stream.analytics import check as check_analytics
from ..typed import ValidationError, build, schema

EX_CONFIG = 78
SCHEMA_PATH = schema_path("config")


def parse(data: object) -> Config:
    """A Config from plain data (what YAML gives); ConfigError names the key path and the problem."""
    try:
        config = build(Config, data)
    except ValidationError as e:
        raise ConfigError(str(e)) from None
    if not config.sources:
        raise ConfigError("sources: needs at least one source")
    names = [s.name for s in config.sources if s.name]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"sources: name {name!r} is used twice")
    check_analytics(config)
    mqtt, http = config.sinks.mqtt, config.sinks.http
    if mqtt and mqtt.password_env and mqtt.password_credential:
        raise ConfigError("sinks.mqtt: set password_env or password_credential, not both")
    if mqtt and mqtt.username and mqtt.username_env:
        raise ConfigError("sinks.mqtt: set username or username_env, not both")
    if http and sum(bool(x) for x in (http.token, http.token_env, http.token_credential)) > 1:
        raise ConfigError("sinks.http: set one of token, token_env or token_credential")
    if http and int(http.listen.rpartition(":")[2]) > 65535:
        raise ConfigError(f"sinks.http.listen: port must be at most 65535, got {http.listen!r}")
    return config


def load(path: str) -> Config:
    """Read and validate a YAML config file."""
    data = read(path)
    try:
        return parse(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read(path: str) -> dict:
    """The plain data of a YAML config file (not validated yet)."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise ConfigError("reading a config needs PyYAML: pip install 'edge[service]' "
                          "(or apt install python3-yaml)") from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_loader(yaml))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise ConfigError(f"{path}: empty config (expected model: and sources:)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with model: and sources:, got {type(data).__name__}")
    return data


def _loader(yaml) -> type:
    """yaml's safe loader (libyaml when available) that rejects duplicate keys."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[valid-type,misc]  # a base chosen at run time (libyaml or not)
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
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
    """`python -m edge.service.config --schema`: print the JSON Schema (validate a file with `edge check-config FILE`)."""
    parser = argparse.ArgumentParser(prog="python -m edge.service.config")
    parser.add_argument("--schema", action="store_true", required=True, help="print the JSON Schema")
    parser.parse_args(argv)
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
