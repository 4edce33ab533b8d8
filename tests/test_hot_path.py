"""The per-frame path allocates no large arrays: a fresh buffer per frame costs page faults on every frame."""
import tracemalloc

import cv2
import numpy as np
import pytest

from edge import Detector
from edge.contract import family_input
from edge.demo import BUNDLE
from edge.preprocess import Preprocessor
from edge.scene import demo_frame

LIMIT = 64 * 1024  # far below one 640x480 plane (300 KiB); small index arrays and Python objects are fine


def traced_peak(call, frames) -> int:
    """Peak bytes numpy and Python allocate (above what stays allocated) while `call` runs over `frames`."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for frame in frames:
            call(frame)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("size", [(480, 640), (720, 1280)])  # letterboxed as is, and resized first
def test_preprocess_reuses_its_buffers(layout, size):
    pre = Preprocessor(family_input("yolo11", "images", 640, 640, layout, "float32"))
    frames = list(np.random.default_rng(0).integers(0, 256, (4, *size, 3), dtype=np.uint8))
    pre(frames[0])  # the first frame of a geometry sets the canvas up
    assert traced_peak(pre, frames[1:]) < LIMIT


def test_detector_frame_allocates_no_large_arrays():
    det = Detector.load(BUNDLE, conf=0.4)
    frames = [demo_frame(i) for i in range(4)]
    assert len(det(frames[0])) >= 4  # the demo scene has five shapes
    assert traced_peak(det, frames[1:]) < LIMIT


def test_preprocess_keeps_opencv_on_the_callers_thread():
    """OpenCV worker threads left spinning after pre-processing would compete with inference for the cores."""
    cv2.setNumThreads(2)
    Preprocessor(family_input("yolo11", "images", 64, 64, "NCHW", "float32"))
    assert cv2.getNumThreads() == 1


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_padding_is_repainted_on_each_geometry_change(layout):
    """Wide, tall, then wide frames again: the strips of the previous geometry never leak into the next tensor."""
    pre = Preprocessor(family_input("yolo11", "images", 64, 64, layout, "float32"))
    rng = np.random.default_rng(5)
    for new_h, new_w in [(32, 64), (64, 40), (48, 64), (64, 64)]:  # long side 64: placed without a resize
        frame = rng.integers(0, 256, (new_h, new_w, 3), dtype=np.uint8)
        tensor, _ = pre(frame)
        left, top = (64 - new_w) // 2, (64 - new_h) // 2
        expected = np.full((64, 64, 3), np.float32(114 / 255), np.float32)
        expected[top:top + new_h, left:left + new_w] = frame[..., ::-1] / np.float32(255)
        got = tensor[0] if layout == "NHWC" else tensor[0].transpose(1, 2, 0)
        np.testing.assert_array_equal(got, expected)
