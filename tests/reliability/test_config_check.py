"""check-config and run share one validation: every problem reported at once, run exits 78 for each of them,
hostile config files (not UTF-8, list keys, alias bombs, huge) are one line each, never a traceback."""
import os
import subprocess
import sys

import pytest
import yaml

from edge.errors import ConfigError
from edge.service.config import MAX_BYTES, check, load, parse, read

from ..stream_helpers import tiny_model


def edge(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=60, **kwargs)


def write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def good(tmp_path) -> dict:
    return {"model": {"path": tiny_model(tmp_path / "m.onnx")}, "sources": [{"uri": "synthetic:64x48@0"}],
            "pipeline": {"max_frames": 2}}


BAD = {  # what run used to reject only at start-up (exit 1), and check-config used to accept
    "sinks.http.listen": ("http", {"listen": "127.0.0.1:99999"}, "port must be at most 65535"),
    "open listener": ("http", {"listen": "0.0.0.0:8080"}, "0.0.0.0 is reachable from other machines"),
    "sinks.jsonl.path": ("jsonl", {"path": ""}, "sinks.jsonl.path: must not be empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_run_exits_78_for_what_check_config_rejects(tmp_path, monkeypatch, case):
    monkeypatch.delenv("EDGE_HTTP_TOKEN", raising=False)
    sink, section, message = BAD[case]
    config = good(tmp_path)
    config["sinks"] = {sink: section}
    path = write(tmp_path / "c.yaml", config)
    checked = edge("check-config", path, env={k: v for k, v in os.environ.items() if k != "EDGE_HTTP_TOKEN"})
    assert checked.returncode == 78 and message in checked.stderr, checked.stderr
    ran = edge("run", "--config", path, env={k: v for k, v in os.environ.items() if k != "EDGE_HTTP_TOKEN"})
    assert ran.returncode == 78 and message in ran.stderr, ran.stderr


def test_a_token_from_the_environment_opens_the_listener(tmp_path, monkeypatch):
    config = parse({**good(tmp_path), "sinks": {"http": {"listen": "0.0.0.0:0"}}})
    monkeypatch.delenv("EDGE_HTTP_TOKEN", raising=False)
    assert any("reachable from other machines" in p for p in check(config))
    monkeypatch.setenv("EDGE_HTTP_TOKEN", "t")
    assert check(config) == []


def test_upper_bounds():
    with pytest.raises(ConfigError, match=r"model.threads: must be at most 1024, got 1000000000"):
        parse({"model": {"path": "m.onnx", "threads": 1_000_000_000}, "sources": [{"uri": "synthetic"}]})


def test_check_config_reports_every_problem_in_one_run(tmp_path):
    path = write(tmp_path / "c.yaml", {
        "model": {"path": "m.onnx", "threads": 0}, "sources": [{"uri": "synthetic", "width": 0}],
        "sinks": {"queue": 0, "mqtt": {"url": "mqtt://b", "qos": 5}, "http": {"listen": ":70000"}}, "bogus": 1})
    result = edge("check-config", path)
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    for key in ("model.threads", "sources[0].width", "sinks.queue", "sinks.mqtt.qos", "bogus", "sinks.http.listen"):
        assert sum(f"{path}: {key}" in line for line in lines) == 1, (key, result.stderr)
    assert len(lines) == 6 and "Traceback" not in result.stderr


def test_check_config_checks_the_model_the_sources_and_the_jsonl_folder(tmp_path):
    config = parse({"model": {"path": str(tmp_path / "missing.onnx")},
                    "sources": [{"uri": "synthetic:axb"}, {"uri": str(tmp_path / "nothing-here")}],
                    "sinks": {"jsonl": {"path": str(tmp_path / "no" / "such" / "events.jsonl")}}})
    problems = check(config)
    assert [p.split(":")[0] for p in problems] == ["model.path", "sources[0].uri", "sources[1].uri", "sinks.jsonl.path"]
    (tmp_path / "bundle").mkdir()
    assert "not a bundle" in check(parse({"model": {"path": str(tmp_path / "bundle")},
                                          "sources": [{"uri": "synthetic"}]}))[0]


def test_a_missing_pyyaml_is_an_install_hint_not_78(tmp_path):
    path = write(tmp_path / "c.yaml", good(tmp_path))
    code = ("import sys; sys.modules['yaml'] = None; from edge.cli import main; "
            f"sys.exit(main(['check-config', {path!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "pip install 'edge[service]'" in result.stderr, result.stderr


HOSTILE = {
    "invalid UTF-8": b"model:\n  path: \xff\xfe.onnx\n",
    "UTF-16 with a BOM": "model: {path: m.onnx}\n".encode("utf-16"),
    "binary": bytes(range(256)) * 4,
    "list key": b"? [a, b]\n: 1\nmodel: {path: m}\n",
    "map key": b"{a: 1}: x\n",
    "alias bomb": b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((98 + i, 98 + i) + (97 + i,) * 10)
        for i in range(8)),
    "self-reference": b"a: &a [*a]\n",
    "deep nesting": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_one_line_errors(tmp_path, case):
    path = tmp_path / "c.yaml"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(ConfigError) as error:
        read(str(path))
    assert str(error.value).startswith(f"{path}") and "\n" not in str(error.value)
    result = edge("check-config", path)
    assert result.returncode == 78 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_an_alias_bomb_is_stopped_before_it_is_built(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(HOSTILE["alias bomb"])  # 10**9 strings once expanded
    with pytest.raises(ConfigError, match="aliases count as expanded"):
        read(str(path))


def test_config_size_limit(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {path: m.onnx}\nsources: [{uri: synthetic}]\n" + "#" * MAX_BYTES)
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load(str(path))


def test_a_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbfmodel: {path: m.onnx}\nsources: [{uri: synthetic}]\n")
    assert load(str(path)).model.path == "m.onnx"
