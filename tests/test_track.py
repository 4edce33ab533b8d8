"""Tracker, its Kalman filter and its assignment solver."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import Detections
from edge.track import Tracker, kalman
from edge.track.assignment import linear_assignment


def _brute_force(cost, thresh):
    """Best sum(cost - thresh) over all partial matchings using pairs with cost <= thresh."""
    n, m = cost.shape
    best = 0.0

    def walk(i, used, total):
        nonlocal best
        if i == n:
            best = min(best, total)
            return
        walk(i + 1, used, total)
        for j in range(m):
            if j not in used and cost[i, j] <= thresh:
                walk(i + 1, used | {j}, total + cost[i, j] - thresh)

    walk(0, frozenset(), 0.0)
    return best


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6), st.integers(0, 6), st.sampled_from([0.3, 0.5, 0.8, 1.5]), st.integers(0, 2**32 - 1),
       st.booleans())
def test_assignment_is_optimal_against_brute_force(n, m, thresh, seed, coarse):
    rng = np.random.default_rng(seed)
    cost = rng.random((n, m))
    if coarse:  # many ties
        cost = np.round(cost, 1)
    cost[rng.random((n, m)) < 0.2] = np.inf
    pairs, free_rows, free_cols = linear_assignment(cost, thresh)
    assert sorted(pairs[:, 0].tolist() + free_rows.tolist()) == list(range(n))
    assert sorted(pairs[:, 1].tolist() + free_cols.tolist()) == list(range(m))
    assert all(cost[i, j] <= thresh for i, j in pairs)
    got = sum(cost[i, j] - thresh for i, j in pairs)
    assert abs(got - _brute_force(cost, thresh)) < 1e-9


def test_assignment_prefers_global_optimum_over_greedy():
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])  # greedy takes (0,0) then (1,1) = 1.0; optimum (0,1)+(1,0) = 0.35
    pairs, _, _ = linear_assignment(cost, 1.0)
    assert pairs.tolist() == [[0, 1], [1, 0]]
    pairs, free_rows, _ = linear_assignment(cost, 0.5)  # (1,1) is over the threshold now
    assert pairs.tolist() == [[0, 1], [1, 0]]


def _full_kalman(steps, z0):
    """Reference BoT-SORT KalmanFilterXYWH with full 8x8 matrices (noise of x, w scaled by width; y, h by height)."""
    f = np.eye(8)
    f[:4, 4:] = np.eye(4)
    mean = np.r_[z0, np.zeros(4)]
    w, h = z0[2], z0[3]
    cov = np.diag(np.r_[2 * np.r_[w, h, w, h] / 20, 10 * np.r_[w, h, w, h] / 160] ** 2)
    for z in steps:
        w, h = mean[2], mean[3]
        q = np.diag(np.r_[np.r_[w, h, w, h] / 20, np.r_[w, h, w, h] / 160] ** 2)
        mean, cov = f @ mean, f @ cov @ f.T + q
        if z is not None:
            hm = np.eye(4, 8)
            w, h = mean[2], mean[3]
            s = hm @ cov @ hm.T + np.diag(np.r_[w, h, w, h] / 20) ** 2
            gain = cov @ hm.T @ np.linalg.inv(s)
            mean = mean + gain @ (z - hm @ mean)
            cov = cov - gain @ s @ gain.T
    return mean, cov


def test_kalman_blocks_match_the_full_matrix_filter():
    rng = np.random.default_rng(0)
    z0 = np.array([100.0, 50.0, 40.0, 80.0])
    steps = [z0 + [3 * t, -t, 0.7 * t, 0.5 * t] + rng.normal(0, 1, 4) for t in range(1, 12)]
    steps[4] = steps[5] = None  # missed frames: predict only
    mean, var = kalman.initiate(z0[None])
    for z in steps:
        mean, var = kalman.predict(mean, var)
        if z is not None:
            mean, var = kalman.update(mean, var, np.asarray(z)[None])
    ref_mean, ref_cov = _full_kalman(steps, z0)
    np.testing.assert_allclose(mean[0], ref_mean, rtol=1e-9)
    np.testing.assert_allclose(var[0, 0], np.diag(ref_cov)[:4], rtol=1e-9)
    np.testing.assert_allclose(var[0, 1], np.diag(ref_cov[:4, 4:]), rtol=1e-9)
    np.testing.assert_allclose(var[0, 2], np.diag(ref_cov)[4:], rtol=1e-9)
    assert abs(mean[0, 4] - 3) < 0.5 and abs(mean[0, 6] - 0.7) < 0.5  # learned the x and width velocities


def _box(cx, cy, w=30, h=60):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _frame(boxes, scores=None, classes=None):
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores if scores is not None else [0.9] * n,
                      classes if classes is not None else [0] * n)


def _id_at(tracked, x):
    """Track id of the returned box whose centre x is nearest x."""
    centres = (tracked.xyxy[:, 0] + tracked.xyxy[:, 2]) / 2
    return int(tracked.track_ids[np.argmin(np.abs(centres - x))])


def test_ids_survive_objects_crossing_and_a_short_dropout():
    tracker = Tracker()
    ids = []
    for t in range(60):
        a, b = 100 + 5 * t, 400 - 5 * t  # cross at t = 30, slightly different rows
        boxes = [_box(a, 200), _box(b, 215)]
        if 40 <= t < 45:
            boxes = boxes[:1]  # b missed for 5 frames
        tracked = tracker.update(_frame(boxes))
        if not 40 <= t < 45 and t != 30:  # at t = 30 the centres coincide
            ids.append((_id_at(tracked, a), _id_at(tracked, b)))
    assert len(set(ids)) == 1 and ids[0] == (1, 2)


def test_id_survives_an_object_entering_through_the_frame_edge_and_missed_for_three_frames():
    # Entering from the right, the box is clipped at x = 640: its width grows 6 px a frame while its height stays.
    # A filter that cannot follow the shape change (ByteTrack's aspect-ratio state) keeps a box too narrow to match.
    tracker = Tracker()
    tracker.update(_frame([_box(100, 300)]))  # someone else, so the next track is not confirmed on frame 1
    ids = []
    for t in range(1, 15):
        boxes = [_box(100, 300)] + ([[640 - 6 * t, 100, 640, 140]] if not 6 <= t < 9 else [])
        ids.append(sorted(tracker.update(_frame(boxes, [0.9, 0.62][:len(boxes)])).track_ids.tolist()))
    assert ids == [[1]] + [[1, 2]] * 4 + [[1]] * 3 + [[1, 2]] * 6  # confirmed on its second frame, same id after


def test_returned_boxes_are_the_detections_in_input_order():
    tracker = Tracker()
    frame = _frame([_box(300, 100), _box(100, 100)], [0.8, 0.95])
    tracked = tracker.update(frame)
    assert tracked == Detections(frame.xyxy, frame.scores, frame.class_ids, [], [1, 2])


def test_low_score_detection_keeps_the_track_alive():
    def run(occluded_score):
        tracker = Tracker(track_buffer=3)
        for t in range(10):
            tracker.update(_frame([_box(100 + 4 * t, 100)]))
        during = [tracker.update(_frame([_box(100 + 4 * t, 100)], [occluded_score])).track_ids.tolist()
                  for t in range(10, 20)]  # occluded: only a low-confidence detection
        tracker.update(_frame([_box(180, 100)]))
        return during[-1], tracker.update(_frame([_box(184, 100)])).track_ids.tolist()

    assert run(0.3) == ([1], [1])  # second stage matched the low-score boxes all along
    assert run(0.05) == ([], [2])  # below low_thresh: the track was lost past its buffer, a new id starts


def test_min_hits_delays_ids_and_drops_one_frame_flickers():
    tracker = Tracker(min_hits=3)
    assert len(tracker.update(_frame([_box(100, 100)]))) == 1  # first frame confirms at once (as ByteTrack)
    seen = []
    for t in range(1, 7):  # B seen at t = 1, 2, (missed), 4, 5, 6; C flickers at t = 3 only
        boxes = [_box(100, 100), _box(400, 100)] if t != 3 else [_box(100, 100), _box(600, 300)]
        seen.append(tracker.update(_frame(boxes)).track_ids.tolist())
    assert seen == [[1], [1], [1], [1], [1], [1, 2]]  # a miss restarts B's count: it shows on hit 3 of 4, 5, 6


def test_lost_track_expires_after_its_buffer_scaled_by_frame_rate():
    def returns_with_same_id(frame_rate, gap):
        tracker = Tracker(frame_rate=frame_rate, track_buffer=30)
        for _ in range(5):
            tracker.update(_frame([_box(100, 100)]))
        for _ in range(gap):
            tracker.update(_frame([]))
        return tracker.update(_frame([_box(100, 100)])).track_ids.tolist() == [1]

    assert returns_with_same_id(30, 30)
    assert not returns_with_same_id(30, 32)
    assert returns_with_same_id(60, 60)
    assert not returns_with_same_id(15, 17)


def test_per_class_matching_refuses_a_class_change():
    for agnostic, expected in ((True, [1]), (False, [])):
        tracker = Tracker(class_agnostic=agnostic)
        tracker.update(_frame([_box(100, 100)], classes=[0]))
        tracked = tracker.update(_frame([_box(102, 100)], classes=[1]))
        assert tracked.track_ids.tolist() == expected  # per-class: a new tentative track instead


def test_reset_restarts_ids_and_empty_frames_work():
    tracker = Tracker()
    assert len(tracker.update(Detections.empty())) == 0
    tracker.update(_frame([_box(100, 100), _box(300, 100)]))
    tracker.reset()
    assert tracker.update(_frame([_box(500, 100)])).track_ids.tolist() == [1]
