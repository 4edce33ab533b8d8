"""What the device web page costs (issue #14): `edge run` frame throughput with --http off, with it on and nobody
looking, and with one viewer doing what the page does (edge/service/static/app.js: one MJPEG stream per source
and GET /api/status one second after each answer).

    python bench/web_cost.py                      # YOLO11n ONNX, 3 rounds: about 4 min
    python bench/web_cost.py --model edge/demo --frames 1500 --rounds 2 --json /tmp/demo.json

Each round runs `edge run --all-frames` twice on the same 640x480 MJPG video (COCO frames), without and with
--http, in alternating order. In the --http run the viewer comes and goes every --window seconds, so "nobody
looking" and "one viewer" alternate inside one process and the shared machine's noise hits both alike: the viewer's
cost is the median over its windows of its fps against the mean of the two idle windows around it. Throughput comes
from the events' inferred_at stamps (a JSONL sink in both runs). The viewer runs in this process and its CPU time is
reported apart: a real one sits on another machine.

On a busy machine those windows differ by more than a few percent on their own, so the server's work is also timed
alone, in this process: the CPU of keeping one frame for the viewers (all it does per frame while nobody looks), of
one preview JPEG (boxes drawn, encoded) and of one /api/status answer, and what a viewer adds up to per second at
the preview's rate cap, as a share of all the machine's cores.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from stream_bench import decoded_frames, make_video  # noqa: E402

SHARED = Path(os.environ.get("EDGE_SHARED") or ROOT.parent / "shared")
POLL_S = 1.0  # app.js POLL_MS
BOUNDARY = b"--frame"


class Viewer:
    """The page's traffic: /stream.mjpg read to the end (parts counted) and /api/status polled, each on a thread."""

    def __init__(self, port: int):
        self.port = port
        self.stop = threading.Event()
        self.first_part_at: Optional[float] = None
        self.parts = self.bytes = self.polls = 0
        self._threads = [threading.Thread(target=self._stream, daemon=True),
                         threading.Thread(target=self._poll, daemon=True)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def _connect(self) -> Optional[socket.socket]:
        """A connection to the server once it listens (None when stopped first)."""
        while not self.stop.is_set():
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=1)
            except OSError:
                time.sleep(0.05)
        return None

    def _stream(self) -> None:
        sock = self._connect()
        if sock is None:
            return
        with sock:
            sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: localhost\r\n\r\n")
            tail = b""
            while not self.stop.is_set():
                try:
                    chunk = sock.recv(1 << 16)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                data = tail + chunk
                found = data.count(BOUNDARY)
                if found and self.first_part_at is None:
                    self.first_part_at = time.time()
                self.parts += found
                self.bytes += len(chunk)
                tail = data[-(len(BOUNDARY) - 1):]  # a boundary split across two reads is counted once

    def _poll(self) -> None:
        if self._connect() is None:
            return
        while not self.stop.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/status")
                conn.getresponse().read()
                conn.close()
                self.polls += 1
            except OSError:
                pass
            self.stop.wait(POLL_S)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(http: bool, args: argparse.Namespace, video: str) -> dict:
    """One `edge run` process: fps per window (viewer windows alternating with idle ones when http), its CPU."""
    port = free_port()
    windows: list = []  # (start, end, viewer on, CPU s at start, at end); times in time.time(), the events' clock
    counts = {"parts": 0, "kib": 0.0, "polls": 0}
    with tempfile.TemporaryDirectory() as work:
        events_path = Path(work) / "events.jsonl"
        cmd = [sys.executable, "-m", "edge", "run", "--model", args.model, "--source", video, "--all-frames",
               "--jsonl", str(events_path), *args.edge_args] + (["--http", f"127.0.0.1:{port}"] if http else [])
        before, client0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(args.settle)  # model load and warm-up frames
        viewer_on = False
        while proc.poll() is None:
            viewer = Viewer(port) if viewer_on else None
            t0, cpu0 = time.time(), cpu_seconds(proc.pid)
            if viewer is not None:
                viewer.start()
            try:
                proc.wait(timeout=args.window)
                cpu1 = None  # it ended inside the window
            except subprocess.TimeoutExpired:
                cpu1 = cpu_seconds(proc.pid)
            if viewer is not None:
                viewer.close()
                counts["parts"] += viewer.parts
                counts["kib"] += viewer.bytes / 1024
                counts["polls"] += viewer.polls
            windows.append((t0, time.time(), viewer_on, cpu0, cpu1))
            viewer_on = http and not viewer_on
        err = proc.stderr.read() if proc.stderr else ""
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode:
            raise SystemExit(f"web_cost: edge run failed ({proc.returncode}): {err.strip()[-400:]}")
        stamps = [json.loads(line)["inferred_at"] for line in events_path.read_text().splitlines() if line.strip()]
    rates = []  # (fps, viewer on, CPU ms per frame) of the windows that ran to their end
    for t0, t1, on, cpu0, cpu1 in windows:
        inside = [t for t in stamps if t0 <= t < t1]
        if cpu1 is not None and len(inside) >= args.min_frames:
            rates.append(((len(inside) - 1) / (inside[-1] - inside[0]), on, 1e3 * (cpu1 - cpu0) / len(inside)))
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result: dict = {"frames": len(stamps), "cpu_ms_per_frame": 1e3 * cpu_s / max(len(stamps), 1),
                    "idle_fps": [r[0] for r in rates if not r[1]], "viewer_fps": [r[0] for r in rates if r[1]],
                    "idle_cpu_ms_per_frame": [r[2] for r in rates if not r[1]],
                    "viewer_cpu_ms_per_frame": [r[2] for r in rates if r[1]]}
    if http:  # each viewer window against the mean of the idle windows before and after it
        around = [i for i in range(1, len(rates) - 1) if rates[i][1] and not rates[i - 1][1] and not rates[i + 1][1]]
        fps = [rates[i][0] / ((rates[i - 1][0] + rates[i + 1][0]) / 2) for i in around]
        cpu = [rates[i][2] / ((rates[i - 1][2] + rates[i + 1][2]) / 2) for i in around]
        result.update(viewer_over_idle=fps, viewer_cpu_over_idle=cpu, viewer_frames=counts["parts"],
                      status_polls=counts["polls"],
                      viewer_kib_per_frame=counts["kib"] / max(counts["parts"], 1),
                      viewer_cpu_s=(usage.ru_utime - client0.ru_utime) + (usage.ru_stime - client0.ru_stime))
    return result


