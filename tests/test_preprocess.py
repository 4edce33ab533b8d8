"""Pre-processing: Ultralytics' letterbox geometry, DAMO-YOLO stretch, layouts, dtypes and buffer reuse."""
import math

import cv2
import numpy as np
import pytest

from edge.contract import InputSpec, family_input
from edge.preprocess import FrameTransform, Preprocessor, letterbox_geometry


def reference_letterbox(frame, size, pad=114):
    """Ultralytics LetterBox(center=True) written out step by step, float64 arithmetic."""
    h0, w0 = frame.shape[:2]
    r = min(size[0] / h0, size[1] / w0)
    new_w, new_h = int(round(w0 * r)), int(round(h0 * r))
    dw, dh = (size[1] - new_w) / 2, (size[0] - new_h) / 2
    img = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (new_w, new_h) != (w0, h0) else frame
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad, pad, pad))


@pytest.mark.parametrize("shape", [(1080, 810), (720, 1280), (461, 614), (640, 640), (17, 999), (333, 333), (1, 1)])
def test_letterbox_matches_ultralytics_formula(shape):
    rng = np.random.default_rng(sum(shape))
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    pre = Preprocessor(family_input("yolo11", "images", 640, 640, "NCHW", "float32"))
    tensor, _ = pre(frame)
    expected = reference_letterbox(frame, (640, 640))[..., ::-1].transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    assert tensor.shape == (1, 3, 640, 640)
    np.testing.assert_array_equal(tensor[0], expected)


def test_nhwc_bgr_and_non_square_input():
    frame = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    spec = InputSpec("x", 256, 320, layout="NHWC", color="BGR", pixel_scale=1 / 255, resize="letterbox", pad_value=0)
    tensor, transform = Preprocessor(spec)(frame)
    expected = reference_letterbox(frame, (256, 320), pad=0).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(tensor[0], expected)
    assert (transform.pad_x, transform.pad_y) == letterbox_geometry((300, 500), (256, 320))[2:4]


@pytest.mark.parametrize("dtype,scale,zero_point", [("uint8", 1 / 255, 0), ("int8", 1 / 255, -128), ("int8", 0.0078125, -1)])
def test_quantized_inputs_use_scale_and_zero_point(dtype, scale, zero_point):
    frame = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    spec = family_input("yolo11", "images", 64, 64, "NHWC", dtype, scale, zero_point)
    tensor, _ = Preprocessor(spec)(frame)
    real = frame[..., ::-1].astype(np.float32) / np.float32(255)
    info = np.iinfo(dtype)
    expected = np.clip(np.round(real / np.float32(scale)) + zero_point, info.min, info.max).astype(dtype)
    assert tensor.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(tensor[0], expected)


def test_float16_input():
    frame = np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    tensor, _ = Preprocessor(family_input("yolo11", "images", 48, 48, "NCHW", "float16"))(frame)
    assert tensor.dtype == np.float16
    np.testing.assert_array_equal(tensor[0, :, 8:40, :], (frame[..., ::-1].transpose(2, 0, 1) / 255).astype(np.float16))
    assert np.all(tensor[0, :, :8, :] == np.float16(114 / 255))


def test_damo_stretch_raw_pixels_and_anisotropic_mapping():
    frame = np.random.default_rng(4).integers(0, 256, (576, 768, 3), dtype=np.uint8)
    tensor, transform = Preprocessor(family_input("damo-yolo", "images", 416, 416, "NCHW", "float32"))(frame)
    expected = cv2.resize(frame, (416, 416), interpolation=cv2.INTER_LINEAR)[..., ::-1].transpose(2, 0, 1)
    np.testing.assert_array_equal(tensor[0], expected.astype(np.float32))  # 0..255, no /255 (SPEC §3.3)
    boxes = transform.boxes_to_frame(np.array([[-10.0, 0.0, 416.0, 208.0]], np.float32), clip=False)
    np.testing.assert_allclose(boxes, [[-10 * 768 / 416, 0, 768, 288]], rtol=1e-6)


