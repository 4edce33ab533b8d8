"""converters.tflite: ONNX -> TFLite fp32 / fp16 / full-integer int8 that the runtime loads and decodes.

Needs the `tflite-convert` toolchain (onnx2tf + TensorFlow); skipped where it is not installed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from converters import ConvertError
from edge import Detector
from edge.bundle import read_bundle, write_bundle
from edge.evaluate import evaluate

DEMO_BUNDLE = str(Path(__file__).resolve().parents[1] / "edge" / "demo")  # DAMO-YOLO-Ns on synthetic shapes, 256 input


def toolchain():
    """converters.tflite once onnx2tf and TensorFlow import (else the test skips)."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnx2tf")
    from converters import tflite
    return tflite


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The synthetic shapes dataset at the demo model's 256 input: calibration images and a labelled val split."""
    from models.synthetic import generate
    out = tmp_path_factory.mktemp("shapes")
    return out, generate(str(out), train=32, val=24, size=256, seed=3)


@pytest.fixture(scope="module")
def damo_bundles(shapes, tmp_path_factory):
    """The demo DAMO-YOLO-Ns converted to every TFLite precision by edge-convert, as bundles."""
    tflite = toolchain()
    from converters.cli import main

    out = tmp_path_factory.mktemp("tflite")
    bundles = {}
    for precision in tflite.PRECISIONS:
        bundles[precision] = str(out / precision)
        argv = [DEMO_BUNDLE, "--target", tflite.TARGETS[precision], "--out", bundles[precision]]
        assert main(argv + (["--calib", str(shapes[0] / "train")] if precision == "int8" else [])) == 0
    return Detector.load(DEMO_BUNDLE), bundles


def test_int8_needs_calibration(tmp_path):
    tflite = toolchain()
    source = Detector.load(DEMO_BUNDLE)
    with pytest.raises(ConvertError, match="calibration"):
        tflite.convert_tflite(source.model_path, source.contract, "int8", None, str(tmp_path / "m.tflite"))
    with pytest.raises(ConvertError, match="precision"):
        tflite.convert_tflite(source.model_path, source.contract, "int4", None, str(tmp_path / "m.tflite"))
    with pytest.raises(ConvertError, match="float_stride"):
        tflite.convert_tflite(source.model_path, source.contract, "int8", np.zeros((1, 3, 256, 256), np.float32),
                              str(tmp_path / "m.tflite"), float_stride=12)
    assert not os.listdir(tmp_path)


