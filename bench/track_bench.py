"""Tracker benchmark: update() latency, MOT quality vs SORT/ByteTrack (`trackers`), line and zone accuracy.

    pip install -e '.[bench]'      # motmetrics, trackers (a separate venv: trackers pulls opencv-python, scipy)
    python bench/track_bench.py --seeds 5 --json runs/track_bench.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mot_synth import line_truth, make_sequence, zone_truth  # noqa: E402

from edge import Detections  # noqa: E402
from edge.track import Analytics, Line, Tracker, Zone  # noqa: E402
from edge.track.tracker import box_iou  # noqa: E402


def _edge_runner(seq):
    tracker = Tracker(frame_rate=seq.fps)
    return lambda xyxy, scores, cls: tracker.update(Detections(xyxy, scores, cls))


def _trackers_runner(name):
    """SORT / ByteTrack from the `trackers` package (roboflow), default settings, same detections."""
    import supervision as sv
    from trackers import ByteTrackTracker, SORTTracker

    def make(seq):
        tracker = (SORTTracker if name == "sort" else ByteTrackTracker)(frame_rate=seq.fps)

        def run(xyxy, scores, cls):
            out = tracker.update(sv.Detections(xyxy=xyxy.astype(np.float32), confidence=scores, class_id=cls))
            keep = out.tracker_id >= 0
            return Detections(out.xyxy[keep], out.confidence[keep], out.class_id[keep], [], out.tracker_id[keep])
        return run
    return make


def _latency(make, n_objects, frames=400):
    """update() p50/p99 in ms on a crowd of about n_objects visible objects."""
    scale = 1.0 if n_objects <= 40 else 0.5
    seq = make_sequence(123, n_objects=int(n_objects * 1.15), frames=frames, width=1920, height=1080,
                        size_scale=scale)
    run = make(seq)
    times = []
    for xyxy, scores, cls in seq.dets:
        start = time.perf_counter()
        run(xyxy, scores, cls)
        times.append(time.perf_counter() - start)
    times = np.array(times[50:]) * 1e3
    visible = np.mean([len(g[0]) for g in seq.gt[50:]])
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "objects": float(visible)}


def _mot(make, seeds):
    import motmetrics as mm

    accs = []
    for seed in seeds:
        seq = make_sequence(seed)
        run = make(seq)
        acc = mm.MOTAccumulator(auto_id=True)
        for (gt_ids, gt_xyxy, _), (xyxy, scores, cls) in zip(seq.gt, seq.dets):
            out = run(xyxy, scores, cls)
            dist = 1.0 - box_iou(gt_xyxy, out.xyxy)  # motmetrics' iou_matrix uses np.asfarray (gone in numpy 2)
            dist[dist > 0.5] = np.nan
            acc.update(gt_ids.tolist(), out.track_ids.tolist(), dist)
        accs.append(acc)
    mh = mm.metrics.create()
    summary = mh.compute_many(accs, metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"],
                              generate_overall=True)
    row = summary.loc["OVERALL"]
    return {"MOTA": 100 * float(row["mota"]), "IDF1": 100 * float(row["idf1"]), "IDsw": int(row["num_switches"]),
            "FP": int(row["num_false_positives"]), "FN": int(row["num_misses"])}


def _analytics(seeds, noisy):
    """Line counts vs truth and zone dwell errors (frames) through Tracker + Analytics."""
    line_err, dwell_err, visits_missing = [], [], 0
    totals = {"in": [0, 0], "out": [0, 0]}
    for seed in seeds:
        seq = make_sequence(seed, noisy=noisy)
        w = seq.width
        line = Line("mid", [(w / 2, seq.height), (w / 2, 0)])
        zone = Zone("band", [(w * 0.3, 0), (w * 0.7, 0), (w * 0.7, seq.height), (w * 0.3, seq.height)])
        analytics = Analytics([zone], [line])
        tracker = Tracker(frame_rate=seq.fps)
        track_to_gt: dict[int, dict[int, int]] = {}
        exits = []
        for t, ((gt_ids, gt_xyxy, _), (xyxy, scores, cls)) in enumerate(zip(seq.gt, seq.dets)):
            tracked = tracker.update(Detections(xyxy, scores, cls))
            if len(tracked) and len(gt_ids):
                iou = box_iou(tracked.xyxy, gt_xyxy)
                for k, tid in enumerate(tracked.track_ids.tolist()):
                    if iou[k].max() > 0.5:
                        votes = track_to_gt.setdefault(tid, {})
                        gid = int(gt_ids[iou[k].argmax()])
                        votes[gid] = votes.get(gid, 0) + 1
            for event in analytics.update(tracked, t / seq.fps, (seq.width, seq.height)):
                if event["type"] == "zone_exit":
                    exits.append(event)
        truth = line_truth(seq, w / 2)
        got = analytics.counts()["lines"]["mid"]
        for d in ("in", "out"):
            totals[d][0] += got[d]
            totals[d][1] += truth[d]
        line_err.append(abs(got["in"] - truth["in"]) + abs(got["out"] - truth["out"]))
        gt_visits = zone_truth(seq, w * 0.3, w * 0.7)
        for gid, start, frames in gt_visits:  # the tracked visit of this object that overlaps it most
            best = None
            for e in exits:
                votes = track_to_gt.get(e["track_id"], {})
                if votes and max(votes, key=votes.get) == gid:
                    enter = e["time"] - e["dwell_s"]
                    if abs(enter * seq.fps - start) < frames:
                        err = abs(e["dwell_s"] * seq.fps - frames)
                        best = err if best is None else min(best, err)
            if best is None:
                visits_missing += 1
            else:
                dwell_err.append(best)
    dwell_err = np.array(dwell_err)
    return {"line_in": totals["in"], "line_out": totals["out"], "line_abs_error_sum": int(sum(line_err)),
            "visits": int(len(dwell_err) + visits_missing), "visits_unmatched": visits_missing,
            "dwell_within_1_frame": float(np.mean(dwell_err <= 1)) if len(dwell_err) else 0.0,
            "dwell_median_err_frames": float(np.median(dwell_err)) if len(dwell_err) else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    makers = {"edge": _edge_runner}
    try:
        makers["sort (trackers)"] = _trackers_runner("sort")
        makers["bytetrack (trackers)"] = _trackers_runner("bytetrack")
        import trackers  # noqa: F401
    except ImportError as exc:
        print(f"trackers not installed ({exc}); comparing edge only")
        makers = {"edge": _edge_runner}
    result = {"latency": {}, "mot": {}}
    print(f"{'tracker':22} {'objs':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for name, make in makers.items():
        for n in (20, 200):
            lat = _latency(make, n)
            result["latency"][f"{name}@{n}"] = lat
            print(f"{name:22} {lat['objects']:5.0f} {lat['p50_ms']:8.3f} {lat['p99_ms']:8.3f}")
    print(f"\n{'tracker':22} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} {'FP':>6} {'FN':>6}  ({len(seeds)} seeds, 600 frames)")
    for name, make in makers.items():
        mot = _mot(make, seeds)
        result["mot"][name] = mot
        print(f"{name:22} {mot['MOTA']:6.1f} {mot['IDF1']:6.1f} {mot['IDsw']:5d} {mot['FP']:6d} {mot['FN']:6d}")
    print()
    for noisy in (False, True):
        res = _analytics(seeds, noisy)
        result[f"analytics_{'noisy' if noisy else 'clean'}"] = res
        print(f"analytics ({'noisy' if noisy else 'clean'} detections): line in {res['line_in'][0]}/{res['line_in'][1]}"
              f" out {res['line_out'][0]}/{res['line_out'][1]} (got/truth); dwell within 1 frame "
              f"{100 * res['dwell_within_1_frame']:.1f}% of {res['visits'] - res['visits_unmatched']} visits "
              f"(median err {res['dwell_median_err_frames']:.1f} frames, {res['visits_unmatched']} unmatched)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
