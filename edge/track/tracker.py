"""ByteTrack-style multi-object tracker: Kalman-predicted boxes matched to detections in two score stages.

Reproduces the public behaviour of ByteTrack (Zhang et al. 2022, BYTETracker.update): high-score detections are
matched first against all tracked and lost tracks (IoU fused with score), the remaining tracked tracks then against
low-score detections, tentative tracks against what is left; unmatched high-score detections start tentative tracks;
lost tracks are kept for `track_buffer * frame_rate / 30` frames. Own code, one numpy array per track attribute.
Differences: a track gets its id when it is confirmed (`min_hits` consecutive matches), so ids stay dense; boxes
returned are the detections' own boxes, not the filter's; the Kalman state is BoT-SORT's (x, y, w, h), not
ByteTrack's (x, y, aspect, h), see kalman.py; ByteTrack's removal of tracked/lost duplicates (IoU > 0.85) is left
out (it never fired on bench/track_bench.py's scenes).
"""
from __future__ import annotations

import numpy as np

from ..detections import Detections
from . import kalman
from .assignment import linear_assignment

TENTATIVE, TRACKED, LOST = 0, 1, 2


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) float32 IoU of xyxy boxes a (N, 4) and b (M, 4); in-place ops keep temporaries few."""
    ax1, ay1, ax2, ay2 = np.asarray(a, np.float32).T.copy()
    bx1, by1, bx2, by2 = np.asarray(b, np.float32).T.copy()
    iw = np.minimum(ax2[:, None], bx2)
    iw -= np.maximum(ax1[:, None], bx1)
    ih = np.minimum(ay2[:, None], by2)
    ih -= np.maximum(ay1[:, None], by1)
    np.maximum(iw, 0, out=iw)
    np.maximum(ih, 0, out=ih)
    iw *= ih
    union = np.add(((ax2 - ax1) * (ay2 - ay1))[:, None], (bx2 - bx1) * (by2 - by1), out=ih)
    union -= iw
    np.maximum(union, 1e-9, out=union)
    return np.divide(iw, union, out=iw)


class Tracker:
    """Assigns stable track ids to detections frame after frame (one Tracker per video source)."""

    def __init__(
        self,
        frame_rate: float = 30,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_thresh: float = 0.9,
        low_match_thresh: float = 0.5,
        tentative_match_thresh: float = 0.7,
        track_buffer: int = 30,
        min_hits: int = 2,
        class_agnostic: bool = True,
        fuse_score: bool = True,
    ) -> None:
        """Defaults are ByteTrack's demo ones except match_thresh 0.9 (0.8 there), the value of its MOT17 evaluation.

        Score thresholds apply to detection scores; match thresholds are the largest 1 - IoU (x score) cost kept.

        frame_rate: the source's fps; with track_buffer (frames at 30 fps) it sets how long a lost track may return.
        high_thresh / low_thresh: first-stage scores and the floor of the second, low-score stage (run the
        detector with conf <= low_thresh for the second stage to see anything).
        new_track_thresh: an unmatched detection at least this confident starts a track.
        min_hits: consecutive matched frames before a track is confirmed and gets an id (the first frame after
        construction or reset() confirms at once, as ByteTrack does).
        class_agnostic: False matches a track only to detections of its class.
        fuse_score: multiply IoU by detection score in the high-score and tentative stages (ByteTrack on MOT17).
        """
        if not 0 <= low_thresh <= high_thresh <= new_track_thresh:
            raise ValueError("Tracker needs 0 <= low_thresh <= high_thresh <= new_track_thresh")
        if min_hits < 1 or track_buffer < 0 or frame_rate <= 0:
            raise ValueError("Tracker needs min_hits >= 1, track_buffer >= 0 and frame_rate > 0")
        self.high_thresh = high_thresh
        self.low_thresh = low_thresh
        self.new_track_thresh = new_track_thresh
        self.match_thresh = match_thresh
        self.low_match_thresh = low_match_thresh
        self.tentative_match_thresh = tentative_match_thresh
        self.max_lost = int(frame_rate / 30.0 * track_buffer)
        self.min_hits = min_hits
        self.class_agnostic = class_agnostic
        self.fuse_score = fuse_score
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._frame = 0
        self._next_id = 1
        self._mean = np.zeros((0, 8))
        self._var = np.zeros((0, 3, 4))
        self._state = np.zeros(0, np.int8)
        self._ids = np.zeros(0, np.int64)  # 0 until confirmed
        self._hits = np.zeros(0, np.int64)
        self._last = np.zeros(0, np.int64)  # frame of the last match
        self._cls = np.zeros(0, np.int64)

    def update(self, detections: Detections) -> Detections:
        """Match this frame's detections to tracks; returns those on confirmed tracks, with track_ids set."""
        self._frame += 1
        if len(self._state):
            self._mean[self._state == LOST, 6:] = 0  # a lost box keeps moving but stops growing (as BoT-SORT)
            self._mean, self._var = kalman.predict(self._mean, self._var)
        track_boxes = kalman.xywh_to_xyxy(self._mean[:, :4])
        scores = detections.scores
        det_track = np.full(len(detections), -1, np.int64)  # track index matched to each detection

        high = np.flatnonzero(scores >= self.high_thresh)
        low = np.flatnonzero((scores >= self.low_thresh) & (scores < self.high_thresh))
        pool = np.flatnonzero(self._state != TENTATIVE)
        left_tracks, left_high = self._match(pool, high, track_boxes, detections, self.match_thresh,
                                             self.fuse_score, det_track)
        still_tracked = left_tracks[self._state[left_tracks] == TRACKED]
        self._match(still_tracked, low, track_boxes, detections, self.low_match_thresh, False, det_track)
        tentative = np.flatnonzero(self._state == TENTATIVE)
        _, left_high = self._match(tentative, left_high, track_boxes, detections, self.tentative_match_thresh,
                                   self.fuse_score, det_track)

        matched_dets = np.flatnonzero(det_track >= 0)
        matched = det_track[matched_dets]
        if len(matched):
            xywh = kalman.xyxy_to_xywh(detections.xyxy[matched_dets])
            self._mean[matched], self._var[matched] = kalman.update(self._mean[matched], self._var[matched], xywh)
            self._hits[matched] += 1
            self._last[matched] = self._frame
            self._cls[matched] = detections.class_ids[matched_dets]
        was = self._state.copy()
        hit = np.zeros(len(was), bool)
        hit[matched] = True
        self._state[hit & (was != TENTATIVE)] = TRACKED
        self._state[~hit & (was == TRACKED)] = LOST
        confirm = matched[(was[matched] == TENTATIVE) & (self._hits[matched] >= self.min_hits)]
        self._state[confirm] = TRACKED
        self._ids[confirm] = np.arange(self._next_id, self._next_id + len(confirm))
        self._next_id += len(confirm)
        keep = ~(~hit & (was == TENTATIVE)) & ~((self._state == LOST) & (self._frame - self._last > self.max_lost))

        out = matched_dets[self._state[matched] == TRACKED]
        out_ids = self._ids[det_track[out]]
        self._compact(keep)
        new = left_high[scores[left_high] >= self.new_track_thresh]
        if len(new):
            new_ids = self._start(detections, new)
            confirmed = new_ids > 0
            order = np.argsort(np.concatenate([out, new[confirmed]]), kind="stable")
            out = np.concatenate([out, new[confirmed]])[order]
            out_ids = np.concatenate([out_ids, new_ids[confirmed]])[order]
        tracked = detections[out]
        tracked.track_ids = out_ids
        return tracked

    def _match(self, tracks: np.ndarray, dets: np.ndarray, track_boxes: np.ndarray, detections: Detections,
               thresh: float, fuse: bool, det_track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One association stage; writes det_track and returns (unmatched tracks, unmatched detections)."""
        if len(tracks) == 0 or len(dets) == 0:
            return tracks, dets
        similarity = box_iou(track_boxes[tracks], detections.xyxy[dets])
        if fuse:
            similarity *= detections.scores[dets][None, :]
        cost = 1.0 - similarity
        if not self.class_agnostic:
            cost[self._cls[tracks][:, None] != detections.class_ids[dets][None, :]] = np.inf
        pairs, free_tracks, free_dets = linear_assignment(cost, thresh)
        det_track[dets[pairs[:, 1]]] = tracks[pairs[:, 0]]
        return tracks[free_tracks], dets[free_dets]

    def _compact(self, keep: np.ndarray) -> None:
        """Drop removed tracks from every per-track array."""
        if keep.all():
            return
        self._mean, self._var, self._state = self._mean[keep], self._var[keep], self._state[keep]
        self._ids, self._hits = self._ids[keep], self._hits[keep]
        self._last, self._cls = self._last[keep], self._cls[keep]

    def _start(self, detections: Detections, new: np.ndarray) -> np.ndarray:
        """Start tracks on these detections; returns their ids (0 while tentative)."""
        mean, var = kalman.initiate(kalman.xyxy_to_xywh(detections.xyxy[new]))
        n = len(new)
        ids = np.zeros(n, np.int64)
        confirmed = self._frame == 1 or self.min_hits <= 1
        if confirmed:
            ids[:] = np.arange(self._next_id, self._next_id + n)
            self._next_id += n
        self._mean = np.concatenate([self._mean, mean])
        self._var = np.concatenate([self._var, var])
        self._state = np.concatenate([self._state, np.full(n, TRACKED if confirmed else TENTATIVE, np.int8)])
        self._ids = np.concatenate([self._ids, ids])
        self._hits = np.concatenate([self._hits, np.ones(n, np.int64)])
        self._last = np.concatenate([self._last, np.full(n, self._frame, np.int64)])
        self._cls = np.concatenate([self._cls, detections.class_ids[new]])
        return ids
