"""File sources under bad input: an image whose header declares 16384 x 16384 is skipped before decoding (counted,
warned), and a video truncated mid-file is reported once instead of ending silently."""
import logging

import cv2
import numpy as np
import pytest

import edge.images as images_module
from edge.stream.sources.folder import FolderSource, image_size
from edge.stream.sources.video import VideoFileSource

from ..stream_helpers import write_video


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_image_size_reads_the_header(tmp_path, ext):
    path = tmp_path / f"a{ext}"
    assert cv2.imwrite(str(path), np.zeros((37, 53, 3), np.uint8))
    assert image_size(str(path)) == (53, 37)


def huge_png(path, side=16384) -> str:
    """A small PNG whose IHDR claims side x side (what a decompression bomb looks like before decoding)."""
    ok, data = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(data.tobytes())
    data[16:24] = side.to_bytes(4, "big") * 2
    path.write_bytes(bytes(data))
    return str(path)


def test_an_oversized_image_is_skipped_before_decoding(tmp_path, monkeypatch, caplog):
    huge_png(tmp_path / "a.png")
    assert cv2.imwrite(str(tmp_path / "b.png"), np.zeros((48, 64, 3), np.uint8))
    decoded, imread = [], cv2.imread
    monkeypatch.setattr(images_module.cv2, "imread", lambda path, flags: decoded.append(path) or imread(path, flags))
    source = FolderSource(str(tmp_path))
    source.open()
    with caplog.at_level(logging.WARNING):
        frame = source.read()
    assert frame.image.shape == (48, 64, 3) and frame.seq == 1
    assert decoded == [str(tmp_path / "b.png")] and source.skipped == 1
    assert "16384 x 16384 image is over the limit" in caplog.text


def test_a_truncated_video_is_reported_once(tmp_path, caplog):
    data = open(write_video(tmp_path / "clip.avi", 300), "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    source = VideoFileSource(str(cut), realtime=False)
    source.open()
    with caplog.at_level(logging.WARNING):
        frames = 0
        while source.read() is not None:
            frames += 1
        assert source.read() is None
    assert 0 < frames < 300 and source.truncated == 1
    warnings = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert warnings == [f"{cut}: ended after {frames} of the 300 frames it declares (truncated or corrupt file)"]


def test_a_whole_video_ends_quietly(tmp_path, caplog):
    source = VideoFileSource(write_video(tmp_path / "clip.avi", 20), realtime=False)
    source.open()
    with caplog.at_level(logging.WARNING):
        while source.read() is not None:
            pass
    assert source.truncated == 0 and "truncated" not in caplog.text


def test_skipped_inputs_reach_the_status_and_metrics(tmp_path):
    from edge.service.metrics import StatusCollector
    from edge.stream.pipeline import Pipeline

    from ..stream_helpers import tiny_detector

    assert cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64, 3), np.uint8))
    huge_png(tmp_path / "b.png")
    (tmp_path / "c.jpg").write_bytes(b"not an image")
    pipeline = Pipeline(tiny_detector(tmp_path), [FolderSource(str(tmp_path), source_id="pics")], all_frames=True)
    assert len(list(pipeline)) == 1
    status = pipeline.status()
    assert status["sources"]["pics"]["skipped"] == 2
    samples = {s.name: s.value for family in StatusCollector(pipeline.status).collect() for s in family.samples}
    assert samples["edge_source_inputs_skipped_total"] == 2
