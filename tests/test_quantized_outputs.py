"""Integer outputs are selected on their integers: the same Detections as on the same outputs dequantized whole."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import Detector
from edge.contract import Contract, DecodeSpec, family_input
from edge.decode import make_anchors
from edge.decode.quantized import Dequantize

from .test_decode_split import NAMES, ArrayBackend, dfl_contract

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
quantizations = st.tuples(st.floats(1e-4, 0.5), st.integers(-128, 127))
confs = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.9]), st.floats(-1, 2))


@settings(max_examples=200, deadline=None)
@given(quantizations, st.sampled_from(["int8", "uint8"]), confs)
def test_lowest_above_splits_the_integers_exactly(quantization, dtype, conf):
    scale, zero_point = quantization
    dequantize = Dequantize(scale, zero_point)
    info = np.iinfo(dtype)
    q = np.arange(info.min, info.max + 1, dtype=dtype)
    real_above = dequantize(q) > conf
    lowest = dequantize.lowest_above(conf, np.dtype(dtype))
    if lowest is None:
        assert not real_above.any()
    else:
        np.testing.assert_array_equal(q.astype(np.int64) >= lowest, real_above)


def test_a_value_alone_a_slice_and_the_whole_tensor_dequantize_to_the_same_bits():
    q = np.random.default_rng(1).integers(-128, 128, (1, 7, 50), dtype=np.int8)
    dequantize = Dequantize(0.0123, -17)
    whole = dequantize.whole(q).copy()
    np.testing.assert_array_equal(dequantize(q[0, :, [3, 9, 41]]), whole[0, :, [3, 9, 41]])
    assert dequantize(q[0, 2, 5:6])[0] == whole[0, 2, 5]


def single_contract(nc: int = len(NAMES), size: int = 64) -> Contract:
    inp = family_input("yolo11", "images", size, size, "NHWC", "float32")
    return Contract("yolo11", inp, (), DecodeSpec("yolo11"), NAMES[:nc])


def same(got, want) -> None:
    assert got == want  # Detections.__eq__: identical boxes, scores, classes and names, bit for bit


@SETTINGS
@given(st.integers(0, 2**32 - 1), quantizations, st.floats(0.05, 0.95), st.booleans(), st.booleans())
def test_single_output_int8_selection_equals_whole_dequantization(seed, quantization, conf, multi_label, transposed):
    rng = np.random.default_rng(seed)
    scale, zero_point = quantization
    q = rng.integers(-128, 128, (1, 4 + len(NAMES), 84), dtype=np.int8)
    q[0, :4] = np.abs(q[0, :4])  # centre/size rows
    real = Dequantize(scale, zero_point).whole(q).copy()
    if transposed:
        q, real = q.transpose(0, 2, 1).copy(), real.transpose(0, 2, 1).copy()
    thresholds = dict(conf=conf, iou=0.5, multi_label=multi_label)
    quantized = Detector(ArrayBackend([q], [(scale, zero_point)]), single_contract(), **thresholds)
    reference = Detector(ArrayBackend([real], [(None, 0)]), single_contract(), **thresholds)
    assert not quantized._dequantize_whole
    frame = np.zeros((64, 64, 3), np.uint8)
    same(quantized(frame), reference(frame))


@SETTINGS
@given(st.integers(0, 2**32 - 1), quantizations, quantizations, st.floats(0.05, 0.95), st.booleans())
def test_split_dfl_int8_selection_equals_whole_dequantization(seed, box_quant, score_quant, conf, multi_label):
    rng = np.random.default_rng(seed)
    n = make_anchors(64, 64, (8, 16, 32), 0.5).shape[1]
    qd = rng.integers(-128, 128, (1, 64, n), dtype=np.int8)
    qs = rng.integers(-128, 128, (1, len(NAMES), n), dtype=np.int8)
    real_d = Dequantize(*box_quant).whole(qd).copy()
    real_s = Dequantize(*score_quant).whole(qs).copy()
    thresholds = dict(conf=conf, iou=0.5, multi_label=multi_label)
    quantized = Detector(ArrayBackend([qd, qs], [box_quant, score_quant]), dfl_contract(), **thresholds)
    reference = Detector(ArrayBackend([real_d, real_s], [(None, 0), (None, 0)]), dfl_contract(), **thresholds)
    frame = np.zeros((64, 64, 3), np.uint8)
    same(quantized(frame), reference(frame))


@pytest.mark.parametrize("scale", [0.0, -0.01])
def test_a_scale_that_is_not_positive_falls_back_to_whole_dequantization(scale):
    q = np.random.default_rng(2).integers(-128, 128, (1, 4 + len(NAMES), 84), dtype=np.int8)
    detector = Detector(ArrayBackend([q], [(scale, 3)]), single_contract(), conf=0.1)
    assert detector._dequantize_whole == (scale != 0.0)
    boxes, scores, _ = detector.candidates([q])
    real = Dequantize(scale, 3).whole(q) if scale else q.astype(np.float32)
    assert len(scores) == int(((real[0, 4:].max(axis=0)) > 0.1).sum())


@pytest.mark.parametrize("dtype", ["int32", "uint16"])
def test_wider_integers_are_dequantized_whole(dtype):
    rng = np.random.default_rng(3)
    q = rng.integers(0, 200, (1, 4 + len(NAMES), 84)).astype(dtype)
    quantized = Detector(ArrayBackend([q], [(0.005, 7)]), single_contract(), conf=0.3)
    reference = Detector(ArrayBackend([Dequantize(0.005, 7).whole(q).copy()], [(None, 0)]), single_contract(), conf=0.3)
    assert quantized._dequantize_whole == (dtype == "int32")  # int32: no table of every value to search
    frame = np.zeros((64, 64, 3), np.uint8)
    same(quantized(frame), reference(frame))
