"""Frame sources: URIs, synthetic scenes, video files, image folders, and picamera2 against a fake module."""
import sys
import time
import types

import cv2
import numpy as np
import pytest

from edge.stream.sources import SourceError, open_source, split_name
from edge.stream.sources.folder import FolderSource
from edge.stream.sources.picamera2 import Picamera2Source
from edge.stream.sources.synthetic import SyntheticSource
from edge.stream.sources.video import VideoFileSource

from .stream_helpers import write_video


def read_all(source):
    with source:
        return list(iter(source.read, None))


def test_synthetic_is_deterministic_and_sized():
    a = read_all(open_source("synthetic:64x48@0", frames=5))
    b = read_all(open_source("synthetic:64x48@0", frames=5))
    assert [f.seq for f in a] == list(range(5))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, a[4].image)  # the shapes move
    assert a[0].source_id == "synthetic" and a[0].timestamp <= a[-1].timestamp


def test_synthetic_uri_forms():
    source = open_source("synthetic")
    assert isinstance(source, SyntheticSource) and (source.width, source.height, source.fps) == (640, 480, 30.0)
    source = open_source("synthetic:320x240@15")
    assert (source.width, source.height, source.fps) == (320, 240, 15.0) and source.live
    with pytest.raises(SourceError, match="synthetic"):
        open_source("synthetic:big")


def test_video_file_every_frame_in_order(tmp_path):
    path = write_video(tmp_path / "clip.avi", 12)
    source = open_source(path, realtime=False)
    assert isinstance(source, VideoFileSource) and not source.live and source.id == "clip"
    frames = read_all(source)
    assert [f.seq for f in frames] == list(range(12))
    assert frames[0].image.shape == (64, 96, 3)


def test_video_file_realtime_is_paced_and_still_a_finite_source(tmp_path):
    path = write_video(tmp_path / "clip.avi", 4, fps=50)
    source = open_source(path, realtime=True)
    assert not source.live  # every frame, opened at start, never reconnected: only the pacing is camera-like
    frames = read_all(source)
    assert len(frames) == 4 and frames[-1].timestamp - frames[0].timestamp >= 3 / 50 - 0.005
    assert [(f.seq, f.file) for f in frames] == [(i, path) for i in range(4)]


def test_image_folder_skips_unreadable(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 30, 3), i * 50, np.uint8))
    (tmp_path / "9.jpg").write_bytes(b"not an image")
    source = open_source(str(tmp_path))
    assert isinstance(source, FolderSource) and not source.live
    frames = read_all(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100]
    assert read_all(open_source(str(tmp_path / "1.png")))[0].image.shape == (20, 30, 3)


@pytest.mark.parametrize("uri, message", [
    ("nonsense://x", "unknown source"),
    ("no/such/file.mp4", "no such file or folder"),
    ("v4l2:cam", "v4l2:N"),
    ("picamera2:x", "picamera2:N"),
])
def test_bad_uris_fail_with_one_line(uri, message):
    with pytest.raises(SourceError, match=message) as error:
        open_source(uri)
    assert "\n" not in str(error.value)


def test_a_missing_camera_device_is_a_source_whose_open_says_why():
    # Parsing accepts it (the pipeline retries it while the USB camera enumerates); opening names the cause.
    source = open_source("/dev/video99")
    assert source.live
    with pytest.raises(SourceError, match="no such camera device.*unplugged"):
        source.open()


def test_broken_video_file_fails_at_open(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="broken.mp4"):
        open_source(str(path)).open()


def test_gstreamer_without_support_says_what_to_do():
    from edge.stream.sources.gstreamer import opencv_has_gstreamer
    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError, match="without GStreamer.*JetPack"):
        open_source("gst:videotestsrc ! appsink").open()


def test_v4l2_rejects_a_malformed_pixel_format(tmp_path):
    from edge.stream.sources.v4l2 import V4L2Source
    with pytest.raises(SourceError, match="four-character"):
        V4L2Source("v4l2:0", 0, fourcc="MJPEG")


def test_split_name():
    assert split_name("front=rtsp://cam/s?a=b") == ("front", "rtsp://cam/s?a=b")
    assert split_name("rtsp://cam/s?a=b") == (None, "rtsp://cam/s?a=b")
    assert split_name("gst:videotestsrc ! appsink drop=true") == (None, "gst:videotestsrc ! appsink drop=true")


