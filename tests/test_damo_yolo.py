"""DAMO-YOLO runtime path against the official code's outputs in ../shared/damo/out_<cfg>.npz (SPEC §3, §5, §10)."""
import cv2
import numpy as np
import pytest

from edge import Detector
from edge.contract import family_input
from edge.decode import decode_damo_yolo, decode_damo_yolo_head
from edge.nms import non_max_suppression
from edge.preprocess import Preprocessor

from .conftest import SHARED
from .onnx_models import constant_model

pytestmark = pytest.mark.needs_shared
CONFIGS = {"T": (640, 16, 0.05, 0.7), "Ns": (416, 7, 0.03, 0.65)}  # size, reg_max, conf, IoU (config heads)


def reference(cfg: str):
    path = SHARED / "damo" / f"out_{cfg}.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return np.load(path)


def assert_matches_official(xyxy, scores, labels, ref) -> None:
    """Every official detection has one of ours with the same label, score within 1e-4 and box within 0.1 px."""
    assert len(scores) == len(ref["det_scores"])
    for box, score, label in zip(ref["det_boxes_orig"], ref["det_scores"], ref["det_labels"]):
        same = (labels == int(label)) & (np.abs(scores - score) <= 1e-4)
        assert same.any(), f"no match for official detection {label} {score}"
        assert np.abs(xyxy[same] - box).max(axis=1).min() <= 0.1


@pytest.mark.parametrize("cfg", CONFIGS)
def test_preprocess_is_bit_exact(cfg):
    ref = reference(cfg)
    size = CONFIGS[cfg][0]
    tensor, _ = Preprocessor(family_input("damo-yolo", "images", size, size, "NCHW", "float32"))(
        cv2.imread(str(SHARED / "images" / "dog.jpg")))
    np.testing.assert_array_equal(tensor, ref["input"])


@pytest.mark.parametrize("cfg", CONFIGS)
def test_raw_head_decoding_matches_export(cfg):
    ref = reference(cfg)
    scores, boxes = decode_damo_yolo_head([ref[f"bench_cls_{i}"] for i in range(3)], [ref[f"bench_reg_{i}"] for i in range(3)],
                                          reg_max=CONFIGS[cfg][1])
    np.testing.assert_allclose(scores, ref["scores"][0], atol=1e-6)
    np.testing.assert_allclose(boxes, ref["boxes"][0], atol=1e-3)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_postprocess_matches_official_demo(cfg):
    ref = reference(cfg)
    size, _, conf, iou = CONFIGS[cfg]
    _, transform = Preprocessor(family_input("damo-yolo", "images", size, size, "NCHW", "float32"))(
        cv2.imread(str(SHARED / "images" / "dog.jpg")))
    boxes, scores, labels = decode_damo_yolo(ref["scores"], ref["boxes"], conf)
    keep = non_max_suppression(boxes, scores, labels, iou, max_det=500)
    xyxy = transform.boxes_to_frame(boxes[keep], clip=False)  # the official pipeline does not clip
    assert_matches_official(xyxy, scores[keep], labels[keep], ref)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_detector_on_official_onnx_contract(cfg, tmp_path):
    """A model with the official export's outputs ('output' scores, auto-named boxes) runs end to end."""
    ref = reference(cfg)
    size = CONFIGS[cfg][0]
    path = constant_model(tmp_path / f"damoyolo_{cfg}.onnx", (1, 3, size, size), {"output": ref["scores"], "791": ref["boxes"]})
    detector = Detector.load(path, clip=False)
    info = detector.info()
    assert info["family"] == "damo-yolo" and info["decode"]["format"] == "damo-yolo"
    assert info["input"]["resize"] == "stretch" and info["input"]["pixel_scale"] == 1.0
    assert (detector.conf, detector.iou, detector.max_det) == CONFIGS[cfg][2:] + (500,)
    assert detector.names[16] == "dog"
    frame = cv2.imread(str(SHARED / "images" / "dog.jpg"))
    dets = detector(frame)
    assert_matches_official(dets.xyxy, dets.scores, dets.class_ids, ref)
    clipped = Detector.load(path)(frame)  # the runtime clips by default
    assert clipped.xyxy.min() >= 0 and clipped.xyxy[:, 2].max() <= frame.shape[1] and clipped.xyxy[:, 3].max() <= frame.shape[0]


def test_detector_on_benchmark_export(tmp_path):
    """The six-output `--benchmark` export decodes to the same detections."""
    ref = reference("Ns")
    outputs = {"output": ref["bench_cls_0"], **{f"c{i}": ref[f"bench_cls_{i}"] for i in (1, 2)},
               **{f"r{i}": ref[f"bench_reg_{i}"] for i in range(3)}}
    detector = Detector.load(constant_model(tmp_path / "bench.onnx", (1, 3, 416, 416), outputs), clip=False)
    assert detector.contract.decode.format == "damo-yolo-head" and detector.contract.decode.reg_max == 7
    dets = detector(cv2.imread(str(SHARED / "images" / "dog.jpg")))
    assert_matches_official(dets.xyxy, dets.scores, dets.class_ids, ref)
