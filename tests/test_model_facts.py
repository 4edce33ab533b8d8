"""What a model says about itself, reported truthfully: weight precision with the I/O dtypes, the version in its
metadata (kept when a raw file becomes a bundle), and a --family that contradicts it is a usage error."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import edge
from edge.backends.onnxruntime import weights_precision
from edge.bundle import read_bundle, write_bundle
from edge.demo import BUNDLE
from edge.errors import FamilyMismatch

from .onnx_models import constant_model, ultralytics_metadata, yolo11_output

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

META = {**ultralytics_metadata(["cat", "dog"]), "version": "8.4.190", "date": "2026-11-25T17:37:12+00:00",
        "description": "YOLO11n on cats and dogs", "license": "AGPL-3.0"}


def edge_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def convert_cli(*args):
    return subprocess.run([sys.executable, "-m", "converters.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def yolo(tmp_path):
    """A raw two-class YOLO11 ONNX with Ultralytics metadata, version included."""
    out = yolo11_output([[320, 320, 100, 60]], [[0.0, 0.9]])
    return constant_model(tmp_path / "m.onnx", (1, 3, 640, 640), {"output0": out}, META)


def _conv_model(path, weights_dtype: str) -> str:
    """A 1-conv ONNX whose weight is float32, float16 (Cast to float), or int8 behind a DequantizeLinear (QDQ)."""
    w = np.ones((4, 3, 1, 1), np.float32)
    nodes, inits = [], []
    if weights_dtype == "int8":
        inits += [numpy_helper.from_array(w.astype(np.int8), "wq"), numpy_helper.from_array(np.float32(0.1), "ws"),
                  numpy_helper.from_array(np.int8(0), "wz")]
        nodes.append(helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"]))
    elif weights_dtype == "float16":
        inits.append(numpy_helper.from_array(w.astype(np.float16), "wh"))
        nodes.append(helper.make_node("Cast", ["wh"], ["w"], to=TensorProto.FLOAT))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes.append(helper.make_node("Conv", ["x", "w"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("dtype, expected", [("float32", "fp32"), ("float16", "fp16"), ("int8", "int8")])
def test_onnx_weights_precision_is_read_from_the_graph(tmp_path, dtype, expected):
    path = _conv_model(tmp_path / f"{dtype}.onnx", dtype)
    assert weights_precision(path) == expected


def test_a_file_that_is_not_an_onnx_protobuf_has_no_precision(tmp_path):
    for name, data in (("empty.onnx", b""), ("text.onnx", b"hello, not protobuf\xff\xff\xff\xff\xff\xff\xff\xff")):
        (tmp_path / name).write_bytes(data)
        assert weights_precision(str(tmp_path / name)) is None


@pytest.mark.needs_shared
def test_info_reports_int8_weights_behind_float_io(shared_path):
    """Issue #11 item 7: the Ultralytics int8 TFLite (float32 input and output) said `precision float32`."""
    path = shared_path("models", "yolo11n_int8.tflite")
    result = edge_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert "precision int8 (float32 input/output)" in result.stdout
    info = json.loads(edge_cli("info", path, "--json").stdout)
    assert info["precision"] == "int8" and info["input"]["dtype"] == "float32"
    assert {o["dtype"] for o in info["outputs"]} == {"float32"}
    fp32 = edge_cli("info", shared_path("models", "yolo11n.onnx"))
    assert "precision fp32 (float32 input/output)" in fp32.stdout


@pytest.mark.needs_shared
def test_events_and_a_bundle_of_the_int8_file_say_int8(tmp_path, shared_path):
    """What eval reports, /api/status and the manifest show comes from the same contract precision."""
    from edge.stream.events import model_identity

    path = shared_path("models", "yolo11n_int8.tflite")
    detector = edge.Detector.load(path)
    assert model_identity(detector)["precision"] == "int8" and model_identity(detector)["version"] == "8.3.223"
    bundle = write_bundle(str(tmp_path / "b"), str(path), detector.contract)
    assert read_bundle(bundle).manifest.precision == "int8"
    assert edge.Detector.load(bundle).info()["precision"] == "int8"
    assert edge.Detector.load(_legacy(bundle)).info()["precision"] == "int8"  # an old manifest said float32


def _legacy(bundle: str) -> str:
    """The bundle as written before precision meant the weights: its manifest records the input dtype."""
    path = f"{bundle}/manifest.json"
    with open(path) as f:
        data = json.load(f)
    data["precision"] = "float32"
    with open(path, "w") as f:
        json.dump(data, f)
    assert read_bundle(bundle).precision == "float32"
    return bundle


def test_a_manifest_that_recorded_the_input_dtype_reports_the_weights(tmp_path):
    demo = edge.Detector.load(BUNDLE)
    assert demo.info()["precision"] == "fp32"
    legacy = _legacy(write_bundle(str(tmp_path / "legacy"), demo.model_path, demo.contract))
    assert edge.Detector.load(legacy).contract.precision == "fp32"