def summarize(runs: list) -> dict:
    """Medians over rounds: fps without --http, idle and with a viewer; the paired viewer/idle ratio over all windows."""
    med = statistics.median
    off = [med(r["off"]["idle_fps"]) for r in runs]
    idle = [med(r["http"]["idle_fps"]) for r in runs]
    viewer = [med(r["http"]["viewer_fps"]) for r in runs if r["http"]["viewer_fps"]]
    pairs = [p for r in runs for p in r["http"]["viewer_over_idle"]]
    cpu = [p for r in runs for p in r["http"]["viewer_cpu_over_idle"]]
    return {"fps_median": {"off": med(off), "idle": med(idle), "viewer": med(viewer) if viewer else None},
            "idle_over_off_per_round": [i / o for i, o in zip(idle, off)],
            "idle_over_off_median": med(i / o for i, o in zip(idle, off)),
            "viewer_over_idle_windows": pairs,
            "viewer_over_idle_median": med(pairs) if pairs else None,
            "viewer_cost_percent": 100 * (1 - med(pairs)) if pairs else None,
            "viewer_cpu_over_idle_windows": cpu,
            "viewer_cpu_per_frame_percent": 100 * (med(cpu) - 1) if cpu else None,
            "cpu_ms_per_frame_median": {"off": med(r["off"]["cpu_ms_per_frame"] for r in runs),
                                        "http": med(r["http"]["cpu_ms_per_frame"] for r in runs)}}


def viewer_work(args: argparse.Namespace, video: str) -> dict:
    """CPU ms of keeping one frame (publish), one preview JPEG and one /api/status answer, timed alone (medians)."""
    sys.path.insert(0, str(ROOT))
    from edge import Detector
    from edge.service.server import HttpServer
    from edge.stream.pipeline import Pipeline
    from edge.stream.sources.video import VideoFileSource

    detector = Detector.load(args.model, preset="deployment")
    pipeline = Pipeline(detector, [VideoFileSource(video, realtime=False)], all_frames=True, max_frames=10)
    pipeline.run()
    status = pipeline.status()  # a real snapshot for the status document
    sink = HttpServer("127.0.0.1:0")
    sink.start(lambda: status)
    keep, encode, answer = [], [], []
    try:
        for seq, frame in enumerate(decoded_frames(video)[:args.work_frames]):
            found = detector(frame)
            event = {"type": "detections", "source": "video", "seq": seq, "inferred_at": time.time(),
                     "model": status.get("model"), "detections": found.to_list()}
            t0 = time.thread_time()
            sink.publish(event, frame, found)  # all the server does per frame while nobody looks
            keep.append(1e3 * (time.thread_time() - t0))
            t0 = time.thread_time()
            sink.jpeg(seq, wait=False)
            t1 = time.thread_time()
            json.dumps(sink.status_document()).encode()
            encode.append(1e3 * (t1 - t0))
            answer.append(1e3 * (time.thread_time() - t1))
    finally:
        sink.close()
    return {"publish_cpu_ms": statistics.median(keep), "jpeg_cpu_ms": statistics.median(encode),
            "status_cpu_ms": statistics.median(answer),
            "preview_fps_cap": 1.0 / sink.preview_period, "frame": list(frame.shape)}


