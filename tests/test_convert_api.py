"""converters.convert from Python: typed options, the same checks as edge-convert, a result instead of prints."""
import json
from dataclasses import fields
from pathlib import Path

import pytest

from converters import ConvertError, ConvertOptions, convert
from converters.api import parse_imgsz
from converters.cli import build_parser
from edge import Detector
from edge.demo import BUNDLE

from .test_calibration import write_images

DEMO_BUNDLE = Path(BUNDLE)  # DAMO-YOLO-Ns on synthetic shapes, 256 input


def test_int8_from_python_returns_the_bundle_and_shows_progress_on_stderr(tmp_path, capsys):
    pytest.importorskip("onnx")
    calib = write_images(tmp_path / "calib", 8, size=(256, 256))
    result = convert(DEMO_BUNDLE, "onnx-int8", tmp_path / "q", ConvertOptions(calib=str(calib), calib_count=8,
                                                                                 max_drop=100))
    assert (result.path, result.report, result.within_max_drop) == (str(tmp_path / "q"), None, True)
    assert result.bundle.target == "onnx-int8" and result.bundle.path == str(tmp_path / "q")
    manifest = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and manifest["source"]["calibration"]["images"] == 8
    assert manifest["source"]["calibration"]["from"] == str(calib)
    assert result.bundle.contract.precision == "int8" and Detector.load(result.path).contract.precision == "int8"
    out, err = capsys.readouterr()
    assert out == ""  # a library call prints nothing on stdout
    assert "calibration images: 8/8 100%" in err and "calibration ranges: 8/8 100%" in err  # not a terminal: lines


def test_quiet_shows_no_progress(tmp_path, capsys):
    pytest.importorskip("onnx")
    calib = write_images(tmp_path / "calib", 4, size=(256, 256))
    convert(DEMO_BUNDLE, "onnx-int8", tmp_path / "q", ConvertOptions(calib=str(calib), max_drop=100, quiet=True))
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("target, options, message", [
    ("onnx", ConvertOptions(val="val/"), "--val needs --annotations"),
    ("onnx", ConvertOptions(max_drop=-0.5), "--max-drop must be >= 0, got -0.5"),
    ("onnx", ConvertOptions(calib_count=0), "--calib-count must be >= 1, got 0"),
    ("onnx", ConvertOptions(calib_method="mean"), "--calib-method 'mean': expected one of minmax, entropy"),
    ("onnx", ConvertOptions(family="yolo8"), "--family 'yolo8': expected one of yolo11, damo-yolo"),
    ("onnx-int4", ConvertOptions(), "--target 'onnx-int4': expected one of onnx, onnx-int8"),
    ("onnx", ConvertOptions(imgsz=320), "--imgsz cannot resize an existing bundle"),
])
def test_bad_options_name_the_flag_and_write_nothing(tmp_path, target, options, message):
    with pytest.raises(ConvertError, match=message.replace("(", r"\(")):
        convert(DEMO_BUNDLE, target, tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


def test_imgsz_accepts_text_an_int_or_a_pair():
    assert parse_imgsz("640") == parse_imgsz(640) == (640, 640)
    assert parse_imgsz("480,640") == parse_imgsz((480, 640)) == parse_imgsz("480x640") == (480, 640)
    assert parse_imgsz(None) is None
    for bad in ("a", (0, 640), (1, 2, 3), "99999"):
        with pytest.raises(ConvertError, match="--imgsz"):
            parse_imgsz(bad)


def test_every_option_is_a_flag_with_the_same_default():
    parser = build_parser()
    defaults = vars(parser.parse_args(["model.pt"]))
    assert {f.name: defaults[f.name] for f in fields(ConvertOptions)} == vars(ConvertOptions())
    given = parser.parse_args(["m.pt", "--calib", "c/", "--calib-count", "7", "--calib-method", "entropy",
                               "--max-drop", "0.3", "--imgsz", "320", "--quiet", "--family", "yolo11"])
    options = ConvertOptions(**{f.name: getattr(given, f.name) for f in fields(ConvertOptions)})
    assert (options.calib, options.calib_count, options.calib_method, options.max_drop, options.imgsz, options.quiet,
            options.family) == ("c/", 7, "entropy", 0.3, "320", True, "yolo11")


def test_the_bundle_folder_follows_the_umask_and_keeps_the_model_version(tmp_path):
    """Issue #11 item 13: edge-convert made the bundle 0700 (tempfile.mkdtemp) and dropped the ONNX's version."""
    import os

    from .onnx_models import constant_model, ultralytics_metadata, yolo11_output

    pytest.importorskip("onnx")
    out = yolo11_output([[320, 320, 100, 60]], [[0.0, 0.9]])
    model = constant_model(tmp_path / "m.onnx", (1, 3, 640, 640), {"output0": out},
                           {**ultralytics_metadata(["a", "b"]), "version": "8.4.190", "date": "2026-11-25"})
    for umask, mode in ((0o022, 0o755), (0o027, 0o750)):
        previous = os.umask(umask)
        try:
            result = convert(model, "onnx", tmp_path / f"b{mode:o}")
        finally:
            os.umask(previous)
        assert os.stat(result.path).st_mode & 0o777 == mode
        assert os.stat(Path(result.path) / "manifest.json").st_mode & 0o777 == mode & 0o666
    assert result.bundle.manifest.metadata.version == "8.4.190"
    assert Detector.load(result.path).info()["metadata"] == {"version": "8.4.190", "date": "2026-11-25",
                                                             "author": "Ultralytics"}
