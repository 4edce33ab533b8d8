"""The daemon config: typed validation with key-path errors, the committed schema, secrets, check-config's exit 78."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from edge.errors import ConfigError
from edge.service.config import SCHEMA_PATH, json_schema, load, parse, schema_text
from edge.service.server import HttpServer
from edge.stream.sinks import open_sinks
from edge.stream.sinks.jsonl import JsonlSink
from edge.stream.sinks.mqtt import MqttSink

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "config.yaml"
MINIMAL = {"model": {"path": "/var/lib/edge/models/current"}, "sources": [{"uri": "synthetic"}]}


def with_(path: str, value) -> dict:
    """MINIMAL with one nested key set, e.g. with_('sinks.mqtt', {...})."""
    data = json.loads(json.dumps(MINIMAL))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


def edge(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=60, **kwargs)


def test_committed_schema_is_the_generated_one():
    assert Path(SCHEMA_PATH).read_text() == schema_text(), \
        "regenerate: python -m edge.service.config --schema > edge/schema/config.schema.json"
    jsonschema.Draft7Validator.check_schema(json_schema())


def test_example_config_is_valid_for_the_loader_and_the_schema():
    config = load(str(EXAMPLE))
    assert config.model.path == "/var/lib/edge/models/current" and config.sinks.http.listen == "127.0.0.1:8080"
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), json_schema())


@pytest.mark.parametrize("data, message", [
    (with_("sinks.mqtt", {"url": "mqtt://broker", "qos": 5}), "sinks.mqtt.qos: must be 0, 1 or 2, got 5"),
    (with_("sinks.mqtt", {"url": "mqtt://b", "pasword_env": "X"}),
     "sinks.mqtt.pasword_env: unknown key (did you mean password_env?)"),
    (with_("thresholds.conf", "0.5"), "thresholds.conf: must be a number, got '0.5'"),
    (with_("thresholds.conf", 1.5), "thresholds.conf: must be at most 1.0, got 1.5"),
    (with_("pipeline.every", True), "pipeline.every: must be an integer, got true"),
    (with_("pipeline.drop", "newest"), "pipeline.drop: must be latest, oldest or block, got 'newest'"),
    (with_("sources", [{"uri": "synthetic", "name": False}]), "sources[0].name: must be a string, got false"),
    (with_("sources", []), "sources: needs at least one source"),
    (with_("sources", [{"uri": "a", "name": "x"}, {"uri": "b", "name": "x"}]), "sources: name 'x' is used twice"),
    (with_("sinks.http", {"listen": "8080"}), "sinks.http.listen: must match"),
    ({"sources": [{"uri": "synthetic"}]}, "model: is required"),
    (with_("sinks.mqtt", {"url": "mqtt://b", "password_env": "A", "password_credential": "b"}), "not both"),
    ([1, 2], "(top level): must be a mapping, got a list"),
])
def test_errors_name_the_key_and_the_problem(data, message):
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert message in str(info.value)


def test_config_is_the_settings_object_the_sinks_are_built_from():
    data = with_("sinks", {"jsonl": {"path": "-"}, "http": {"listen": ":0", "max_age": 3}, "queue": 10})
    data["sources"] = [{"uri": "synthetic:64x48", "name": "cam", "fps": 5}]
    data["thresholds"] = {"conf": 0.4}
    data["model"]["providers"] = ["CPUExecutionProvider"]
    config = parse(data)
    assert (config.model.path, config.thresholds.conf, config.model.providers) == \
           ("/var/lib/edge/models/current", 0.4, ["CPUExecutionProvider"])
    (jsonl,) = open_sinks(config.sinks)  # the HTTP server is the service's, not an event sink
    assert isinstance(jsonl, JsonlSink) and jsonl._queue_size == 10
    server = HttpServer.from_settings(config.sinks.http)
    assert (server.host, server.port, server.max_age) == ("127.0.0.1", 0, 3.0)
    assert config.sources[0].fps == 5.0 and config.sinks.mqtt is None and config.pipeline.all_frames is False


def test_secrets_come_from_the_environment_or_systemd_credentials(tmp_path, monkeypatch):
    data = with_("sinks", {"mqtt": {"url": "mqtts://broker", "username": "edge", "password_credential": "mqtt-pw"},
                           "http": {"listen": "0.0.0.0:8080", "token_env": "TEST_EDGE_TOKEN"}})
    config = parse(data)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"sinks.mqtt.password_credential: \$CREDENTIALS_DIRECTORY is not set"):
        MqttSink.from_settings(config.sinks.mqtt)
    (tmp_path / "mqtt-pw").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match="sinks.http.token_env: environment variable TEST_EDGE_TOKEN is not set"):
        HttpServer.from_settings(config.sinks.http)
    monkeypatch.setenv("TEST_EDGE_TOKEN", "tok")
    mqtt = MqttSink.from_settings(config.sinks.mqtt)
    assert (mqtt._client._username, mqtt._client._password) == (b"edge", b"s3cret")
    assert HttpServer.from_settings(config.sinks.http).token == "tok"


def test_yaml_problems_are_located(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("model:\n  path: a\nmodel:\n  path: b\n")
    with pytest.raises(ConfigError, match=r"c.yaml:3:1: .*duplicate key 'model'"):
        load(str(bad))
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2:1"):
        load(str(bad))
    bad.write_text("")
    with pytest.raises(ConfigError, match="empty config"):
        load(str(bad))


def test_check_config_exit_codes(tmp_path):
    from .stream_helpers import tiny_model

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(with_("model.path", tiny_model(tmp_path / "m.onnx"))))  # check-config looks
    bad.write_text(yaml.safe_dump(with_("sinks.mqtt", {"url": "mqtt://broker", "qos": 5})))
    ok = edge("check-config", good)
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stderr
    result = edge("check-config", bad)
    assert result.returncode == 78
    assert result.stderr == f"edge: error: {bad}: sinks.mqtt.qos: must be 0, 1 or 2, got 5\n"
    assert edge("check-config", tmp_path / "missing.yaml").returncode == 78
    started = edge("run", "--config", bad)
    assert started.returncode == 78 and "sinks.mqtt.qos" in started.stderr


def test_check_config_loads_the_model_as_edge_run_does(tmp_path):
    from .stream_helpers import tiny_model

    model = tiny_model(tmp_path / "m.onnx")  # a raw YOLO11 file: only loading it tells its family
    cases = {  # name: (config, exit code of check-config and edge run, the error line)
        "family": (with_("model", {"path": model, "family": "damo-yolo"}), 78,
                   f"model.family: damo-yolo contradicts {model}'s Ultralytics metadata (yolo11); drop model.family"),
        "damaged": (with_("model.path", str(tmp_path / "bad.onnx")), 1,
                    f"model.path: {tmp_path / 'bad.onnx'}: onnxruntime cannot load it"),
        "classes": ({**with_("model.path", model), "sources": [{"uri": "synthetic", "zones": [
            {"name": "door", "points": [[0, 0], [10, 0], [10, 10]], "classes": ["person"]}]}]}, 78,
                    "sources[0].zones[0].classes: unknown class 'person'"),
    }
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 100)
    for name, (data, code, message) in cases.items():
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump(data))
        result = edge("check-config", config)
        assert result.returncode == code and result.stderr.startswith(f"edge: error: {config}: {message}"), result.stderr
        assert len(result.stderr.splitlines()) == 1
        started = edge("run", "--config", config, "--max-frames", "1")
        assert started.returncode == code and message.split(": ")[-1] in started.stderr, started.stderr
    skipped = edge("check-config", "--no-load", tmp_path / "family.yaml")
    assert skipped.returncode == 0, skipped.stderr


def test_check_config_reads_a_bundle_from_its_manifest(tmp_path):
    from edge.demo import BUNDLE

    from .test_tensorrt import trt_bundle

    area = {"name": "door", "points": [[0, 0], [10, 0], [10, 10]], "classes": ["bicycle"]}
    bad = tmp_path / "classes.yaml"
    bad.write_text(yaml.safe_dump({**with_("model.path", BUNDLE), "sources": [{"uri": "synthetic", "zones": [area]}]}))
    result = edge("check-config", bad)
    assert result.returncode == 78 and "sources[0].zones[0].classes: unknown class 'bicycle'" in result.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(BUNDLE, damaged)
    model = next(damaged.glob("*.onnx"))
    model.write_bytes(model.read_bytes() + b"\0")
    bad.write_text(yaml.safe_dump(with_("model.path", str(damaged))))
    result = edge("check-config", bad)
    assert result.returncode == 1 and "sha256" in result.stderr, result.stderr  # as edge run refuses it
    # A TensorRT bundle's engine is built on the device after the config is in place (Ansible validates the config
    # before edge-engine-build runs): check-config does not need it.
    waiting = tmp_path / "trt.yaml"
    waiting.write_text(yaml.safe_dump(with_("model.path", trt_bundle(tmp_path))))
    result = edge("check-config", waiting)
    assert result.returncode == 0, result.stderr


def test_run_needs_a_model_and_a_source_or_a_config():
    result = edge("run", "--source", "synthetic")
    assert result.returncode == 2 and "--model and --source are required" in result.stderr


def test_detect_path_never_imports_the_config_stack():
    code = ("import sys, edge, edge.cli.commands; edge.cli.commands.build_parser(); "
            "print(sorted(m for m in ('yaml', 'edge.service.config') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr + result.stdout


def test_flags_given_with_a_config_override_it(tmp_path):
    from .stream_helpers import tiny_model

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"path": tiny_model(tmp_path / "m.onnx")},
                                    "sources": [{"uri": "synthetic:64x48@0", "name": "cam"}],
                                    "pipeline": {"max_frames": 50}}))
    result = edge("run", "--config", path, "--max-frames", 3, "--jsonl", "-")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["source"] for line in result.stdout.splitlines()] == ["cam"] * 3