class FakePicamera2:
    """Mimics the picamera2 calls the adapter makes (Picamera2, configs, requests, metadata)."""

    instances = []

    def __init__(self, camera_num=0):
        self.camera_num, self.calls = camera_num, []
        self.bgr = _scene()
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, lores=None, buffer_count=6, controls=None, **_):
        return {"main": dict(main), "lores": dict(lores) if lores else None, "buffer_count": buffer_count,
                "controls": dict(controls or {})}

    def configure(self, config):
        self.config = config
        main, lores = dict(config["main"]), config["lores"] and dict(config["lores"])
        main["stride"] = main["size"][0] * 3
        if lores:
            lores["stride"] = lores["size"][0] + 16  # padded rows, as the ISP produces
        self.applied = {"main": main, "lores": lores}

    def camera_configuration(self):
        return self.applied

    def start(self):
        self.calls.append("start")

    def capture_request(self):
        return FakeRequest(self)

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


class FakeRequest:
    def __init__(self, cam):
        self.cam, self.released = cam, False
        cam.calls.append("capture_request")

    def make_array(self, name):
        cfg = self.cam.applied[name]
        w, h = cfg["size"]
        bgr = cv2.resize(self.cam.bgr, (w, h))
        if cfg["format"] == "RGB888":  # picamera2 'RGB888' is B,G,R in memory
            return bgr
        return _i420_with_stride(bgr, cfg["stride"])

    def get_metadata(self):
        return {"SensorTimestamp": time.monotonic_ns() - 20_000_000}

    def release(self):
        self.cam.calls.append("release")


def _scene():
    from edge.stream.sources.synthetic import render
    return render(3, 64, 36)


def _i420_with_stride(bgr, stride):
    """An I420 buffer laid out as libcamera gives it: Y rows and half-width U/V rows padded to the stride."""
    h, w = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    y, u, v = yuv[:h], yuv[h:h + h // 4].reshape(h // 2, w // 2), yuv[h + h // 4:].reshape(h // 2, w // 2)

    def pad(plane: np.ndarray, width: int) -> np.ndarray:
        return np.pad(plane, ((0, 0), (0, width - plane.shape[1])))
    flat = np.concatenate([pad(y, stride).ravel(), pad(u, stride // 2).ravel(), pad(v, stride // 2).ravel()])
    return flat.reshape(h * 3 // 2, stride)


@pytest.fixture
def fake_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_picamera2_lores_stream_model_sized_bgr_with_sensor_time(fake_picamera2):
    source = open_source("picamera2", width=128, height=72, fps=30, model_size=(64, 64))
    assert isinstance(source, Picamera2Source) and source.lores_size == (64, 36)
    with source:
        frame = source.read()
    cam = fake_picamera2.instances[0]
    assert cam.config["main"] == {"size": (128, 72), "format": "RGB888"}
    assert cam.config["lores"] == {"size": (64, 36), "format": "YUV420"}
    assert cam.config["buffer_count"] == 3 and cam.config["controls"] == {"FrameDurationLimits": (33333, 33333)}
    assert frame.image.shape == (36, 64, 3)
    expected = cv2.resize(cam.bgr, (64, 36))
    assert np.abs(frame.image.astype(int) - expected).mean() < 12  # YUV 4:2:0 round trip
    assert abs(frame.timestamp - (time.time() - 0.02)) < 0.5
    assert cam.calls == ["start", "capture_request", "release", "stop", "close"]


def test_picamera2_main_stream_keeps_bgr_bytes(fake_picamera2):
    with open_source("picamera2:1", width=64, height=36) as source:
        frame = source.read()
    cam = fake_picamera2.instances[0]
    assert cam.camera_num == 1 and cam.config["lores"] is None and source.id == "picamera2-1"
    assert np.array_equal(frame.image, cv2.resize(cam.bgr, (64, 36)))


def test_picamera2_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(SourceError, match="python3-picamera2.*system-site-packages"):
        open_source("picamera2").open()


@pytest.mark.hardware
def test_picamera2_real_camera_delivers_frames():
    with open_source("picamera2", model_size=(640, 640)) as source:
        frames = [source.read() for _ in range(3)]
    assert frames[0].image.ndim == 3 and frames[2].seq == 2 and frames[2].timestamp > frames[0].timestamp
