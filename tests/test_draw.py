"""Annotated frames: every label inside the image and no two labels on top of each other (issue #11 item 8)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.detections import Detections
from edge.draw import draw_detections, place_labels

LABEL = (90, 22)  # a typical label's width and height in pixels


def _check(spots, width, height):
    """Every placed label lies inside the frame and overlaps no other label."""
    rects = [s for s in spots if s is not None]
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_labels_at_the_right_top_and_bottom_edges_stay_inside():
    width, height = 640, 480
    boxes = [(600, 0, 640, 100), (560, 400, 640, 480), (0, 0, 40, 40), (300, 470, 340, 480), (-20, -20, 700, 500)]
    spots = place_labels(boxes, [LABEL] * len(boxes), width, height)
    assert all(s is not None for s in spots)  # room for every one of them
    _check(spots, width, height)
    assert spots[0][2] == width  # right-aligned at the right edge, not cut off


def test_a_crowd_of_boxes_gets_labels_that_do_not_overlap():
    width, height = 640, 480
    rng = np.random.default_rng(0)
    x, y = rng.uniform(250, 350, 60), rng.uniform(200, 260, 60)
    boxes = np.stack([x, y, x + 30, y + 40], 1)
    spots = place_labels(boxes, [LABEL] * len(boxes), width, height)
    _check(spots, width, height)
    placed = sum(s is not None for s in spots)
    assert 10 <= placed < len(boxes)  # the first ones find room nearby; the rest are left out, never stacked
    assert all(s is not None for s in spots[:10])  # the most important (given first) are the ones kept


def test_a_label_bigger_than_the_frame_is_left_out():
    assert place_labels([(0, 0, 10, 10)], [(700, 22)], 640, 480) == [None]


@settings(max_examples=200, deadline=None)
@given(st.integers(40, 800), st.integers(30, 600),
       st.lists(st.tuples(st.floats(-100, 900), st.floats(-100, 700), st.floats(1, 400), st.floats(1, 300),
                          st.integers(10, 200), st.integers(8, 40)), max_size=40))
def test_any_boxes_any_frame(width, height, items):
    boxes = [(x, y, x + w, y + h) for x, y, w, h, _, _ in items]
    sizes = [(lw, lh) for *_, lw, lh in items]
    spots = place_labels(boxes, sizes, width, height)
    assert len(spots) == len(boxes)
    _check(spots, width, height)
    for spot, (lw, lh) in zip(spots, sizes):
        assert spot is None or (spot[2] - spot[0], spot[3] - spot[1]) == (lw, lh)
    if boxes and sizes[0][0] <= width and sizes[0][1] <= height:
        assert spots[0] is not None  # the first label always fits somewhere when it fits the frame


def test_draw_detections_paints_labels_inside_the_frame():
    frame = np.zeros((240, 320, 3), np.uint8)
    xyxy = np.array([[280, 10, 320, 60], [0, 200, 40, 240]], np.float32)
    dets = Detections.from_arrays(xyxy, np.array([0.9, 0.8], np.float32), np.array([0, 1]), ["person", "car"])
    out = draw_detections(frame, dets)
    assert out.shape == frame.shape
    assert out[0:40, 230:279].any()  # left of the box at the right edge: its label, right-aligned into the frame


def test_save_dir_says_where_the_images_went_and_keeps_same_named_sources(tmp_path):
    """Issue #11 item 8: `--save-dir` did not say where images went (and two a.jpg overwrote each other)."""
    import subprocess
    import sys

    import cv2

    from .onnx_models import constant_model, ultralytics_metadata, yolo11_output

    out = yolo11_output([[320, 320, 100, 60]], [[0.0, 0.9]])
    model = constant_model(tmp_path / "m.onnx", (1, 3, 640, 640), {"output0": out}, ultralytics_metadata(["a", "b"]))
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "a.jpg"), np.full((480, 640, 3), 90, np.uint8))
    result = subprocess.run([sys.executable, "-m", "edge", "detect", model, tmp_path / "x", tmp_path / "y" / "a.jpg",
                             "--save-dir", tmp_path / "saved", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2  # stdout stays JSON lines; the note goes to stderr
    assert f"edge: wrote 2 annotated image(s) to {tmp_path / 'saved'}" in result.stderr
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["a.jpg", "a_2.jpg"]
