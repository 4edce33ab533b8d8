"""edge-convert: both families' checkpoints -> verified bundles that reproduce the reference detections."""
import json

import cv2
import pytest

from converters.cli import main
from edge import Detector

from .conftest import SHARED, shared_file
from .test_damo_yolo import assert_matches_official, reference

DAMO = {"T": 640, "Ns": 416}


def convert(capsys, *argv) -> tuple:
    """(exit status, stdout, stderr) of edge-convert."""
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert all(f in err for f in fragments), err


@pytest.mark.needs_shared
@pytest.mark.parametrize("cfg", DAMO)
def test_damo_export_reproduces_official_detections(cfg, tmp_path, capsys):
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    ref = reference(cfg)
    checkpoint, flags = shared_file("damo", f"ref_{cfg}.pth"), ["--family", "damo-yolo", "--config", cfg]
    if cfg == "Ns":  # an official file name alone tells family and config
        (tmp_path / "damoyolo_tinynasL18_Ns.pth").symlink_to(checkpoint)
        checkpoint, flags = tmp_path / "damoyolo_tinynasL18_Ns.pth", []
    status, out, err = convert(capsys, checkpoint, *flags, "--target", "onnx", "--out", tmp_path / "bundle")
    assert status == 0, err
    assert out.strip().splitlines()[-1] == str(tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    size = DAMO[cfg]
    assert manifest["source"]["config"] == cfg and manifest["target"] == "onnx"
    graph = onnx.load(str(tmp_path / "bundle" / manifest["model"]["file"]))
    assert graph.opset_import[0].version >= 13
    assert [i.name for i in graph.graph.input] == ["images"] and graph.graph.output[0].name == "output"
    assert [o["shape"] for o in manifest["outputs"]] == [[1, (size // 8) ** 2 * 21 // 16, 80],
                                                         [1, (size // 8) ** 2 * 21 // 16, 4]]
    detector = Detector.load(tmp_path / "bundle", clip=False)
    dets = detector(cv2.imread(str(SHARED / "images" / "dog.jpg")))
    assert_matches_official(dets.xyxy, dets.scores, dets.class_ids, ref)


@pytest.mark.needs_shared
def test_yolo11_export_matches_ultralytics(tmp_path, capsys):
    pytest.importorskip("ultralytics")
    from .test_parity_ultralytics import compare, predictions

    status, out, err = convert(capsys, shared_file("models", "yolo11n.pt"), "--target", "onnx", "--out", tmp_path / "b")
    assert status == 0, err
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["family"] == "yolo11" and "AGPL-3.0" in manifest["source"]["licence"]
    reference = {"images/bus.jpg": predictions("yolo11n.onnx")["images/bus.jpg"]}
    missing, extra = compare(reference, Detector.load(tmp_path / "b"), 0.99, 0.01)
    assert not missing and not extra, (missing[:3], extra[:3])


def test_missing_file_and_unknown_family(tmp_path, capsys):
    assert_one_line_error(*convert(capsys, tmp_path / "absent.pth", "--family", "damo-yolo")[::2], "no such file")
    (tmp_path / "weights.pth").write_bytes(b"not a checkpoint")
    assert_one_line_error(*convert(capsys, tmp_path / "weights.pth")[::2], "--family")
    assert_one_line_error(*convert(capsys, tmp_path / "weights.pth", "--family", "damo-yolo")[::2], "--config")
    assert_one_line_error(*convert(capsys, tmp_path / "weights.pth", "--family", "damo-yolo", "--config", "X")[::2],
                          "--config", "Nm")


@pytest.mark.needs_shared
def test_bad_checkpoints_fail_in_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    t, ns = shared_file("damo", "ref_T.pth"), shared_file("damo", "ref_Ns.pth")
    out = ["--out", tmp_path / "b"]
    assert_one_line_error(*convert(capsys, t, "--family", "damo-yolo", "--config", "S", *out)[::2],
                          "backbone.block_list.0.conv.conv.weight", "[24, 12, 3, 3]", "[32, 12, 3, 3]")
    assert_one_line_error(*convert(capsys, ns, "--family", "damo-yolo", "--config", "Ns", "--names", "a,b,c",
                                   *out)[::2], "80 classes", "3 names")
    assert_one_line_error(*convert(capsys, shared_file("models", "yolo11n.pt"), "--family", "damo-yolo",
                                   "--config", "T", *out)[::2], "DetectionModel object")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    assert_one_line_error(*convert(capsys, tmp_path / "junk.pth", "--family", "damo-yolo", "--config", "T", *out)[::2],
                          "junk.pth")
    assert not (tmp_path / "b").exists()
