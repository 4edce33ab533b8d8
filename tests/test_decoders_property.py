"""Property tests: the output decoders against brute-force loops over anchors and classes (score > conf)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge.decode import decode_damo_yolo, decode_damo_yolo_head, decode_yolo11, decode_yolo11_end2end

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F32 = np.float32

# Scores from a small set make argmax ties and scores exactly equal to conf common.
score_values = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1, width=32))
confs = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75]), st.floats(0, 1))
coord_values = st.floats(-1000, 1000, width=32)
input_sizes = st.one_of(st.just((1.0, 1.0)), st.tuples(st.integers(32, 1280), st.integers(32, 1280)))


def above(score, conf) -> bool:
    """score > conf as the decoders (and torch) compare: a Python float threshold is cast to the scores'
    float32, so a float32 score equal to float32(conf) is not above it."""
    return bool(F32(score) > F32(conf))


def rows_of(boxes, scores, class_ids):
    """Decoder result -> list of (class, score, x1, y1, x2, y2) python tuples."""
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and class_ids.dtype == np.int64
    assert boxes.shape == (len(scores), 4) and class_ids.shape == scores.shape
    return [(int(c), float(s), *map(float, b)) for b, s, c in zip(boxes, scores, class_ids)]


# ---------------------------------------------------------------------------------------------- YOLO11
def ref_yolo11(pred, num_classes, conf, multi_label, size):
    """pred [4+nc, N]: one candidate per anchor (best class, first on ties) or per (anchor, class) > conf."""
    out = []
    sx, sy = F32(size[0]), F32(size[1])
    for a in range(pred.shape[1]):
        cx, cy, w, h = (F32(v) for v in pred[:4, a])
        x1, y1, x2, y2 = cx - w / F32(2), cy - h / F32(2), cx + w / F32(2), cy + h / F32(2)
        if size != (1.0, 1.0):
            x1, x2, y1, y2 = x1 * sx, x2 * sx, y1 * sy, y2 * sy
        box = (float(x1), float(y1), float(x2), float(y2))
        cls = [float(pred[4 + c, a]) for c in range(num_classes)]
        if multi_label:
            out += [(c, s, *box) for c, s in enumerate(cls) if above(s, conf)]
        else:
            best = 0
            for c in range(1, num_classes):
                if cls[c] > cls[best]:
                    best = c
            if above(cls[best], conf):
                out.append((best, cls[best], *box))
    return out


@st.composite
def yolo11_outputs(draw):
    nc = draw(st.integers(1, 6))
    n = draw(st.integers(0, 40))
    xywh = draw(arrays(F32, (4, n), elements=coord_values))
    cls = draw(arrays(F32, (nc, n), elements=score_values))
    return nc, np.concatenate([xywh, cls]).astype(F32)


@SETTINGS
@given(yolo11_outputs(), confs, st.booleans(), input_sizes, st.sampled_from(["batched", "2d", "transposed"]))
def test_yolo11_matches_brute_force(data, conf, multi_label, size, layout):
    nc, pred = data
    if layout == "batched":
        output = pred[None]
    elif layout == "2d":
        output = pred
    else:  # [1, N, 4+nc] (some exporters transpose); ambiguous when N == 4+nc
        assume(pred.shape[1] != 4 + nc)
        output = np.ascontiguousarray(pred.T)[None]
    got = rows_of(*decode_yolo11(output, nc, conf, multi_label, size))
    expected = ref_yolo11(pred, nc, conf, multi_label, size)
    if multi_label:  # the same (anchor, class) candidates; their order is not part of the contract
        got, expected = sorted(got), sorted(expected)
    assert got == expected


def test_yolo11_threshold_is_strict_and_ties_take_the_first_class():
    pred = np.zeros((4 + 3, 2), F32)
    pred[:4, 0] = [10, 20, 4, 6]
    pred[4:, 0] = [0.5, 0.9, 0.9]  # tie between classes 1 and 2
    pred[4:, 1] = [0.25, 0.25, 0.1]  # best equals conf: dropped
    boxes, scores, class_ids = decode_yolo11(pred[None], 3, 0.25)
    assert class_ids.tolist() == [1] and scores.tolist() == [F32(0.9)]
    assert boxes.tolist() == [[8, 17, 12, 23]]
    boxes, scores, class_ids = decode_yolo11(pred[None], 3, 0.25, multi_label=True)
    assert sorted(class_ids.tolist()) == [0, 1, 2]
    boxes, _, _ = decode_yolo11(pred[None], 3, 0.25, input_size=(100, 10))  # normalized -> pixels, x by w
    assert boxes.tolist() == [[800, 170, 1200, 230]]


def test_yolo11_rejects_an_output_without_a_4_plus_nc_axis():
    with pytest.raises(ValueError, match="4\\+80"):
        decode_yolo11(np.zeros((1, 85, 100), F32), 80, 0.25)


# ---------------------------------------------------------------------------------------------- YOLO11 end2end
@st.composite
def end2end_outputs(draw):
    k = draw(st.integers(0, 30))
    boxes = draw(arrays(F32, (k, 4), elements=coord_values))
    scores = draw(arrays(F32, (k, 1), elements=score_values))
    classes = draw(arrays(F32, (k, 1), elements=st.integers(0, 79).map(float)))
    return np.concatenate([boxes, scores, classes], axis=1)[None]


@SETTINGS
@given(end2end_outputs(), confs, input_sizes)
def test_yolo11_end2end_matches_brute_force(output, conf, size):
    expected = []
    for x1, y1, x2, y2, s, c in output[0]:
        if above(s, conf):
            if size != (1.0, 1.0):
                x1, x2, y1, y2 = x1 * F32(size[0]), x2 * F32(size[0]), y1 * F32(size[1]), y2 * F32(size[1])
            expected.append((int(c), float(s), float(x1), float(y1), float(x2), float(y2)))
    assert rows_of(*decode_yolo11_end2end(output, conf, size)) == expected


def test_yolo11_end2end_rejects_rows_that_are_not_6_wide():
    with pytest.raises(ValueError, match="6 values"):
        decode_yolo11_end2end(np.zeros((1, 300, 7), F32), 0.25)


# ---------------------------------------------------------------------------------------------- DAMO-YOLO
@st.composite
def damo_outputs(draw):
    c = draw(st.integers(1, 6))
    n = draw(st.integers(0, 40))
    scores = draw(arrays(F32, (1, n, c), elements=score_values))
    boxes = draw(arrays(F32, (1, n, 4), elements=coord_values))
    return scores, boxes


@SETTINGS
@given(damo_outputs(), confs, st.booleans())
def test_damo_yolo_matches_brute_force(data, conf, multi_label):
    scores, boxes = data
    expected = []
    for a in range(scores.shape[1]):  # anchor-major, as the official post-processing selects them
        s = [float(v) for v in scores[0, a]]
        box = tuple(float(v) for v in boxes[0, a])
        if multi_label:
            expected += [(c, v, *box) for c, v in enumerate(s) if above(v, conf)]
        else:
            best = max(range(len(s)), key=lambda c: (s[c], -c))  # highest score, first class on ties
            if above(s[best], conf):
                expected.append((best, s[best], *box))
    assert rows_of(*decode_damo_yolo(scores, boxes, conf, multi_label)) == expected


def test_damo_yolo_rejects_disagreeing_anchor_counts():
    with pytest.raises(ValueError, match="disagree"):
        decode_damo_yolo(np.zeros((1, 10, 80), F32), np.zeros((1, 11, 4), F32), 0.05)


# ---------------------------------------------------------------------------------------------- DAMO-YOLO raw head
def ref_damo_head(cls_maps, reg_maps, strides, reg_max):
    """Per cell, in float64: softmax over each side's reg_max+1 bins, expected bin * stride from the cell's corner."""
    scores, boxes = [], []
    for cls, reg, stride in zip(cls_maps, reg_maps, strides):
        _, c, h, w = cls.shape
        for row in range(h):
            for col in range(w):
                scores.append([float(cls[0, k, row, col]) for k in range(c)])
                dist = []
                for side in range(4):
                    logits = [float(reg[0, side * (reg_max + 1) + b, row, col]) for b in range(reg_max + 1)]
                    top = max(logits)
                    e = [math.exp(v - top) for v in logits]
                    dist.append(sum(b * p for b, p in enumerate(e)) / sum(e) * stride)
                x, y = col * stride, row * stride
                boxes.append([x - dist[0], y - dist[1], x + dist[2], y + dist[3]])
    return np.asarray(scores, np.float64).reshape(-1, cls_maps[0].shape[1]), np.asarray(boxes).reshape(-1, 4)


@st.composite
def damo_heads(draw):
    c = draw(st.integers(1, 4))
    reg_max = draw(st.integers(1, 8))
    strides = (8, 16, 32)
    cls_maps, reg_maps = [], []
    for _ in strides:
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        cls_maps.append(draw(arrays(F32, (1, c, h, w), elements=st.floats(0, 1, width=32))))
        reg_maps.append(draw(arrays(F32, (1, 4 * (reg_max + 1), h, w), elements=st.floats(-20, 20, width=32))))
    return cls_maps, reg_maps, strides, reg_max


@SETTINGS
@given(damo_heads())
def test_damo_yolo_head_matches_brute_force(head):
    cls_maps, reg_maps, strides, reg_max = head
    scores, boxes = decode_damo_yolo_head(cls_maps, reg_maps, strides, reg_max)
    ref_scores, ref_boxes = ref_damo_head(cls_maps, reg_maps, strides, reg_max)
    assert scores.dtype == np.float32 and boxes.dtype == np.float32
    np.testing.assert_array_equal(scores, ref_scores.astype(F32))  # scores are only rearranged
    # distances reach reg_max * 32 px; float32 softmax keeps them within a few ulps of that
    np.testing.assert_allclose(boxes, ref_boxes, rtol=0, atol=1e-5 * 32 * reg_max + 1e-4)


@pytest.mark.needs_shared
@pytest.mark.parametrize("config, reg_max", [("T", 16), ("Ns", 7)])
def test_damo_yolo_head_matches_the_official_export(shared_path, config, reg_max):
    """The raw `--benchmark` head maps decode to the official deploy-form scores and boxes (SPEC §4.3)."""
    ref = np.load(shared_path("damo", f"out_{config}.npz"))
    scores, boxes = decode_damo_yolo_head([ref[f"bench_cls_{i}"] for i in range(3)],
                                          [ref[f"bench_reg_{i}"] for i in range(3)], (8, 16, 32), reg_max)
    assert scores.shape == ref["scores"].shape[1:] and boxes.shape == ref["boxes"].shape[1:]
    np.testing.assert_allclose(scores, ref["scores"][0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(boxes, ref["boxes"][0], rtol=0, atol=1e-3)
