"""read_bundle returns one typed Bundle; the manifest is declared once (edge.typed) and its schema is generated."""
import json
import math
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Tuple

import pytest

from edge import ContractError
from edge.bundle import MANIFEST, SCHEMA_PATH, Bundle, Manifest, parse_manifest, read_bundle, schema_text, write_bundle
from edge.contract import Contract, DecodeSpec, OutputSpec, family_input
from edge.typed import ValidationError, build, spec

NAMES = ("cat", "dog")
ROOT = Path(__file__).resolve().parents[1]

# A manifest as edge wrote it before the manifest was typed: key order, explicit nulls, optional keys left out.
OLD_MANIFEST = {
    "schema_version": 1, "family": "damo-yolo", "task": "detect",
    "model": {"file": "m.onnx", "format": "onnx"},
    "target": "onnx", "precision": "float32",
    "input": {"name": "images", "height": 64, "width": 64, "layout": "NCHW", "dtype": "float32", "quantization": None,
              "color": "RGB", "pixel_scale": 1, "resize": "stretch", "pad_value": 0},
    "outputs": [{"name": "scores", "shape": [1, 84, 2], "dtype": "float32", "quantization": None},
                {"name": "box_logits", "shape": [1, 84, 68], "dtype": "float32"}],
    "decode": {"format": "damo-yolo-dfl"},
    "names": list(NAMES),
    "source": None,
}


def contract() -> Contract:
    inp = family_input("yolo11", "images", 64, 64, "NCHW", "uint8", quant_scale=1 / 255, quant_zero_point=0)
    return Contract("yolo11", inp, (OutputSpec("output0", (1, 6, 84), "int8", 0.02, -3),), DecodeSpec("yolo11"), NAMES,
                    target="onnx-int8", precision="int8", source={"file": "yolo11n.pt"})


@pytest.fixture
def bundle(tmp_path) -> str:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")
    return write_bundle(str(tmp_path / "bundle"), str(model), contract())


def test_committed_manifest_schema_is_generated_from_the_dataclasses():
    assert Path(SCHEMA_PATH).read_text() == schema_text(), \
        "stale: python -m edge.schema manifest > edge/schema/manifest.schema.json"


def test_schema_command_prints_the_committed_schema():
    result = subprocess.run([sys.executable, "-m", "edge.schema", "manifest"], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == Path(SCHEMA_PATH).read_text()


def test_read_bundle_gives_typed_fields(bundle):
    b = read_bundle(bundle)
    assert isinstance(b, Bundle) and b.path == bundle
    assert b.model_path == str(Path(bundle) / "m.onnx") and b.precision == "int8" and b.target == "onnx-int8"
    assert b.manifest.model.format == "onnx" and len(b.manifest.model.sha256) == 64
    assert b.manifest.input.quantization.scale == pytest.approx(1 / 255)
    assert b.manifest.outputs[0].quantization.zero_point == -3 and b.manifest.tensorrt is None
    assert b.contract == contract()


def test_written_json_is_the_typed_manifest(bundle):
    written = json.loads((Path(bundle) / MANIFEST).read_text())
    manifest = read_bundle(bundle).manifest
    assert manifest.to_json() == written and parse_manifest(written) == manifest
    assert "tensorrt" not in written and written["input"]["quantization"] == {"scale": 1 / 255, "zero_point": 0}


def test_manifest_written_before_the_typed_manifest_still_loads(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / MANIFEST).write_text(json.dumps(OLD_MANIFEST))
    b = read_bundle(str(tmp_path))
    assert b.contract.decode == DecodeSpec("damo-yolo-dfl", False, (8, 16, 32), 16) and b.contract.decode.dfl_bins == 17
    assert b.contract.postprocess.conf == 0.25 and b.contract.source == {} and b.contract.input.pixel_scale == 1.0
    assert b.contract.outputs[1] == OutputSpec("box_logits", (1, 84, 68), "float32")


def test_tensorrt_section_is_typed(bundle):
    cache = Path(bundle) / "calibration.cache"
    cache.write_bytes(b"cache")
    entry = {"calibration_cache": {"file": cache.name, "sha256": "a" * 64}}
    write_bundle(bundle, str(Path(bundle) / "m.onnx"), replace(contract(), target="tensorrt-int8"),
                 extra={"tensorrt": entry})
    b = read_bundle(bundle)
    assert b.target == "tensorrt-int8" and b.manifest.tensorrt.calibration_cache.file == "calibration.cache"
    assert b.manifest.to_json()["tensorrt"] == entry


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["decode"].update(reg_mx=16), r"decode\.reg_mx: unknown key \(did you mean reg_max\?\)"),
    (lambda m: m.update(extra=1), r"extra: unknown key"),
    (lambda m: m["model"].update(sha256="ABC"), r"model\.sha256: must be 64 lowercase hex digits, got 'ABC'"),
    (lambda m: m["input"].update(pixel_scale=math.inf), r"input\.pixel_scale: must be a finite number, got inf"),
    (lambda m: m["decode"].update(format="damo-yolo-head", strides=[8, 16]),
     r"decode\.strides must list 3 levels for damo-yolo-head, got \[8, 16\]"),
    (lambda m: m.update(tensorrt={"calibration_cache": {"file": "../c"}}),
     r"tensorrt\.calibration_cache\.file: must be a file name inside the bundle directory, got '\.\./c'"),
])
def test_manifest_errors_name_the_key(edit, message):
    data = json.loads(json.dumps(OLD_MANIFEST))
    edit(data)
    with pytest.raises(ContractError, match=message):
        parse_manifest(data, where="m.json")


def test_write_bundle_refuses_what_read_bundle_would_refuse(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ContractError, match="names must be a non-empty list"):
        write_bundle(str(tmp_path / "b"), str(model), replace(contract(), names=()))
    assert not (tmp_path / "b" / MANIFEST).exists()


def test_schema_and_validator_agree_on_a_written_manifest(bundle):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(Path(SCHEMA_PATH).read_text())
    written = json.loads((Path(bundle) / MANIFEST).read_text())
    jsonschema.validate(written, schema)
    jsonschema.validate(OLD_MANIFEST, schema)
    written["decode"]["reg_mx"] = 16
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(written, schema)
    assert Manifest.__dataclass_fields__.keys() == schema["properties"].keys()


# ------------------------------------------------------------------------------ what typed.py gained for this
@dataclass
class Sample:
    """A dataclass using the additions."""

    size: Tuple[int, ...] = spec("sizes", (1, 2), minimum=1)
    extra: Optional[dict] = spec("anything", None)
    ratio: float = spec("a ratio", 0.5)
    kind: str = spec("a registered kind", "a", choices={"a": 1, "b": 2})


def test_typed_tuples_dicts_finite_numbers_and_live_choices():
    assert build(Sample, {"size": [3, 4], "extra": {"k": [1]}}) == Sample((3, 4), {"k": [1]})
    with pytest.raises(ValidationError, match=r"size\[1\]: must be at least 1, got 0"):
        build(Sample, {"size": [3, 0]})
    with pytest.raises(ValidationError, match="extra: must be a mapping, got a list"):
        build(Sample, {"extra": []})
    with pytest.raises(ValidationError, match="ratio: must be a finite number, got nan"):
        build(Sample, {"ratio": float("nan")})
    choices = Sample.__dataclass_fields__["kind"].metadata["choices"]
    with pytest.raises(ValidationError, match="kind: must be a or b, got 'c'"):
        build(Sample, {"kind": "c"})
    choices["c"] = 3  # a registry that grew after the declaration
    try:
        assert build(Sample, {"kind": "c"}).kind == "c"
    finally:
        del choices["c"]
