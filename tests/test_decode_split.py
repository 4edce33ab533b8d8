"""The `yolo11-dfl` layout (separate DFL box logits and scores; DFL and anchors in numpy) decodes like the single output."""
from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import Detector
from edge.backends import Backend, TensorInfo
from edge.bundle import contract_from_manifest, manifest_from_contract
from edge.contract import Contract, DecodeSpec, OutputSpec, family_input
from edge.decode import decode_dfl, decode_yolo11, make_anchors
from edge.errors import ContractError

NAMES = ("a", "b", "c")


class ArrayBackend(Backend):
    """Returns fixed (possibly int8) output arrays; stands in for a quantized engine."""

    name = "arrays"

    def __init__(self, outputs: list, quant: list, input_shape=(1, 64, 64, 3)):
        self.inputs = [TensorInfo("images", input_shape, "float32")]
        self.outputs = [TensorInfo(f"out{k}", a.shape, a.dtype.name, *q) for k, (a, q) in enumerate(zip(outputs, quant))]
        self.metadata = {}
        self._arrays = outputs

    def run(self, tensor: np.ndarray) -> list:
        return list(self._arrays)


def dfl_contract(size: int = 64, names=NAMES, strides=(8, 16, 32), outputs=(), reg_max: int = 16) -> Contract:
    inp = family_input("yolo11", "images", size, size, "NHWC", "float32")
    decode = DecodeSpec("yolo11-dfl", strides=tuple(strides), reg_max=reg_max)
    return Contract("yolo11", inp, tuple(outputs), decode, tuple(names))


def random_head(size: int = 64, nc: int = 3, seed: int = 0) -> tuple:
    """DFL logits [1,64,N] and sigmoid-like scores [1,nc,N] for a size x size input."""
    rng = np.random.default_rng(seed)
    n = make_anchors(size, size, (8, 16, 32), 0.5).shape[1]
    return rng.normal(0, 3, (1, 64, n)).astype(np.float32), rng.uniform(0, 1, (1, nc, n)).astype(np.float32)


def single_output(box_logits: np.ndarray, scores: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The Detect head's own arithmetic: DFL expectation, (anchor -/+ ltrb) -> centre/size, times stride, + scores."""
    z = box_logits[0].reshape(4, 16, -1).astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    left, t, r, b = (p * np.arange(16)[None, :, None]).sum(axis=1) / p.sum(axis=1)
    ax, ay, stride = anchors
    x1, y1, x2, y2 = ax - left, ay - t, ax + r, ay + b
    xywh = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) * stride
    return np.concatenate([xywh[None], scores], axis=1).astype(np.float32)


def test_anchors_are_cell_centres_level_by_level():
    anchors = make_anchors(64, 32, (8, 16), 0.5)
    assert anchors.shape == (3, 8 * 4 + 4 * 2)
    assert anchors[:, 0].tolist() == [0.5, 0.5, 8]
    assert anchors[:, 1].tolist() == [1.5, 0.5, 8]  # row-major: x runs first
    assert anchors[:, 4].tolist() == [0.5, 1.5, 8]
    assert anchors[:, 32].tolist() == [0.5, 0.5, 16]
    assert anchors[:, -1].tolist() == [1.5, 3.5, 16]


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_dfl_decode_equals_single_output_decode(multi_label, transposed):
    box_logits, scores = random_head()
    anchors = make_anchors(64, 64, (8, 16, 32), 0.5)
    want = decode_yolo11(single_output(box_logits, scores, anchors), 3, 0.6, multi_label)
    if transposed:  # [1, N, C] as some exporters lay it out
        box_logits, scores = box_logits.transpose(0, 2, 1), scores.transpose(0, 2, 1)
    got = decode_dfl(box_logits, scores, anchors, 0.6, multi_label)
    assert len(got[0]) == len(want[0]) > 0
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


