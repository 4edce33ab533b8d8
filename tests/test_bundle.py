"""Model bundles: manifest written, validated against the committed JSON Schema, verified and loaded."""
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import edge
from edge import Detector, ModelError
from edge.bundle import MANIFEST, read_bundle, write_bundle

from .onnx_models import constant_model, ultralytics_metadata, yolo11_output

SCHEMA = json.loads((Path(edge.__file__).parent / "schema" / "manifest.schema.json").read_text())
NAMES = ["cat", "dog", "bird"]


@pytest.fixture
def model(tmp_path) -> str:
    out = yolo11_output([[320, 320, 100, 60], [100, 100, 20, 20]], [[0.9, 0.0, 0.0], [0.0, 0.6, 0.0]])
    return constant_model(tmp_path / "tiny.onnx", (1, 3, 640, 640), {"output0": out}, ultralytics_metadata(NAMES))


def test_bundle_round_trip_gives_the_same_detections(model, tmp_path):
    raw = Detector.load(model)
    bundle = write_bundle(str(tmp_path / "bundle"), model, raw.contract)
    manifest = json.loads((Path(bundle) / MANIFEST).read_text())
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["family"] == "yolo11" and manifest["names"] == NAMES
    assert manifest["input"]["resize"] == "letterbox" and manifest["input"]["pad_value"] == 114
    frame = np.zeros((480, 640, 3), np.uint8)
    a, b = raw(frame), Detector.load(bundle)(frame)
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    assert a.names == b.names == ["cat", "dog"]
    assert Detector.load(str(Path(bundle) / MANIFEST)).info()["classes"] == 3


def test_manifest_overrides_what_the_file_says(model, tmp_path):
    bundle = write_bundle(str(tmp_path / "b"), model, Detector.load(model).contract.with_names(["a", "b", "c"]))
    manifest = json.loads((Path(bundle) / MANIFEST).read_text())
    manifest["postprocess"]["conf"] = 0.7
    (Path(bundle) / MANIFEST).write_text(json.dumps(manifest))
    detector = Detector.load(bundle, verify=True)
    assert detector.conf == 0.7 and detector.names == ("a", "b", "c")
    assert len(detector(np.zeros((640, 640, 3), np.uint8))) == 1  # 0.6 score dropped by the manifest's conf


def test_tampered_model_is_refused(model, tmp_path):
    bundle = write_bundle(str(tmp_path / "b"), model, Detector.load(model).contract)
    with open(Path(bundle) / "tiny.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        read_bundle(bundle)


def test_manifest_input_must_match_the_model(model, tmp_path):
    bundle = write_bundle(str(tmp_path / "b"), model, Detector.load(model).contract)
    manifest = json.loads((Path(bundle) / MANIFEST).read_text())
    manifest["input"]["height"] = 320
    (Path(bundle) / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not match"):
        Detector.load(bundle)


def test_raw_model_without_metadata_asks_for_family(tmp_path):
    out = yolo11_output([[320, 320, 100, 60]], [[0.9, 0.0]])
    path = constant_model(tmp_path / "plain.onnx", (1, 3, 640, 640), {"output0": out})
    with pytest.raises(ModelError, match="--family"):
        Detector.load(path)
    with pytest.raises(ModelError, match="--names"):
        Detector.load(path, family="yolo11")
    detector = Detector.load(path, family="yolo11", names=["x", "y"])
    assert detector(np.zeros((640, 640, 3), np.uint8)).names == ["x"]
    with pytest.raises(ModelError, match="3 names"):
        Detector.load(path, family="yolo11", names=["x", "y", "z"])


def test_end2end_export_is_decoded_without_second_nms(tmp_path):
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = [10, 20, 110, 220, 0.8, 1]
    rows[0, 1] = [12, 22, 112, 222, 0.7, 1]  # overlaps the first: an end2end model already decided to keep it
    path = constant_model(tmp_path / "e2e.onnx", (1, 3, 640, 640), {"output0": rows}, ultralytics_metadata(["a", "b"]))
    dets = Detector.load(path)(np.zeros((640, 640, 3), np.uint8))
    assert Detector.load(path).contract.decode.format == "yolo11-end2end"
    np.testing.assert_allclose(dets.scores, [0.8, 0.7])
    assert dets.names == ["b", "b"]
