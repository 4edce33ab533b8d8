"""edge.nms's two paths: the plain-Python greedy pass (few candidates, within its pair budget) and the numpy
x-sweep (many candidates, or when the Python pass runs over budget) give the same result as each other and as the
reference."""
import numpy as np
import pytest

import edge.nms as module
from edge.nms import nms, non_max_suppression
from tests.test_nms_property import ref_nms


def clustered(rng: np.random.Generator, n: int, width: float = 640.0) -> tuple:
    """n float32 boxes around a few objects (as a detector's candidates look), some inverted or empty."""
    centres = rng.uniform(0, width, (max(1, n // 40), 2))
    pick = centres[rng.integers(len(centres), size=n)] + rng.normal(0, 8, (n, 2))
    size = rng.uniform(10, 120, (n, 2)) * rng.choice([1, 1, 1, 1, 1, 1, 1, 1, 0, -1], (n, 1))
    boxes = np.concatenate([pick - size / 2, pick + size / 2], axis=1).astype(np.float32)
    scores = rng.choice(rng.uniform(0, 1, n // 3 + 1), n).astype(np.float32)  # repeated scores: ties
    return boxes, scores, rng.integers(0, 5, n)


def python_path_only(m: pytest.MonkeyPatch) -> None:
    """Every input takes the plain-Python path: no size limit, no pair budget."""
    m.setattr(module, "PYTHON_BOXES", 10 ** 9)
    m.setattr(module, "PYTHON_PAIRS", 10 ** 9)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("iou", [0.0, 0.45, 0.65, 1.0])
def test_sweep_path_equals_python_path(monkeypatch, seed, iou):
    """Class-aware and agnostic, 800 clustered candidates: the Python pass (which compares a box only with kept boxes
    of its own class) and the sweep (which offsets classes apart) keep the same boxes in the same order."""
    rng = np.random.default_rng(seed)
    boxes, scores, classes = clustered(rng, 800)
    expected = {}
    with monkeypatch.context() as m:
        python_path_only(m)
        for agnostic in (False, True):
            expected[agnostic] = non_max_suppression(boxes, scores, classes, iou, 300, agnostic).tolist()
    monkeypatch.setattr(module, "PYTHON_BOXES", 0)
    monkeypatch.setattr(module, "PAIR_CHUNK", 997)  # many chunks, boundaries inside a box's run of pairs
    for agnostic in (False, True):
        assert non_max_suppression(boxes, scores, classes, iou, 300, agnostic).tolist() == expected[agnostic]
    assert len(expected[False]) > 50  # the scene really has many separate objects


def test_python_path_hands_over_to_the_sweep_past_its_pair_budget():
    """40 separate boxes of one class: every box is checked against every kept one (780 checks), past the budget, so
    the Python pass gives up (None) and the sweep answers, still equal to the reference."""
    boxes = np.array([[10 * k, 0, 10 * k + 5, 5] for k in range(40)], np.float32)
    scores = np.linspace(1, 0.1, len(boxes)).astype(np.float32)
    assert len(boxes) <= module.PYTHON_BOXES
    assert module._greedy_python(boxes.tolist(), None, 0.5, -1) is None
    expected = ref_nms(boxes, scores, iou_threshold=0.5)
    assert non_max_suppression(boxes, scores, np.zeros(40, np.int64), 0.5, 300).tolist() == expected
    assert nms(boxes, scores, 0.5).tolist() == expected


def test_sweep_path_matches_reference_on_a_dense_scene():
    """400 boxes (more than the Python pass takes) that all overlap in x: the sweep scores nearly every pair."""
    rng = np.random.default_rng(7)
    boxes, scores, _ = clustered(rng, 400, width=100.0)
    assert len(boxes) > module.PYTHON_BOXES
    for iou in (0.3, 0.7):
        assert nms(boxes, scores, iou).tolist() == ref_nms(boxes, scores, iou_threshold=iou)
        assert nms(boxes, scores, iou, max_keep=5).tolist() == ref_nms(boxes, scores, iou_threshold=iou, max_det=5)


def test_negative_threshold_keeps_only_the_best_box_on_both_paths(monkeypatch):
    """Every IoU (>= 0) exceeds a negative threshold, across classes too: only the best box survives."""
    boxes, scores, classes = clustered(np.random.default_rng(1), 200)
    best = int(np.argmax(scores))
    for limit in (10 ** 9, 0):  # the Python path, then the sweep
        monkeypatch.setattr(module, "PYTHON_BOXES", limit)
        assert nms(boxes, scores, -0.1).tolist() == [best]
        assert non_max_suppression(boxes, scores, classes, -0.1).tolist() == [best]


def test_boxes_exactly_at_the_threshold_are_kept_on_both_paths(monkeypatch):
    """IoU equal to the threshold does not suppress, on the Python path and on the sweep."""
    boxes = np.array([[0, 0, 4, 1], [1, 0, 5, 1], [2, 0, 6, 1]] + [[1000 + 10 * k, 0, 1001 + 10 * k, 1]
                                                                  for k in range(5)], np.float32)
    scores = np.linspace(1, 0.1, len(boxes)).astype(np.float32)
    for limit in (10 ** 9, 0):
        monkeypatch.setattr(module, "PYTHON_BOXES", limit)
        # IoU(0,1) = 3/5 > 0.5 suppresses 1; IoU(0,2) = 2/6 keeps 2; IoU(0,1) at threshold 0.6 exactly keeps 1.
        assert nms(boxes, scores, 0.5).tolist() == [0, 2, *range(3, len(boxes))]
        assert nms(boxes, scores, 0.6).tolist() == list(range(len(boxes)))