def _float_ops(path: str) -> list:
    """Types of the ops that compute in float32 (between DEQUANTIZE and QUANTIZE) in a TFLite file."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(path)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    kinds = [names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in model.operatorCodes]
    graph, float32 = model.subgraphs[0], schema.TensorType.FLOAT32
    return [kinds[op.opcodeIndex] for op in graph.operators
            if kinds[op.opcodeIndex] != "DEQUANTIZE" and graph.tensors[op.outputs[0]].type == float32]


def test_int8_keeps_the_leading_layers_float(damo_bundles, shapes, tmp_path):
    """Default int8: the ops before the first stride-32 convolution stay float; float_stride=0: all integer."""
    tflite = toolchain()
    from converters.calibration import load_calibration
    source, bundles = damo_bundles
    default = read_bundle(bundles["int8"]).model_path
    leading = _float_ops(default)
    assert "CONV_2D" in leading and "BATCH_MATMUL" not in leading  # DAMO-YOLO: no attention block
    calibration = load_calibration(str(shapes[0] / "train"), source.contract.input).tensors
    path = str(tmp_path / "all_int8.tflite")
    contract = tflite.convert_tflite(source.model_path, source.contract, "int8", calibration, path,
                                     float_stride=0, keep_float=())
    assert _float_ops(path) == []
    assert contract.input.dtype == "int8" and all(o.dtype == "int8" for o in contract.outputs)


def test_manifests_describe_the_files(damo_bundles):
    source, bundles = damo_bundles
    for precision, bundle in bundles.items():
        read = read_bundle(bundle)
        contract = read.contract
        detector = Detector.load(bundle)  # _check_contract: the manifest fits the real tensors
        assert detector.backend.name == "tflite" and read.precision == precision
        assert contract.input.layout == "NHWC" and contract.names == source.names
        assert contract.input.resize == "stretch" and contract.input.pixel_scale == 1.0
        assert [o.name for o in contract.outputs] == ["scores", "box_logits"]
        assert contract.decode.format == "damo-yolo-dfl"
        assert contract.outputs[1].shape[2] == 4 * contract.decode.dfl_bins
        integer = precision == "int8"
        assert contract.input.dtype == ("int8" if integer else "float32")
        assert all((o.dtype == "int8") == integer and bool(o.quant_scale) == integer for o in contract.outputs)
    scales = [o.quant_scale for o in read_bundle(bundles["int8"]).contract.outputs]
    assert scales[0] < 0.01 < scales[1]  # scores 0..1 and box logits keep separate int8 scales


def test_float_models_match_the_onnx(damo_bundles, shapes):
    source, bundles = damo_bundles
    import cv2
    frame = cv2.imread(str(shapes[0] / "val" / "000000.jpg"))
    want = source.with_thresholds(conf=0.3)(frame)  # confident boxes: no near-ties for NMS to order differently
    assert len(want) > 0
    for precision, tolerance in (("fp32", 0.05), ("fp16", 1.0)):
        got = Detector.load(bundles[precision], conf=0.3)(frame)
        assert len(got) == len(want)
        np.testing.assert_array_equal(got.class_ids, want.class_ids)
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=tolerance)


def test_int8_accuracy_stays_near_fp32(damo_bundles, shapes):
    source, bundles = damo_bundles
    images, annotations = str(shapes[0] / "val"), shapes[1]["val"]
    reference = evaluate(source.with_thresholds(conf=0.001), images, annotations)
    int8 = evaluate(Detector.load(bundles["int8"], conf=0.001), images, annotations)
    assert reference["map50"] > 50  # the demo model really detects the shapes
    assert int8["map50_95"] > reference["map50_95"] - 2, f"int8 {int8['map50_95']} vs fp32 {reference['map50_95']}"


@pytest.mark.slow
@pytest.mark.needs_shared
def test_yolo11n_int8_and_fp16_accuracy(shared, shared_path, tmp_path):
    """COCO val mAP50-95 vs the fp32 ONNX: fp16 within 0.1, int8 within 0.5 (the issue's targets).

    int8 keeps the leading stride-2..16 layers and the C2PSA attention block float (converters/tflite.py): 43.58 vs
    fp32 43.62 here (every layer int8: 41.77); with 100-image subsets of the calibration set it measured down to
    -0.30, hence the 0.5 bound.
    """
    tflite = toolchain()
    from importlib.metadata import PackageNotFoundError, version
    try:  # onnx2tf pins ai-edge-litert 2.1.0, whose int8 kernels return garbage for YOLO11n (2.2+ and 2.14 are right)
        if version("ai-edge-litert").startswith("2.1."):
            pytest.skip("ai-edge-litert 2.1 mis-runs int8 YOLO11n; pip install 'ai-edge-litert>=2.2' to evaluate")
    except PackageNotFoundError:
        pass
    from converters.calibration import load_calibration
    source = Detector.load(str(shared_path("models", "yolo11n.onnx")))
    images = str(shared / "coco" / "val2017")
    annotations = str(shared_path("coco", "annotations", "instances_val2017.json"))
    calibration = load_calibration(str(shared / "coco" / "train2017"), source.contract.input).tensors
    val = {"conf": 0.001, "multi_label": True}  # Ultralytics val settings, as `edge eval` uses
    reference = evaluate(source.with_thresholds(**val), images, annotations)["map50_95"]
    for precision, allowed in (("int8", 0.5), ("fp16", 0.1)):
        path = str(tmp_path / f"yolo11n_{precision}.tflite")
        contract = tflite.convert_tflite(source.model_path, source.contract, precision,
                                         calibration if precision == "int8" else None, path)
        assert contract.decode.format == "yolo11-dfl"
        bundle = write_bundle(str(tmp_path / precision), path, contract)
        got = evaluate(Detector.load(bundle, **val), images, annotations)["map50_95"]
        assert got >= reference - allowed, f"{precision}: {got:.2f} vs fp32 {reference:.2f}"


def test_split_heads_count_reg_max_as_their_decode_format_declares():
    """The cut head's DecodeSpec: DAMO-YOLO-Ns has reg_max 7 (SPEC: the index of the last bin), so 8 bins a side."""
    onnx = pytest.importorskip("onnx")
    from converters.tflite import _split_head

    demo = read_bundle(DEMO_BUNDLE)
    graph, decode = _split_head(onnx.load(demo.model_path), demo.contract, DEMO_BUNDLE)
    assert (decode.format, decode.reg_max, decode.dfl_bins) == ("damo-yolo-dfl", 7, 8)
    assert graph.graph.output[1].type.tensor_type.shape.dim[2].dim_value == 4 * decode.dfl_bins


@pytest.mark.needs_shared
def test_yolo11_split_head_reg_max_counts_bins(shared_path):
    onnx = pytest.importorskip("onnx")
    from converters.tflite import _split_head

    path = str(shared_path("models", "yolo11n.onnx"))
    _, decode = _split_head(onnx.load(path), Detector.load(path).contract, path)
    assert (decode.format, decode.reg_max, decode.dfl_bins) == ("yolo11-dfl", 16, 16)
