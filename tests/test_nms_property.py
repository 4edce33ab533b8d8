"""Property tests: edge.nms against a slow, obviously-correct greedy NMS written out in plain Python.

Exactness: the implementation separates classes by shifting each class's boxes by class_id * span. With
coordinates on a dyadic grid (k * 2**e) that shift is exact in float64, so class-aware results must equal the
reference bit for bit; agnostic NMS does no shifting, so there any finite float32 coordinates must match.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge.nms import nms, non_max_suppression

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------- reference
def ref_iou(a, b) -> float:
    """Plain-area IoU; an inverted box has zero area; 0 when the union is 0."""
    area_a = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
    area_b = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def ref_nms(boxes, scores, classes=None, iou_threshold=0.5, max_det=-1, agnostic=True, max_candidates=None):
    """Greedy NMS: best score first (ties by index); keep a box unless it overlaps a kept one (> threshold)."""
    boxes = [[float(v) for v in b] for b in np.asarray(boxes, np.float64).reshape(-1, 4)]
    scores = [float(s) for s in np.asarray(scores, np.float64).reshape(-1)]
    n = len(scores)
    valid = [i for i in range(n) if math.isfinite(scores[i]) and all(math.isfinite(v) for v in boxes[i])]
    order = sorted(valid, key=lambda i: (-scores[i], i))
    if max_candidates is not None:
        order = order[:max_candidates]
    keep = []
    for i in order:
        if max_det >= 0 and len(keep) >= max_det:
            break
        suppressed = False
        for k in keep:
            if (agnostic or classes[k] == classes[i]) and ref_iou(boxes[k], boxes[i]) > iou_threshold:
                suppressed = True
                break
        if not suppressed:
            keep.append(i)
    return keep


def test_reference_iou_sanity():
    """The oracle itself: hand-computed IoUs."""
    assert ref_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert ref_iou([0, 0, 2, 1], [0, 0, 1, 1]) == 0.5
    assert ref_iou([0, 0, 1, 1], [0, 0, 1, 1]) == 1.0
    assert ref_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # union 0
    assert ref_iou([2, 2, 0, 0], [0, 0, 2, 2]) == 0.0  # inverted box: zero area, no overlap
    assert ref_nms([[0, 0, 2, 1], [0, 0, 1, 1]], [0.9, 0.8], iou_threshold=0.5) == [0, 1]
    assert ref_nms([[0, 0, 2, 1], [0, 0, 1, 1]], [0.9, 0.8], iou_threshold=0.49) == [0]


# ---------------------------------------------------------------------------------------------- strategies
# A few fixed values make exact score ties common; floats fill in between.
scores_st = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.75, 1.0]),
                      st.floats(0, 1, width=32))
thresholds = st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), st.floats(0, 1))
max_dets = st.sampled_from([-1, 0, 1, 2, 3, 5, 300])


@st.composite
def grid_boxes(draw, max_n=25):
    """Boxes on a dyadic grid (exact after the class shift), clustered so that many overlap; some inverted
    (negative width/height) or zero-area; coordinates from 1/8 px up to 2**20 px scale."""
    n = draw(st.integers(0, max_n))
    unit = draw(st.sampled_from([0.125, 1.0, 2.0 ** 20]))
    corner = draw(arrays(np.int64, (n, 2), elements=st.integers(-40, 120)))
    size = draw(arrays(np.int64, (n, 2), elements=st.integers(-10, 60)))  # negative: inverted box; 0: zero area
    return (np.concatenate([corner, corner + size], axis=1) * unit).astype(np.float32)


@st.composite
def float_boxes(draw, max_n=25):
    """Arbitrary finite float32 boxes (agnostic NMS does no shifting, so no rounding can differ)."""
    n = draw(st.integers(0, max_n))
    return draw(arrays(np.float32, (n, 4), elements=st.floats(-1e4, 1e4, width=32)))


@st.composite
def detections(draw, boxes_st, num_classes=4):
    boxes = draw(boxes_st)
    n = len(boxes)
    scores = draw(arrays(np.float32, n, elements=scores_st))
    classes = draw(arrays(np.int64, n, elements=st.integers(0, num_classes - 1)))
    return boxes, scores, classes


def check(result, expected):
    assert isinstance(result, np.ndarray) and result.dtype == np.int64 and result.ndim == 1
    assert result.tolist() == expected


# ---------------------------------------------------------------------------------------------- nms()
@SETTINGS
@given(detections(st.one_of(grid_boxes(), float_boxes())), thresholds, max_dets)
@example((np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)), 0.5, -1)
@example((np.array([[0, 0, 1, 1]], np.float32), np.array([0.3], np.float32), np.zeros(1, np.int64)), 0.5, -1)
def test_nms_matches_reference(data, iou, max_det):
    boxes, scores, _ = data
    check(nms(boxes, scores, iou, max_keep=max_det), ref_nms(boxes, scores, iou_threshold=iou, max_det=max_det))


# ---------------------------------------------------------------------------------------------- non_max_suppression()
@SETTINGS
@given(detections(grid_boxes()), thresholds, max_dets, st.booleans())
def test_non_max_suppression_matches_reference(data, iou, max_det, agnostic):
    boxes, scores, classes = data
    expected = ref_nms(boxes, scores, classes, iou, max_det, agnostic)
    check(non_max_suppression(boxes, scores, classes, iou, max_det, agnostic), expected)


@SETTINGS
@given(detections(float_boxes()), thresholds, max_dets)
def test_agnostic_matches_reference_on_any_finite_boxes(data, iou, max_det):
    boxes, scores, classes = data
    expected = ref_nms(boxes, scores, classes, iou, max_det, agnostic=True)
    check(non_max_suppression(boxes, scores, classes, iou, max_det, agnostic=True), expected)


@SETTINGS
@given(detections(grid_boxes()), thresholds, st.integers(1, 10))
def test_max_candidates_keeps_the_best_scores(data, iou, max_candidates):
    boxes, scores, classes = data
    expected = ref_nms(boxes, scores, classes, iou, 300, False, max_candidates=max_candidates)
    check(non_max_suppression(boxes, scores, classes, iou, 300, False, max_candidates=max_candidates), expected)


nonfinite = st.sampled_from([np.nan, np.inf, -np.inf])


@SETTINGS
@given(detections(grid_boxes(max_n=15)), st.data(), thresholds, st.booleans())
def test_nonfinite_scores_and_boxes_are_dropped(data, draw, iou, agnostic):
    boxes, scores, classes = data
    boxes, scores = boxes.copy(), scores.copy()
    n = len(scores)
    for i in range(n):  # poison some scores and some coordinates
        if draw.draw(st.booleans()):
            scores[i] = draw.draw(nonfinite)
        if draw.draw(st.booleans()):
            boxes[i, draw.draw(st.integers(0, 3))] = draw.draw(nonfinite)
    with np.errstate(all="raise"):  # no floating-point warnings from the poisoned values either
        keep = non_max_suppression(boxes, scores, classes, iou, 300, agnostic)
    bad = ~(np.isfinite(scores) & np.isfinite(boxes).all(axis=1))
    assert not bad[keep].any()
    check(keep, ref_nms(boxes, scores, classes, iou, 300, agnostic))


def test_all_nonfinite_gives_empty():
    boxes = np.array([[0, 0, 1, 1], [np.nan, 0, 1, 1], [0, 0, np.inf, 1]], np.float32)
    scores = np.array([np.nan, 0.9, 0.8], np.float32)
    check(non_max_suppression(boxes, scores, np.zeros(3, np.int64)), [])


def test_empty_and_single():
    empty = np.zeros((0, 4), np.float32)
    check(non_max_suppression(empty, np.zeros(0, np.float32), np.zeros(0, np.int64)), [])
    check(nms(empty, np.zeros(0, np.float32), 0.5), [])
    one = np.array([[5, 5, 4, 4]], np.float32)  # even an inverted box survives on its own
    check(non_max_suppression(one, np.array([0.1], np.float32), np.array([7])), [0])


def test_classes_never_suppress_each_other_unless_agnostic():
    """Identical boxes in different classes: class-aware keeps all (best first), agnostic keeps one."""
    boxes = np.tile(np.array([[10, 10, 50, 50]], np.float32), (4, 1))
    scores = np.array([0.5, 0.9, 0.7, 0.9], np.float32)
    classes = np.array([0, 1, 2, 1])
    check(non_max_suppression(boxes, scores, classes, 0.5), [1, 2, 0])
    check(non_max_suppression(boxes, scores, classes, 0.5, agnostic=True), [1])


def test_huge_boxes_do_not_collide_across_classes():
    """A fixed class offset (Ultralytics' 7680) would overlap boxes this large; the data-sized span must not."""
    boxes = np.array([[0, 0, 10000, 10000], [7680, 0, 17680, 10000]], np.float32)
    check(non_max_suppression(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.1), [0, 1])


def test_max_det_zero_keeps_nothing():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], np.float32)
    check(non_max_suppression(boxes, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64), max_det=0), [])