def test_buffer_is_reused_and_padding_refreshed_when_geometry_changes():
    pre = Preprocessor(family_input("yolo11", "images", 64, 64, "NCHW", "float32"))
    wide = np.full((32, 64, 3), 255, np.uint8)
    tall = np.full((64, 32, 3), 0, np.uint8)
    t1, _ = pre(wide)
    buffer = t1.ctypes.data
    t2, _ = pre(tall)
    assert t2.ctypes.data == buffer  # same memory every frame
    np.testing.assert_array_equal(t2[0], reference_letterbox(tall, (64, 64))[..., ::-1].transpose(2, 0, 1) / np.float32(255))


def test_box_mapping_inverts_the_letterbox():
    pre = Preprocessor(family_input("yolo11", "images", 640, 640, "NCHW", "float32"))
    _, transform = pre(np.zeros((1080, 810, 3), np.uint8))
    frame_box = np.array([[100.0, 200.0, 500.0, 900.0]])
    gain_x, gain_y = transform.gain_x, transform.gain_y
    input_box = frame_box * [gain_x, gain_y, gain_x, gain_y] + [transform.pad_x, transform.pad_y] * 2
    np.testing.assert_allclose(transform.boxes_to_frame(input_box.astype(np.float32)), frame_box, atol=1e-3)
    outside = np.array([[-50.0, -50.0, 700.0, 700.0]], np.float32)
    clipped = transform.boxes_to_frame(outside)
    assert clipped.min() >= 0 and clipped[0, 2] <= 810 and clipped[0, 3] <= 1080


def test_frame_transform_gain_is_the_real_resize_ratio():
    _, transform = Preprocessor(family_input("yolo11", "images", 640, 640, "NCHW", "float32"))(np.zeros((461, 614, 3), np.uint8))
    assert transform.gain_x == 640 / 614
    assert transform.gain_y == 481 / 461  # Ultralytics 8.4 maps y back with the rounded height's ratio
    assert isinstance(transform, FrameTransform)


@pytest.mark.parametrize("frame", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 1), np.uint8)])
def test_grey_and_bgra_frames_are_accepted(frame):
    tensor, _ = Preprocessor(family_input("yolo11", "images", 32, 32, "NCHW", "float32"))(frame)
    assert tensor.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("frame,error", [(np.zeros((10, 10, 3), np.float32), ValueError), (np.zeros((10, 10, 5), np.uint8), ValueError),
                                         (np.zeros((0, 10, 3), np.uint8), ValueError), ([[1, 2]], TypeError)])
def test_bad_frames_are_rejected_clearly(frame, error):
    with pytest.raises(error, match="frame"):
        Preprocessor(family_input("yolo11", "images", 32, 32, "NCHW", "float32"))(frame)


def test_letterbox_geometry_rounding_sends_odd_pixel_to_bottom_right():
    new_w, new_h, left, top, gain = letterbox_geometry((461, 614), (640, 640))
    assert (new_w, new_h) == (640, 481) and top == 79 and 640 - new_h - top == 80
    assert math.isclose(gain, 640 / 614)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_plain_uint8_input_takes_the_pixels_the_float_input_divides(layout):
    """A uint8 input without quantization is a model that normalizes in its graph: the same letterboxed RGB pixels
    the float input gets divided by 255 (the padding included), over several frame geometries."""
    as_pixels = Preprocessor(family_input("yolo11", "images", 96, 128, layout, "uint8"))
    as_floats = Preprocessor(family_input("yolo11", "images", 96, 128, layout, "float32"))
    rng = np.random.default_rng(4)
    for shape in [(48, 64, 3), (96, 50, 3), (200, 128, 3), (48, 64, 3)]:
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        (pixels, t1), (floats, t2) = as_pixels(frame), as_floats(frame)
        assert pixels.dtype == np.uint8 and t1 == t2
        np.testing.assert_array_equal(pixels, np.round(floats * 255).astype(np.uint8))


def test_int8_input_without_a_scale_is_one_clear_error():
    from edge.errors import ContractError

    with pytest.raises(ContractError, match="int8 input 'images' has no quantization scale"):
        Preprocessor(family_input("yolo11", "images", 64, 64, "NHWC", "int8"))
