"""Calibration data: same tensors as inference, even sampling, skipped files counted, clear errors."""
import logging

import cv2
import numpy as np
import pytest

from converters import ConvertError
from converters.calibration import evenly, load_calibration
from edge.contract import family_input
from edge.preprocess import Preprocessor

SPEC = family_input("yolo11", "images", 64, 64, "NCHW", "float32")


def write_images(folder, n, size=(48, 80)):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i:03d}.png"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


def test_tensors_are_exactly_what_the_runtime_feeds(tmp_path):
    folder = write_images(tmp_path / "calib", 3)
    calib = load_calibration(str(folder), SPEC, minimum=1)
    assert calib.tensors.shape == (3, 3, 64, 64) and calib.sources == ["img000.png", "img001.png", "img002.png"]
    expected = Preprocessor(SPEC)(cv2.imread(str(folder / "img001.png")))[0][0]
    np.testing.assert_array_equal(calib.tensors[1], expected)


def test_folder_is_sampled_evenly_and_undecodable_files_are_skipped(tmp_path, caplog):
    folder = write_images(tmp_path / "calib", 10)
    (folder / "img004.png").write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING, logger="edge-convert"):
        calib = load_calibration(str(folder), SPEC, count=5, minimum=1)
    assert evenly(10, 5) == [0, 2, 4, 7, 9]
    assert calib.skipped == ["img004.png"] and calib.sources == ["img000.png", "img002.png", "img007.png", "img009.png"]
    assert "skipped 1 file" in caplog.text


def test_video_frames_are_sampled_evenly(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 48))
    for i in range(20):
        writer.write(np.full((48, 80, 3), i * 10, np.uint8))
    writer.release()
    calib = load_calibration(str(path), SPEC, count=4, minimum=1)
    assert calib.sources == ["clip.avi#0", "clip.avi#6", "clip.avi#13", "clip.avi#19"]
    brightness = calib.tensors[:, :, 32, 32].mean(axis=1)
    assert np.all(np.diff(brightness) > 0)  # later frames are brighter: the seek really moved


def test_below_minimum_warns_with_the_number_used(tmp_path, caplog):
    folder = write_images(tmp_path / "calib", 3)
    with caplog.at_level(logging.WARNING, logger="edge-convert"):
        assert len(load_calibration(str(folder), SPEC, minimum=32)) == 3
    assert "only 3 image(s)" in caplog.text


@pytest.mark.parametrize("make", [lambda p: str(p / "missing"), lambda p: str(write_images(p / "empty", 0))])
def test_missing_or_empty_source_is_a_clear_error(tmp_path, make):
    with pytest.raises(ConvertError, match="--calib"):
        load_calibration(make(tmp_path), SPEC)


def test_only_broken_images_is_an_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ConvertError, match="no usable"):
        load_calibration(str(folder), SPEC)
