"""The on-device bundle store: install/list/rollback, refusals that leave `current` alone, and a SIGKILL at every step."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge import Detector, ModelError
from edge.bundle import MANIFEST, read_bundle
from edge.cli import main
from edge.service.store import CRASH_ENV, RECORD, STEPS, Store

from .onnx_models import tiny_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bundles(tmp_path) -> list:
    return [tiny_bundle(tmp_path / "src", tag, score) for tag, score in (("a", 0.9), ("b", 0.8), ("c", 0.7))]


def edge_models(state, *args) -> dict:
    """Run `edge models ... --json` in this process and return its JSON answer."""
    return run_cli(state, *args, "--json")


def run_cli(state, *args):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["models", *args, "--state-dir", str(state)]) == 0
    text = out.getvalue()
    return json.loads(text) if "--json" in args else text


def current_is_complete(store: Store) -> str:
    """`current` resolves to a verifiable bundle that loads; returns its version."""
    version = store.link("current")
    assert version, "current is missing or dangling"
    read_bundle(os.path.join(store.root, "current"))
    Detector.load(os.path.join(store.root, "current"))
    return version


def test_install_is_idempotent_and_rollback_swaps(bundles, tmp_path):
    state, store = tmp_path / "state", Store(str(tmp_path / "state"))
    first = edge_models(state, "install", bundles[0])
    assert first["changed"] and store.link("current") == first["version"] and first["version"].startswith("a-")
    assert not edge_models(state, "install", bundles[0])["changed"]
    second = edge_models(state, "install", bundles[1])
    assert second["previous"] == first["version"]
    assert (store.link("current"), store.link("previous")) == (second["version"], first["version"])
    listed = edge_models(state, "list")
    assert [v["version"] for v in listed] == [first["version"], second["version"]]
    assert [v["current"] for v in listed] == [False, True] and listed[0]["previous"] and listed[1]["size"] > 0
    assert "(current)" in run_cli(state, "list")
    back = edge_models(state, "rollback")
    assert back["version"] == first["version"] and current_is_complete(store) == first["version"]
    assert store.link("previous") == second["version"]
    again = edge_models(state, "install", bundles[1])  # already on disk: switches without unpacking again
    assert again["changed"] and store.link("current") == second["version"]
    assert os.path.realpath(state / "models" / "current" / MANIFEST).startswith(str(state / "models" / second["version"]))


def test_install_from_a_tar_gz_archive(bundles, tmp_path):
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bundles[0], arcname="yolo-bundle")
    store = Store(str(tmp_path / "state"))
    change = store.install(str(archive))
    assert change.changed and current_is_complete(store) == change.version
    assert sorted(os.listdir(os.path.join(store.root, change.version))) == sorted([RECORD, MANIFEST, "a.onnx"])


@pytest.mark.parametrize("damage", ["tampered", "self-test", "tensorrt", "unsafe-archive", "not-a-bundle"])
def test_refused_bundles_leave_current_alone(bundles, tmp_path, damage):
    store = Store(str(tmp_path / "state"))
    good = store.install(bundles[0]).version
    bad = tmp_path / "bad"
    bad_bundle = tiny_bundle(bad, "bad", 0.5)
    manifest_path = Path(bad_bundle) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    source, expected = bad_bundle, {"tampered": "sha256", "self-test": "self-test failed", "tensorrt": "needs a TensorRT engine",
                                    "unsafe-archive": "refusing archive member", "not-a-bundle": "not a bundle"}[damage]
    if damage == "tampered":
        with open(Path(bad_bundle) / "bad.onnx", "ab") as f:
            f.write(b"\0")
    elif damage == "self-test":
        manifest["input"]["height"] = 320
    elif damage == "tensorrt":
        manifest["target"] = "tensorrt-fp16"
    elif damage == "unsafe-archive":
        source = str(tmp_path / "evil.tar")
        with tarfile.open(source, "w") as tar:
            tar.add(bad_bundle, arcname="b")
            tar.add(bad_bundle + "/bad.onnx", arcname="../escape.onnx")
    else:
        source = str(tmp_path / "bad" / "bad.onnx")
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=expected):
        store.install(source)
    assert current_is_complete(store) == good and [v.name for v in store.versions()] == [good]
    assert set(os.listdir(store.root)) == {".lock", "current", good}  # no work directory left behind
    assert not (tmp_path / "escape.onnx").exists()


def test_keep_prunes_old_versions_but_never_current_or_previous(bundles, tmp_path):
    store = Store(str(tmp_path / "state"))
    a, b = store.install(bundles[0]).version, store.install(bundles[1]).version
    store.rollback()  # current a, previous b: both survive keep=1
    c = store.install(bundles[2], keep=1).version
    assert {v.name for v in store.versions()} == {a, c} and store.link("previous") == a
    with pytest.raises(Exception, match="at least 1"):
        store.install(bundles[1], keep=0)
    assert b not in os.listdir(store.root)


def test_reload_calls_systemctl_or_says_what_to_do(bundles, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    state = tmp_path / "state"
    assert "SIGHUP" in edge_models(state, "install", bundles[0], "--reload")["reload"]
    monkeypatch.setattr("edge.cli.models.SYSTEMD_BOOTED", str(bin_dir))
    fake = bin_dir / "systemctl"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/called\n")
    fake.chmod(0o755)
    assert edge_models(state, "install", bundles[1], "--reload", "edge@cam1.service")["reload"].startswith("reloaded")
    assert (tmp_path / "called").read_text().split() == ["try-reload-or-restart", "edge@cam1.service"]


def test_default_state_dir_follows_systemd(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/edge:{tmp_path}/other")
    assert Store().root == f"{tmp_path}/edge/models"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert Store().root == "/var/lib/edge/models"


# Where `current` must point after a SIGKILL at each step of installing c over (current b, previous a).
AFTER_CRASH = {"unpacked": "b", "engine": "b", "selftested": "b", "synced": "b", "renamed": "b", "previous": "b",
               "linked": "b", "switched": "c", "pruning": "c", "pruned": "c"}


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_leaves_a_complete_bundle_current(bundles, tmp_path, step):
    store = Store(str(tmp_path / "state"))
    names = {tag: store.install(path).version for tag, path in zip("ab", bundles)}
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{CRASH_ENV: step})
    cmd = [sys.executable, "-m", "edge", "models", "install", bundles[2], "--keep", "1",
           "--state-dir", str(tmp_path / "state")]
    crashed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -9, crashed.stderr
    version = current_is_complete(store)
    assert version.startswith(AFTER_CRASH[step] + "-")
    for v in store.versions():  # every version directory that is visible is complete
        read_bundle(v.path)
    assert store.link("previous") in (names["a"], names["b"])
    c = store.install(bundles[2], keep=1)  # the next run cleans up and finishes (or finds it done)
    assert current_is_complete(store) == c.version and c.changed == (AFTER_CRASH[step] == "b")
    assert not [n for n in os.listdir(store.root) if n.startswith(".tmp-")]
    assert store.rollback().version == names["b"] and current_is_complete(store) == names["b"]


def test_install_shows_its_steps_on_stderr_and_json_is_silent(bundles, tmp_path, capsys):
    """Issue #11 item 9: `edge models install` said nothing while it verified, self-tested or built an engine."""
    run_cli(tmp_path / "state", "install", bundles[0])
    err = capsys.readouterr().err.splitlines()  # not a terminal: one line per step, then the final count
    assert [line.split(" 0:")[-1].split(" ", 1)[-1] for line in err[:-1]] == [
        "unpacking", "verifying sha256", "self-test", "writing"]
    assert err[0].startswith("models install: 0/4") and err[-1].startswith("models install: 4/4 100%")
    assert "eta" not in "".join(err)  # steps of very different lengths: no made-up estimate
    run_cli(tmp_path / "state", "install", bundles[0])  # already current: two steps, and done
    assert capsys.readouterr().err.splitlines()[-1].startswith("models install: 2/2 100%")
    edge_models(tmp_path / "state", "install", bundles[1])
    assert capsys.readouterr().err == ""
