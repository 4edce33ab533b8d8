"""Batched inference: the contract's batch, Detector.batch equal to single-frame calls, padding of a fixed batch,
and the converter's --batch (a dynamic batch axis, checked image by image)."""
import json
import tracemalloc
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from converters import ConvertError, ConvertOptions, convert
from converters.batch import batched_onnx, check_batch, pin_batch_one
from edge import Detector
from edge.bundle import MANIFEST, read_bundle, write_bundle
from edge.demo import BUNDLE
from edge.errors import ContractError
from edge.scene import demo_frame

from .test_hot_path import LIMIT


def dynamic_copy(source: str, out) -> str:
    """The model of `source` (a bundle or an ONNX file) with a dynamic batch axis, as edge-convert --batch makes it."""
    detector = Detector.load(source)
    batched_onnx(detector.model_path, str(out), detector.contract.input, 3)
    return str(out)


def fixed_copy(dynamic: str, out, batch: int) -> str:
    """A dynamic-batch ONNX pinned to a fixed batch (as an export with batch=N gives)."""
    model = onnx.load(dynamic)
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    onnx.save(model, str(out))
    return str(out)


@pytest.fixture(scope="module")
def demo_dynamic(tmp_path_factory):
    return dynamic_copy(BUNDLE, tmp_path_factory.mktemp("demo") / "demo_dynamic.onnx")


def frames() -> list:
    """Demo scenes plus frames of other sizes and aspect ratios (each image its own letterbox/stretch)."""
    rng = np.random.default_rng(1)
    return [demo_frame(i) for i in (0, 7, 19)] + [rng.integers(0, 256, (240, 500, 3), np.uint8),
                                                   cv2.resize(demo_frame(3), (300, 400))]


def same(a, b) -> bool:
    return (np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.scores, b.scores)
            and np.array_equal(a.class_ids, b.class_ids))


# --- the contract knows the batch -------------------------------------------------------------------------

def test_the_contract_reads_the_batch_axis(demo_dynamic, tmp_path):
    static = Detector.load(BUNDLE).contract.input
    assert (static.batch, static.dynamic_batch) == (1, False)
    dynamic = Detector.load(demo_dynamic, family="damo-yolo", names=Detector.load(BUNDLE).names)
    assert (dynamic.contract.input.batch, dynamic.contract.input.dynamic_batch, dynamic.max_batch) == (0, True, 0)
    fixed = Detector.load(fixed_copy(demo_dynamic, tmp_path / "b4.onnx", 4), family="damo-yolo",
                          names=dynamic.names)
    assert (fixed.contract.input.batch, fixed.contract.input.dynamic_batch, fixed.fixed_batch) == (4, False, 4)


def test_the_manifest_records_the_batch_and_is_checked_against_the_model(demo_dynamic, tmp_path):
    names = Detector.load(BUNDLE).names
    contract = Detector.load(demo_dynamic, family="damo-yolo", names=names).contract
    bundle = write_bundle(str(tmp_path / "b"), demo_dynamic, contract)
    data = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert (data["input"]["batch"], data["input"]["dynamic_batch"], data["schema_version"]) == (0, True, 3)
    single = json.loads((Path(write_bundle(str(tmp_path / "one"), read_bundle(BUNDLE).model_path,
                                           Detector.load(BUNDLE).contract)) / MANIFEST).read_text())
    assert "batch" not in single["input"] and single["schema_version"] < 3  # what older runtimes read
    data["input"]["dynamic_batch"] = False
    (tmp_path / "b" / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ContractError, match="input.batch 0 .no limit. needs input.dynamic_batch true"):
        read_bundle(bundle)
    demo = read_bundle(BUNDLE)
    claims = replace(demo.contract, input=replace(demo.contract.input, batch=2, dynamic_batch=True))
    with pytest.raises(ContractError, match="declares a dynamic batch axis but the model's input is fixed at batch 1"):
        Detector.load(write_bundle(str(tmp_path / "static"), demo.model_path, claims))


# --- Detector.batch --------------------------------------------------------------------------------------

def test_batch_equals_single_frames_on_the_demo_model(demo_dynamic):
    single = Detector.load(BUNDLE)
    batched = Detector.load(demo_dynamic, family="damo-yolo", names=single.names)
    images = frames()
    together = batched.batch(images)
    assert len(together) == len(images) and sum(len(d) for d in together) > 100
    assert all(same(a, single(f)) for a, f in zip(together, images))
    assert all(same(a, batched(f)) for a, f in zip(batched.batch(images[::-1]), images[::-1]))  # any order
    assert batched.batch([]) == []


@pytest.mark.needs_shared
def test_batch_equals_single_frames_on_yolo11n(shared_path, tmp_path):
    source = str(shared_path("models", "yolo11n.onnx"))
    single = Detector.load(source)
    batched = Detector.load(dynamic_copy(source, tmp_path / "yolo11n_dynamic.onnx"), family="yolo11",
                            names=single.names)
    images = [cv2.imread(str(shared_path("images", n))) for n in ("bus.jpg", "zidane.jpg", "dog.jpg")]
    together = batched.batch(images)
    assert [len(d) for d in together] == [len(single(f)) for f in images] and sum(map(len, together)) >= 8
    assert all(same(a, single(f)) for a, f in zip(together, images))


def test_a_fixed_batch_pads_a_short_batch(demo_dynamic, tmp_path):
    single = Detector.load(BUNDLE)
    fixed = Detector.load(fixed_copy(demo_dynamic, tmp_path / "b4.onnx", 4), family="damo-yolo", names=single.names)
    images = frames()
    tensor, transforms = fixed.prepare_batch(images[:2])
    assert tensor.shape[0] == 4 and len(transforms) == 2  # two frames, two images of padding
    assert all(same(a, single(f)) for a, f in zip(fixed.batch(images), images))  # runs of 4 and 1 (padded)
    assert same(fixed(images[3]), single(images[3]))  # a single frame is a padded batch too
    with pytest.raises(ValueError, match="5 frames for one run of a model that takes 1 to 4"):
        fixed.prepare_batch(images)


