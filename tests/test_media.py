"""Event snapshots and clips: files and paths, pre-roll, atomic writes under a full disk, retention, queue limits,
start-up errors and read-only HTTP serving without path traversal."""
import errno
import json
import os
import subprocess
import sys
import threading

import cv2
import jsonschema
import numpy as np
import pytest

from edge.cli.demo import write_sample
from edge.demo import BUNDLE
from edge.errors import ConfigError
from edge.settings import MediaConfig
from edge.stream import media as media_module
from edge.stream.events import SCHEMA_VERSION, load_schema
from edge.stream.media import Media, Retention, media_file
from edge.stream.sources import Frame
from edge.track import parse_zone

from .test_sinks_http import get, served  # noqa: F401
from .test_sinks_support import detections, wait_until

FPS = 10.0


def frame(seq: int, width: int = 320, height: int = 240) -> Frame:
    image = np.full((height, width, 3), (seq * 7) % 256, np.uint8)
    cv2.putText(image, str(seq), (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return Frame(image, seq, 1000.0 + seq / FPS, "cam")


def zone_event(seq: int) -> dict:
    return {"schema_version": SCHEMA_VERSION, "type": "zone_enter", "source": "cam", "seq": seq, "zone": "door", "track_id": 1,
            "class_id": 0, "name": "person", "time": 1000.0 + seq / FPS}


def files(root) -> list:
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def run_frames(media: Media, n: int, event_at: tuple = (), zones=()) -> dict:
    """Feed n frames as the pipeline does; returns {seq: events} of the frames that had an event."""
    out = {}
    for seq in range(n):
        f = frame(seq)
        media.frame(f)
        if seq in event_at:
            out[seq] = [zone_event(seq)]
            media.on_events(f, detections(), out[seq], zones)
        assert wait_until(lambda: not media._items, 10)  # in step with the writer: no frame dropped here
    media.close()
    return out


def test_snapshots_clean_and_annotated_with_paths_in_the_event(tmp_path):
    media = Media(MediaConfig(dir=str(tmp_path)))
    events = run_frames(media, 5, event_at=(3,), zones=[parse_zone("door=0,0,100,0,100,100")])[3]
    e = events[0]
    assert "clip" not in e and e["snapshot"].startswith("cam/") and e["snapshot_annotated"].endswith("-annotated.jpg")
    jsonschema.validate(e, load_schema())
    clean = cv2.imread(str(tmp_path / e["snapshot"]))
    drawn = cv2.imread(str(tmp_path / e["snapshot_annotated"]))
    assert clean.shape == drawn.shape == (240, 320, 3)
    assert np.abs(clean.astype(int) - frame(3).image).mean() < 3  # the event's own frame
    assert np.abs(drawn.astype(int) - clean).mean() > 1  # boxes and the zone drawn on it
    assert files(tmp_path) == sorted([e["snapshot"], e["snapshot_annotated"]])
    assert media.stats() == {"written": 2, "failed": 0, "dropped": 0, "frames_dropped": 0}


def test_clip_has_pre_roll_and_runs_on_after_the_event_and_later_events_share_it(tmp_path):
    media = Media(MediaConfig(dir=str(tmp_path), snapshots=False, clip_seconds=0.45, pre_roll_seconds=0.25))
    events = run_frames(media, 20, event_at=(5, 7, 17))
    assert events[5][0]["clip"] == events[7][0]["clip"] != events[17][0]["clip"]  # 7 falls within the first clip
    assert "snapshot" not in events[5][0]
    capture = cv2.VideoCapture(str(tmp_path / events[5][0]["clip"]))
    shown = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        shown.append(int(round(float(image[200:, :].mean()) / 7)))  # the grey level encodes the frame's seq
    capture.release()
    assert shown == list(range(3, 10)), shown  # 0.25 s before frame 5 to 0.45 s after it
    second = cv2.VideoCapture(str(tmp_path / events[17][0]["clip"]))
    assert second.get(cv2.CAP_PROP_FRAME_COUNT) == 5  # frames 15..19: the source ended before 17 + 0.45 s
    assert not [f for f in files(tmp_path) if os.path.basename(f).startswith(".")]


def test_a_full_disk_is_counted_and_leaves_no_partial_file_while_frames_go_on(tmp_path, monkeypatch, caplog):
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))  # half of it lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media_module.os, "write", full)
    media = Media(MediaConfig(dir=str(tmp_path)))
    events = run_frames(media, 10, event_at=(2, 4, 6))
    assert all("snapshot" in e[0] for e in events.values())  # the paths were promised before the write
    assert files(tmp_path) == []  # neither the final names nor the temp files are left
    assert media.stats()["failed"] == 3 and media.stats()["written"] == 0
    assert len([r for r in caplog.records if "No space left" in r.getMessage()]) == 1  # rate-limited


def test_a_clip_that_cannot_be_committed_is_removed(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media_module.os, "fsync", no_space)
    media = Media(MediaConfig(dir=str(tmp_path), snapshots=False, clip_seconds=0.2, pre_roll_seconds=0.2))
    run_frames(media, 10, event_at=(3,))
    assert files(tmp_path) == [] and media.stats()["failed"] == 1