def test_each_int8_output_is_dequantized_with_its_own_scale():
    box_logits, scores = random_head()
    d_scale, s_scale = 24 / 255, 1 / 256
    qd = np.clip(np.round(box_logits / d_scale), -128, 127).astype(np.int8)
    qs = np.clip(np.round(scores / s_scale) - 128, -128, 127).astype(np.int8)
    quantized = Detector(ArrayBackend([qd, qs], [(d_scale, 0), (s_scale, -128)]), dfl_contract())
    real_d, real_s = qd.astype(np.float32) * d_scale, (qs.astype(np.float32) + 128) * s_scale
    reference = Detector(ArrayBackend([real_d, real_s], [(None, 0), (None, 0)]), dfl_contract())
    got, want = quantized.candidates(quantized.backend.run(None)), reference.candidates([real_d, real_s])
    assert len(got[0]) == len(want[0]) > 0
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_manifest_round_trip_keeps_the_layout():
    jsonschema = pytest.importorskip("jsonschema")
    outputs = (OutputSpec("box_logits", (1, 64, 84), "int8", 0.15, -40), OutputSpec("scores", (1, 3, 84), "int8", 1 / 256, -128))
    contract = replace(dfl_contract(outputs=outputs), target="tflite-int8", precision="int8")
    manifest = manifest_from_contract(contract, "m.tflite", "0" * 64)
    schema = json.loads((Path(__file__).resolve().parents[1] / "edge" / "schema" / "manifest.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    back = contract_from_manifest(json.loads(json.dumps(manifest)))
    assert back.decode == contract.decode and back.outputs == contract.outputs and back.input == contract.input


def test_manifest_rejects_strides_that_do_not_divide_the_input():
    manifest = manifest_from_contract(dfl_contract(strides=(8, 16, 48)), "m.tflite", "0" * 64)
    with pytest.raises(ContractError, match="strides"):
        contract_from_manifest(manifest)


@pytest.mark.parametrize("case", ["one output", "wrong anchor count", "wrong class count", "wrong bins"])
def test_contract_mismatch_is_refused(case):
    box_logits, scores = random_head()
    arrays, contract = [box_logits, scores], dfl_contract()
    if case == "one output":
        arrays = [np.concatenate([box_logits, scores], axis=1)]
    elif case == "wrong anchor count":
        contract = dfl_contract(strides=(8, 16))
    elif case == "wrong class count":
        contract = dfl_contract(names=("a", "b"))
    else:
        contract = dfl_contract(reg_max=17)
    with pytest.raises(ContractError, match="yolo11-dfl"):
        Detector(ArrayBackend(arrays, [(None, 0)] * len(arrays)), contract)


@pytest.mark.needs_shared
def test_real_yolo11n_split_head_matches_the_single_output(shared_path):
    """The converter's cut of the real model decodes to the same detections as Ultralytics' own output."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from converters.onnx_head import split_yolo11_head
    from edge.backends.onnxruntime import OnnxRuntimeBackend

    source = shared_path("models", "yolo11n.onnx")
    single = Detector.load(str(source), conf=0.05)
    with tempfile.TemporaryDirectory() as work:
        split_path = f"{work}/split.onnx"
        onnx.save(split_yolo11_head(onnx.load(str(source))), split_path)
        backend = OnnxRuntimeBackend(split_path)
        outputs = tuple(OutputSpec(o.name, o.shape, o.dtype) for o in backend.outputs)
        contract = replace(single.contract, outputs=outputs, decode=DecodeSpec("yolo11-dfl", reg_max=16))
        split = Detector(backend, contract, conf=0.05)
        frame = cv2.imread(str(shared_path("images", "bus.jpg")))
        want, got = single(frame), split(frame)
    assert [o.name for o in backend.outputs] == ["box_logits", "scores"]
    assert len(got) == len(want) >= 4
    np.testing.assert_array_equal(got.class_ids, want.class_ids)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)
    np.testing.assert_allclose(got.xyxy, want.xyxy, atol=1e-2)