def test_batches_reuse_their_buffers(demo_dynamic):
    """As test_hot_path's single frames (at the deployment threshold, so NMS stays small)."""
    batched = Detector.load(demo_dynamic, family="damo-yolo", names=Detector.load(BUNDLE).names, conf=0.4)
    images = frames()[:3]
    batched.batch(images)  # the first batch of a size allocates its tensor and output buffers
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            batched.batch(images)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < LIMIT


def test_prepare_slots_of_a_batch_do_not_share_a_tensor(demo_dynamic):
    batched = Detector.load(demo_dynamic, family="damo-yolo", names=Detector.load(BUNDLE).names)
    a, _ = batched.prepare_batch(frames()[:2], 0)
    b, _ = batched.prepare_batch(frames()[2:4], 1)
    assert not np.shares_memory(a, b) and a.shape[0] == b.shape[0] == 2


# --- the converter ----------------------------------------------------------------------------------------

def test_convert_batch_writes_a_dynamic_onnx_bundle(tmp_path):
    result = convert(BUNDLE, "onnx", tmp_path / "demo-b4", ConvertOptions(batch=4))
    spec = result.bundle.contract.input
    assert (spec.batch, spec.dynamic_batch) == (4, True)
    detector = Detector.load(result.path)
    assert detector.backend.inputs[0].shape[0] == -1 and detector.max_batch == 4
    single = Detector.load(BUNDLE)
    assert all(same(a, single(f)) for a, f in zip(detector.batch(frames()), frames()))
    again = convert(result.path, "onnx", tmp_path / "again")  # a batch bundle converted on keeps its batch
    assert (again.bundle.contract.input.batch, again.bundle.contract.input.dynamic_batch) == (4, True)


def test_convert_batch_for_tensorrt_ships_the_dynamic_onnx(tmp_path, monkeypatch):
    import converters.tensorrt as trt_convert

    monkeypatch.setattr(trt_convert, "tensorrt_here", lambda: False)
    result = convert(BUNDLE, "tensorrt-fp16", tmp_path / "trt", ConvertOptions(batch=8))
    assert (result.bundle.target, result.bundle.contract.input.batch) == ("tensorrt-fp16", 8)
    assert Detector.load(result.path, backend="onnxruntime").backend.inputs[0].shape[0] == -1


def test_convert_batch_refuses_tflite_and_bad_values(tmp_path):
    with pytest.raises(ConvertError, match="TFLite bundles run one image per inference"):
        convert(BUNDLE, "tflite-int8", tmp_path / "t", ConvertOptions(batch=2))
    with pytest.raises(ConvertError, match="--batch must be >= 1, got 0"):
        convert(BUNDLE, "onnx", tmp_path / "t", ConvertOptions(batch=0))
    assert not (tmp_path / "t").exists()


def test_a_graph_that_mixes_images_is_refused(demo_dynamic, tmp_path):
    """A graph whose batch run does not give each image's own result (here: every image gets the batch's mean)."""
    model = onnx.load(demo_dynamic)
    graph = model.graph
    first = graph.input[0].name
    graph.node.insert(0, onnx.helper.make_node("ReduceMean", [first], ["mean"], axes=[0], keepdims=1))
    for node in graph.node[1:]:
        node.input[:] = ["mean" if i == first else i for i in node.input]
    mixed = str(tmp_path / "mixed.onnx")
    onnx.save(model, mixed)
    spec = Detector.load(BUNDLE).contract.input
    with pytest.raises(ConvertError, match="differs between a batch of 2 and a run of its own"):
        check_batch(demo_dynamic, mixed, spec, 2)


def test_tflite_keeps_one_image_per_run(demo_dynamic):
    """The TFLite path pins a dynamic batch to 1 and still cuts the head (shape inference works through it)."""
    from converters.tflite import _split_head

    model = onnx.load(demo_dynamic)
    pin_batch_one(model)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 256, 256]
    graph, decode = _split_head(model, Detector.load(BUNDLE).contract, demo_dynamic)
    assert [d.dim_value for d in graph.graph.output[1].type.tensor_type.shape.dim] == [1, 1344, 4 * decode.dfl_bins]


@pytest.mark.slow
@pytest.mark.needs_shared
@pytest.mark.parametrize("checkpoint", ["damo/ref_Ns.pth", "models/yolo11n.pt"])
def test_checkpoints_export_with_a_batch(shared_path, tmp_path, checkpoint):
    """DAMO-YOLO through torch.onnx.export, YOLO11 through Ultralytics: both traced at batch 1, then batchable."""
    pytest.importorskip("torch")
    if checkpoint.endswith(".pt"):
        pytest.importorskip("ultralytics")
    options = ConvertOptions(batch=3, family="damo-yolo", config="Ns") if "Ns" in checkpoint else ConvertOptions(batch=3)
    result = convert(shared_path(*checkpoint.split("/")), "onnx", tmp_path / "b3", options)
    detector = Detector.load(result.path)
    assert (detector.max_batch, detector.backend.inputs[0].shape[0]) == (3, -1)
    images = [cv2.imread(str(shared_path("images", n))) for n in ("bus.jpg", "zidane.jpg", "dog.jpg")]
    together = detector.batch(images)
    assert all(same(a, detector(f)) for a, f in zip(together, images)) and sum(map(len, together)) > 5
