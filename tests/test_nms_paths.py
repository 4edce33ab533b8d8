"""edge.nms on large inputs (the x-sweep) against its small-input path (plain Python) and the reference."""
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


@pytest.fixture
def small_path_only(monkeypatch):
    """Every input takes the small-input (plain Python) path."""
    monkeypatch.setattr(module, "MATRIX_LIMIT", 10 ** 9)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("iou", [0.0, 0.45, 0.65, 1.0])
def test_sweep_path_equals_small_path(monkeypatch, seed, iou):
    rng = np.random.default_rng(seed)
    boxes, scores, classes = clustered(rng, 800)
    expected = {}
    with monkeypatch.context() as m:
        m.setattr(module, "MATRIX_LIMIT", 10 ** 9)
        for agnostic in (False, True):
            expected[agnostic] = non_max_suppression(boxes, scores, classes, iou, 300, agnostic).tolist()
    monkeypatch.setattr(module, "PAIR_CHUNK", 997)  # many chunks, boundaries inside a box's run of pairs
    for agnostic in (False, True):
        assert non_max_suppression(boxes, scores, classes, iou, 300, agnostic).tolist() == expected[agnostic]
    assert len(expected[False]) > 50  # the scene really has many separate objects


def test_sweep_path_matches_reference_on_a_dense_scene():
    rng = np.random.default_rng(7)
    boxes, scores, _ = clustered(rng, 400, width=100.0)  # everything overlaps everything in x
    assert len(boxes) > module.MATRIX_LIMIT
    for iou in (0.3, 0.7):
        assert nms(boxes, scores, iou).tolist() == ref_nms(boxes, scores, iou_threshold=iou)
        assert nms(boxes, scores, iou, max_keep=5).tolist() == ref_nms(boxes, scores, iou_threshold=iou, max_det=5)


def test_negative_threshold_keeps_only_the_best_box_on_both_paths(small_path_only):
    boxes, scores, _ = clustered(np.random.default_rng(1), 200)
    best = int(np.argmax(scores))
    assert nms(boxes, scores, -0.1).tolist() == [best]
    module.MATRIX_LIMIT = 0
    assert nms(boxes, scores, -0.1).tolist() == [best]


def test_boxes_exactly_at_the_threshold_are_kept():
    """IoU equal to the threshold does not suppress on the sweep path either (60 far boxes push n past the limit)."""
    boxes = np.array([[0, 0, 4, 1], [1, 0, 5, 1], [2, 0, 6, 1]] + [[1000 + 10 * k, 0, 1001 + 10 * k, 1]
                                                                  for k in range(60)], np.float32)
    scores = np.linspace(1, 0.1, len(boxes)).astype(np.float32)
    # IoU(0,1) = 3/5 > 0.5 suppresses 1; IoU(0,2) = 2/6 keeps 2; IoU(0,1) at threshold 0.6 exactly keeps 1.
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, *range(3, len(boxes))]
    assert nms(boxes, scores, 0.6).tolist() == list(range(len(boxes)))
