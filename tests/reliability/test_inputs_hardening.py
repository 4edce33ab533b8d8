"""Hostile inputs are one-line errors with a bounded cost: a manifest nested 100000 deep, a truncated or
decompression-bomb .tar.gz to `edge models install`, a malformed --names file."""
import gzip
import subprocess
import sys
import tarfile

import pytest

from edge.bundle import read_bundle
from edge.errors import ContractError, ModelError
from edge.names import load_names
from edge.service import store as store_module
from edge.service.store import Store

from ..onnx_models import tiny_bundle


def test_a_deeply_nested_manifest_is_a_model_error(tmp_path):
    (tmp_path / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match="not valid JSON"):
        read_bundle(str(tmp_path))


def archive_of(bundle, path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(bundle, arcname="bundle")
    return str(path)


def test_a_truncated_archive_is_one_line(tmp_path):
    whole = archive_of(tiny_bundle(tmp_path / "src", "a", 0.9), tmp_path / "a.tar.gz")
    data = open(whole, "rb").read()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ModelError, match="truncated or corrupt archive"):
        Store(str(tmp_path / "state")).install(str(cut))
    result = subprocess.run([sys.executable, "-m", "edge", "models", "install", str(cut), "--state-dir",
                             str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("models install: ")]  # progress
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(errors) == 1 and errors[0].startswith("edge: error: ") and "truncated" in errors[0], result.stderr


def test_archive_size_limits_are_checked_before_writing(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("bundle/model.onnx")
    info.size = 1 << 30  # a 1 GiB member (zeros gzip to ~1 MB); only its header and a first block here
    bomb.write_bytes(gzip.compress(info.tobuf() + bytes(4096)))
    with pytest.raises(ModelError, match="over the limits"):
        Store(str(tmp_path / "state")).install(str(bomb))
    assert not any((tmp_path / "state" / "models").glob(".tmp-*/archive/bundle/model.onnx"))
    ok = archive_of(tiny_bundle(tmp_path / "src", "a", 0.9), tmp_path / "a.tar.gz")
    monkeypatch.setattr(store_module, "MAX_ARCHIVE_BYTES", 1000)  # the tiny bundle is bigger than this
    with pytest.raises(ModelError, match="over the limits"):
        Store(str(tmp_path / "state")).install(ok)
    monkeypatch.setattr(store_module, "MAX_ARCHIVE_BYTES", 1 << 30)
    assert Store(str(tmp_path / "state")).install(ok).changed


@pytest.mark.parametrize("content", [b"[not json, 'nor python'", b"{1: 'a', ", b"\xff\xfe\x00b", b"[" * 100_000])
def test_a_malformed_names_file_is_a_contract_error(tmp_path, content):
    path = tmp_path / "names.txt"
    path.write_bytes(content)
    with pytest.raises(ContractError, match="--names"):
        load_names(str(path))