def test_the_version_in_a_raw_onnx_is_kept_in_its_bundle_and_shown_by_info(tmp_path, yolo):
    """Issue #11 item 13: the model's version was lost when a raw .onnx became a bundle."""
    bundle = write_bundle(str(tmp_path / "b"), yolo, edge.Detector.load(yolo).contract)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["schema_version"] == 2
    assert manifest["metadata"] == {"version": "8.4.190", "date": "2026-11-25T17:37:12+00:00",
                                    "description": "YOLO11n on cats and dogs", "author": "Ultralytics",
                                    "license": "AGPL-3.0"}
    detector = edge.Detector.load(bundle)
    assert detector.info()["metadata"]["version"] == "8.4.190"
    from edge.stream.events import model_identity
    assert model_identity(detector)["version"] == "8.4.190"
    shown = edge_cli("info", bundle).stdout
    assert "version    8.4.190 (exported 2026-11-25T17:37:12+00:00)" in shown


def test_a_bundle_without_metadata_stays_schema_version_1(tmp_path):
    """Older runtimes read version 1 only: a manifest is written as 2 only when it has metadata (or deployment
    thresholds) to carry."""
    demo = edge.Detector.load(BUNDLE)
    write_bundle(str(tmp_path / "b"), demo.model_path, replace(demo.contract, deployment=None))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and "metadata" not in manifest


# ------------------------------------------------------------------------------ --family contradicting the model
def test_python_api_refuses_a_family_the_manifest_contradicts(yolo):
    with pytest.raises(FamilyMismatch, match=r"family: yolo11 contradicts .*demo's manifest \(damo-yolo\)"):
        edge.Detector.load(BUNDLE, family="yolo11")
    with pytest.raises(FamilyMismatch, match=r"Ultralytics metadata \(yolo11\)"):
        edge.Detector.load(yolo, family="damo-yolo")
    assert edge.Detector.load(BUNDLE, family="damo-yolo").contract.family == "damo-yolo"  # agreeing is fine


def test_raw_damo_outputs_contradict_family_yolo11(tmp_path):
    scores, boxes = np.zeros((1, 1344, 5), np.float32), np.zeros((1, 1344, 4), np.float32)
    path = constant_model(tmp_path / "damo.onnx", (1, 3, 256, 256), {"scores": scores, "boxes": boxes})
    with pytest.raises(FamilyMismatch, match=r"damo.onnx's outputs \(damo-yolo\)"):
        edge.Detector.load(path, family="yolo11", names=list("abcde"))


@pytest.mark.parametrize("command", [
    ("info", "{model}"), ("detect", "{model}", "{image}"), ("bench", "{model}", "--runs", "1"),
    ("eval", "{model}", "--images", "{folder}", "--annotations", "{folder}"),
    ("run", "--model", "{model}", "--source", "synthetic", "--max-frames", "1", "--jsonl", "-")])
def test_every_command_with_family_refuses_a_contradiction(tmp_path, command):
    """Issue #11 item 8: `--family` contradicting a bundle's manifest was silently ignored."""
    import cv2

    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((64, 64, 3), 90, np.uint8))
    values = {"model": BUNDLE, "image": tmp_path / "a.jpg", "folder": tmp_path}
    result = edge_cli(*(str(a).format(**values) for a in command), "--family", "yolo11")
    assert result.returncode == 2, result.stderr
    assert f"--family: yolo11 contradicts {BUNDLE}'s manifest (damo-yolo); drop --family" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_config_family_contradicting_the_model_is_a_config_error(tmp_path, yolo):
    pytest.importorskip("yaml")
    for path, found, evidence in ((BUNDLE, "damo-yolo", "manifest"), (yolo, "yolo11", "Ultralytics metadata")):
        family = "yolo11" if found == "damo-yolo" else "damo-yolo"
        config = tmp_path / "c.yaml"
        config.write_text(f"model: {{path: {path}, family: {family}}}\nsources: [{{uri: synthetic}}]\n"
                          "pipeline: {max_frames: 1}\nsinks: {jsonl: {path: '-'}}\n")
        line = f"model.family: {family} contradicts {path}'s {evidence} ({found}); drop model.family"
        run = edge_cli("run", "--config", config)
        assert run.returncode == 78 and line in run.stderr and "Traceback" not in run.stderr
        if evidence == "manifest":  # check-config reads manifests, it does not load models
            checked = edge_cli("check-config", config)
            assert checked.returncode == 78 and line in checked.stderr


def test_edge_convert_refuses_a_contradicting_family(tmp_path, yolo):
    for model, family, evidence in ((BUNDLE, "yolo11", "manifest (damo-yolo)"),
                                    (yolo, "damo-yolo", "Ultralytics metadata (yolo11)")):
        result = convert_cli(model, "--family", family, "--out", tmp_path / "out")
        assert result.returncode == 2, result.stderr
        assert f"edge-convert: error: --family: {family} contradicts {model}'s {evidence}; drop --family" \
            in result.stderr
        assert not (tmp_path / "out").exists()