def test_queue_full_drops_and_counts_and_the_event_gets_no_path(tmp_path, monkeypatch):
    gate = threading.Event()
    started = threading.Event()

    def slow(*args):
        started.set()
        gate.wait(10)

    media = Media(MediaConfig(dir=str(tmp_path), queue=1))
    monkeypatch.setattr(media, "_on_event", slow)
    first, second, third = [zone_event(1)], [zone_event(2)], [zone_event(3)]
    media.on_events(frame(1), detections(), first)
    assert started.wait(5)  # the worker is busy with the first
    media.on_events(frame(2), detections(), second)  # queued
    media.on_events(frame(3), detections(), third)  # queue full
    gate.set()
    media.close()
    assert "snapshot" in first[0] and "snapshot" in second[0] and "snapshot" not in third[0]
    assert media.stats()["dropped"] == 1


def test_retention_removes_the_oldest_beyond_count_size_and_age(tmp_path):
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / ".x.jpg.part.jpg").write_bytes(b"half")  # a crash's leftover
    for i in range(5):
        path = tmp_path / "cam" / f"{i}.jpg"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    kept = Retention(str(tmp_path), max_files=3, max_bytes=1e9, max_age_s=None)
    kept.prune()
    assert files(tmp_path) == ["cam/2.jpg", "cam/3.jpg", "cam/4.jpg"]
    kept.max_bytes = 250
    kept.prune()
    assert files(tmp_path) == ["cam/3.jpg", "cam/4.jpg"]
    kept.max_age_s = 1800.5
    kept.prune(now=1004 + 1800)
    assert files(tmp_path) == ["cam/4.jpg"]
    kept.prune(now=1004 + 7200)
    assert files(tmp_path) == [] and kept.bytes == 0


def test_media_retention_applies_as_events_are_saved(tmp_path):
    media = Media(MediaConfig(dir=str(tmp_path), max_files=4))
    run_frames(media, 12, event_at=(1, 3, 5, 7, 9))
    assert len(files(tmp_path)) == 4 and all("-9" in f or "-7" in f for f in files(tmp_path))


def test_media_file_stays_inside_the_directory(tmp_path):
    root = tmp_path / "media"
    (root / "cam").mkdir(parents=True)
    (root / "cam" / "a.jpg").write_bytes(b"jpeg")
    (root / "cam" / ".a.jpg.part.jpg").write_bytes(b"half")
    (tmp_path / "secret").write_text("no")
    os.symlink(tmp_path / "secret", root / "cam" / "link.jpg")
    assert media_file(str(root), "cam/a.jpg") == os.path.realpath(root / "cam" / "a.jpg")
    for bad in ("../secret", "cam/../../secret", "/etc/passwd", "cam/.a.jpg.part.jpg", "cam", "cam/link.jpg",
                "cam//a.jpg", "cam/a.jpg\0", ""):
        assert media_file(str(root), bad) is None, bad


def test_http_serves_media_read_only_with_the_token(tmp_path, served):  # noqa: F811
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path.parent / "outside.txt").write_text("secret")
    _, _, base = served(token="t0k", media_dir=str(tmp_path))
    code, headers, body = get(base + "/media/cam/a.jpg", "t0k")
    assert (code, headers["Content-Type"], body) == (200, "image/jpeg", b"\xff\xd8jpeg")
    assert get(base + "/media/cam/a.jpg")[0] == 401
    for bad in ("/media/..%2Foutside.txt", "/media/cam/..%2F..%2Foutside.txt", "/media/%2E%2E/outside.txt",
                "/media/cam/missing.jpg"):
        assert get(base + bad, "t0k")[0] == 404, bad


def test_an_unwritable_media_dir_is_one_error_at_start(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"^media.dir: .*not a writable directory"):
        Media(MediaConfig(dir=str(tmp_path / "file" / "media")))
    video = write_sample(str(tmp_path / "sample.avi"), 3)
    run = [sys.executable, "-m", "edge", "run", "--model", BUNDLE, "--source", video, "--zone", "z=0,0,1,0,1,1"]
    flag = subprocess.run(run + ["--media-dir", str(tmp_path / "file" / "m")], capture_output=True, text=True,
                          timeout=120)
    assert flag.returncode == 2 and "--media-dir:" in flag.stderr and "not a writable directory" in flag.stderr
    config = tmp_path / "edge.yaml"
    config.write_text(json.dumps({"model": {"path": BUNDLE}, "sources": [{"uri": video}],
                                  "media": {"dir": str(tmp_path / "file" / "m")}}))
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(config)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 78 and "media.dir:" in result.stderr


def test_edge_run_saves_event_files_named_in_its_events(tmp_path):
    video, out, root = write_sample(str(tmp_path / "sample.avi"), 20), tmp_path / "events.jsonl", tmp_path / "media"
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--model", BUNDLE, "--source", f"cam={video}",
                             "--all-frames", "--conf", "0.4", "--jsonl", str(out), "--line", "mid=0,240,640,240",
                             "--media-dir", str(root), "--clip-seconds", "0.2", "--pre-roll-seconds", "0.1"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    crossings = [e for e in events if e["type"] == "line_cross"]
    assert crossings
    for e in crossings:
        jsonschema.validate(e, load_schema())
        for key in ("snapshot", "snapshot_annotated", "clip"):
            assert wait_until(lambda: (root / e[key]).is_file(), 5), e[key]
    assert not [f for f in files(root) if os.path.basename(f).startswith(".")]