@SETTINGS
@given(data=detections(st.one_of(grid_boxes(), float_boxes())), iou=thresholds, max_det=max_dets)
def test_sweep_path_matches_reference_on_small_inputs(sweep_path_only, data, iou, max_det):
    """Inputs this small take the plain-Python path; force the numpy x-sweep on them and compare with the reference."""
    boxes, scores, _ = data
    check(nms(boxes, scores, iou, max_keep=max_det), ref_nms(boxes, scores, iou_threshold=iou, max_det=max_det))


@SETTINGS
@given(detections(grid_boxes()), thresholds, max_dets, st.booleans())
def test_class_aware_sweep_path_matches_reference(sweep_path_only, data, iou, max_det, agnostic):
    """The same for non_max_suppression: class offsets and the sweep, against the reference."""
    boxes, scores, classes = data
    expected = ref_nms(boxes, scores, classes, iou, max_det, agnostic)
    check(non_max_suppression(boxes, scores, classes, iou, max_det, agnostic), expected)


@pytest.fixture(scope="module")
def sweep_path_only():
    """No input takes the plain-Python path (a module fixture: hypothesis runs many examples per test call)."""
    import edge.nms as module
    saved, module.PYTHON_BOXES = module.PYTHON_BOXES, 0
    yield
    module.PYTHON_BOXES = saved
