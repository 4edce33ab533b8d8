"""Command-line flags and the config: a flag given wins over the config key, a flag left out never does."""
import argparse

import pytest
import yaml

from edge.cli.commands import build_parser
from edge.cli.flags import FLAG_OF
from edge.cli.run import run_config
from edge.settings import Config
from edge.typed import field_of, scalar_type

STRINGS = {  # two valid values per string setting: the config's, then the flag's
    "model.path": ("a.onnx", "b.onnx"), "model.names": ("a,b", "c,d"), "sinks.jsonl.path": ("a.jsonl", "b.jsonl"),
    "sinks.mqtt.url": ("mqtt://a", "mqtt://b"), "sinks.mqtt.topic_prefix": ("a", "b"),
    "sinks.mqtt.client_id": ("a", "b"), "sinks.mqtt.ca": ("a.pem", "b.pem"), "sinks.mqtt.cert": ("a.pem", "b.pem"),
    "sinks.mqtt.key": ("a.key", "b.key"), "sinks.http.listen": ("127.0.0.1:1", "127.0.0.1:2"),
    "sinks.http.token": ("a", "b"), "sinks.webhook.url": ("http://a/", "http://b/"), "sources.fourcc": ("MJPG", "YUYV"),
    "media.dir": ("a", "b"),
}
SECTIONS = {"sinks.jsonl": {"path": "x.jsonl"}, "sinks.mqtt": {"url": "mqtt://x"}, "sinks.http": {},
            "sinks.webhook": {"url": "http://x/"}, "media": {"dir": "m"}}


def values(path: str) -> tuple:
    """(config value, flag value as typed on the command line, the value the flag must give); the flag's value
    is the field's default where one exists, the case a "flag equal to its default" check gets wrong."""
    hint, field = field_of(Config, path)
    kind, meta = scalar_type(hint), field.metadata
    if path in STRINGS:
        a, b = STRINGS[path]
        return a, b, b
    if path == "model.providers":
        return ["A"], "B,C", ["B", "C"]
    if path == "pipeline.batch":  # a word or a number
        return "off", "4", 4
    if meta["choices"]:
        choices = list(meta["choices"])
        a, b = [c for c in choices if c != field.default][:1] + [field.default or choices[-1]]
        return a, str(b), b
    if kind is bool:
        return True, None, False  # --no-FLAG (or, for store_true flags, see the test)
    low = meta["minimum"] if meta["minimum"] is not None else 1
    default = field.default if isinstance(field.default, (int, float)) and not isinstance(field.default, bool) else None
    flag = default if default is not None else kind(low + 1)
    other = kind(flag + 1) if meta["maximum"] is None else kind((flag + meta["maximum"]) / 2)
    return other, str(flag), kind(flag)


def config_with(tmp_path, path: str, value) -> str:
    """A config file whose `path` key holds `value`."""
    data = {"model": {"path": "m.onnx"}, "sources": [{"uri": "synthetic"}]}
    for section, base in SECTIONS.items():
        if path.startswith(section + "."):
            parent, _, name = section.rpartition(".")
            (data.setdefault(parent, {}) if parent else data)[name] = dict(base)
    node, keys = data, path.split(".")
    if keys[0] == "sources":
        node = data["sources"][0]
        keys = keys[1:]
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    return str(file)


def get(config: Config, path: str):
    """The value at a key path (sources: the first source)."""
    node = config
    for key in path.split("."):
        node = node.sources[0] if key == "sources" else getattr(node, key)
    return node


build_parser()  # declares the flags


@pytest.mark.parametrize("path", sorted(FLAG_OF))
def test_a_flag_given_overrides_its_config_key(tmp_path, path):
    config_value, flag_value, expected = values(path)
    flag = FLAG_OF[path]
    _, field = field_of(Config, path)
    if flag_value is None:  # a boolean flag
        if field.default is None:
            argv = [f"--no-{flag[2:]}"]
        else:  # store_true: the config says false, the flag says true
            config_value, argv, expected = False, [flag], True
    else:
        argv = [flag, flag_value]
    args = build_parser().parse_args(["run", "--config", config_with(tmp_path, path, config_value), *argv])
    assert get(run_config(args), path) == expected
    left_out = build_parser().parse_args(["run", "--config", config_with(tmp_path, path, config_value)])
    assert get(run_config(left_out), path) == config_value


def test_every_1_on_the_command_line_beats_every_5_in_the_config(tmp_path):
    args = build_parser().parse_args(["run", "--config", config_with(tmp_path, "pipeline.every", 5), "--every", "1"])
    assert run_config(args).pipeline.every == 1


@pytest.mark.parametrize("argv, message", [
    (["--conf", "2"], "--conf: must be at most 1.0, got 2.0"),
    (["--conf", "-1"], "--conf: must be at least 0.0, got -1.0"),
    (["--iou", "5"], "--iou: must be at most 1.0, got 5.0"),
    (["--conf", "nan"], "--conf: must be a finite number"),
    (["--every", "0"], "--every: must be at least 1, got 0"),
    (["--width", "0"], "--width: must be at least 1, got 0"),
])
def test_flag_values_are_range_checked_like_the_config(capsys, argv, message):
    from edge.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--model", "m.onnx", "--source", "synthetic", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("command", ["detect", "info", "bench", "eval"])
def test_model_commands_range_check_their_thresholds_too(capsys, command):
    from edge.cli import main

    extra, message = {"detect": (["x.jpg", "--conf", "2"], "--conf: must be at most 1.0"),
                      "info": (["--threads", "0"], "--threads: must be at least 1"),
                      "bench": (["--threads", "0"], "--threads: must be at least 1"),
                      "eval": (["--images", ".", "--annotations", "a.json", "--iou", "2"], "--iou: must be at most 1.0"),
                      }[command]
    with pytest.raises(SystemExit) as exit_:
        main([command, "m.onnx", *extra])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_an_unset_flag_is_absent_not_its_default():
    args = build_parser().parse_args(["run", "--model", "m.onnx", "--source", "synthetic"])
    assert {k for k in vars(args) if "." in k} == {"model.path"}
    assert isinstance(args, argparse.Namespace)