def main(argv: Optional[list] = None) -> int:
    """Alternate the runs for --rounds rounds; print the result and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models" / "yolo11n.onnx"))
    ap.add_argument("--images", default=str(SHARED / "coco" / "val2017"), help="frames of the video (COCO images)")
    ap.add_argument("--frames", type=int, default=300, help="video length")
    ap.add_argument("--window", type=float, default=2.0, help="seconds per viewer / idle window")
    ap.add_argument("--settle", type=float, default=4.0, help="seconds after the start before the first window")
    ap.add_argument("--min-frames", type=int, default=5, help="windows with fewer frames are left out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work-frames", type=int, default=40, help="frames for timing the viewer's work alone")
    ap.add_argument("--json", default=str(ROOT / "docs" / "web_cost.json"), help="where to write the result")
    ap.add_argument("edge_args", nargs="*", help="more `edge run` flags, after --")
    args = ap.parse_args(argv)
    runs: list = []
    with tempfile.TemporaryDirectory() as work:
        video = make_video(str(Path(work) / "video.avi"), args.images if Path(args.images).is_dir() else None,
                           args.frames)
        for r in range(args.rounds):
            runs.append({})
            for http in ((False, True) if r % 2 == 0 else (True, False)):
                result = runs[-1]["http" if http else "off"] = run_once(http, args, video)
                line = f"idle {statistics.median(result['idle_fps']):.2f} fps"
                if result["viewer_fps"]:
                    line += (f", viewer {statistics.median(result['viewer_fps']):.2f} fps; viewer/idle windows, fps "
                             + " ".join(f"{p:.3f}" for p in result["viewer_over_idle"]) + ", CPU per frame "
                             + " ".join(f"{p:.3f}" for p in result["viewer_cpu_over_idle"]))
                print(f"round {r + 1}/{args.rounds} --http {'on ' if http else 'off'}: {line}", file=sys.stderr,
                      flush=True)
        work = viewer_work(args, video)
    summary = summarize(runs)
    rate = min(work["preview_fps_cap"], summary["fps_median"]["idle"])
    work["cpu_ms_per_s"] = work["jpeg_cpu_ms"] * rate + work["status_cpu_ms"] / POLL_S
    work["percent_of_all_cores"] = 100 * work["cpu_ms_per_s"] / (1000 * (os.cpu_count() or 1))
    summary["viewer_work_alone"] = work
    out = {"model": args.model, "frames": args.frames, "window_s": args.window, "rounds": args.rounds,
           "edge_args": args.edge_args, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), **summary,
           "runs": runs}
    fps = summary["fps_median"]
    print(f"fps, median of rounds: --http off {fps['off']:.2f}; on, nobody looking {fps['idle']:.2f} "
          f"(x{summary['idle_over_off_median']:.3f} of off); one viewer {fps['viewer']:.2f}")
    print(f"one viewer / nobody, paired windows: median x{summary['viewer_over_idle_median']:.3f} over "
          f"{len(summary['viewer_over_idle_windows'])} windows, so the viewer costs "
          f"{summary['viewer_cost_percent']:.1f} % of the throughput; the process's CPU time per frame "
          f"x{1 + summary['viewer_cpu_per_frame_percent'] / 100:.3f} ({summary['viewer_cpu_per_frame_percent']:+.1f} %)")
    print(f"nobody looking, the server's work per frame (publish): {1e3 * work['publish_cpu_ms']:.0f} us CPU")
    print(f"the viewer's work alone: {work['jpeg_cpu_ms']:.2f} ms CPU per preview JPEG x {rate:.1f} a second + "
          f"{work['status_cpu_ms']:.2f} ms per /api/status answer x {1 / POLL_S:g} a second = "
          f"{work['cpu_ms_per_s']:.1f} ms per second, {work['percent_of_all_cores']:.2f} % of {os.cpu_count()} cores")
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
