"""TensorRT path: engine naming and cache, calibration, backend plumbing, store and converter.

Without a GPU these run against tests/fake_tensorrt.py, which mimics the API surface we call: they test our
code around TensorRT, not TensorRT. The `hardware` tests at the end build and run a real engine.
"""
import json
import logging
import os
import re
import sys
from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import edge.backends.tensorrt.backend as trt_backend
from converters import ConvertError
from converters.tensorrt import build_tensorrt_bundle
from edge import Detector
from edge.backends import open_backend
from edge.backends.tensorrt.calibrator import CalibrationBatches, make_calibrator, read_cache, write_cache
from edge.backends.tensorrt.engines import (
    ENGINES,
    Platform,
    build_engine,
    engine_key,
    engine_paths,
    find_engine,
    precision_of,
    timing_cache_path,
)
from edge.bundle import MANIFEST, Bundle, BundleFile, TensorRTSection, read_bundle, sha256_file
from edge.cli import main
from edge.errors import BackendUnavailable, ModelError
from edge.service.store import Store

from .fake_tensorrt import BindingEngine, FakeCuda, FakeTrt, NamedEngine
from .onnx_models import tiny_bundle, yolo11_output

ORIN = Platform("10.3.0", "Orin", "8.7")
OUTPUT = yolo11_output([[320, 320, 100, 60]], [[0.9, 0.0]])  # what tiny_bundle's model returns
TENSORS = [("images", True, (1, 3, 640, 640), np.float32), ("output0", False, (1, 6, 8400), np.float32)]


@pytest.fixture
def fakes(monkeypatch):
    """Fake tensorrt + pycuda behind edge's lazy import; engines built by the fake builder run tiny_bundle's output."""
    trt, cuda = FakeTrt(), FakeCuda()
    monkeypatch.setattr(trt_backend, "import_tensorrt", lambda: (trt, cuda))
    monkeypatch.setattr(trt_backend, "_LOGGER", None)
    for blob in (b"ENGINE FP16", b"ENGINE FP16 INT8"):
        trt.engines[blob] = NamedEngine(cuda, TENSORS, lambda x: [OUTPUT + x.max() * 0])
    return trt, cuda


@pytest.fixture
def no_tensorrt(monkeypatch):
    """`import tensorrt` and `import pycuda.driver` fail as on a machine without them."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)


def trt_bundle(tmp_path, target="tensorrt-fp16", tag="a", extra=None) -> str:
    bundle = tiny_bundle(tmp_path / "src", tag)
    path = os.path.join(bundle, MANIFEST)
    with open(path) as f:
        manifest = json.load(f)
    manifest.update(target=target, precision=target.split("-")[1], **(extra or {}))
    with open(path, "w") as f:
        json.dump(manifest, f)
    return bundle


# --- engine names and the engine cache ---------------------------------------------------------------------

def test_engine_keys_differ_per_version_gpu_precision_and_size_and_are_filesystem_safe():
    keys = {engine_key(ORIN, "fp16", 640, 640), engine_key(Platform("8.6.2.3", "Orin", "8.7"), "fp16", 640, 640),
            engine_key(Platform("10.3.0", "NVIDIA GeForce RTX 4090", "8.9"), "fp16", 640, 640),
            engine_key(Platform("10.3.0", "Orin", "7.2"), "fp16", 640, 640),
            engine_key(ORIN, "int8", 640, 640), engine_key(ORIN, "fp16", 480, 640)}
    assert len(keys) == 6
    weird = engine_key(Platform("10.3.0", "NVIDIA A100/PCIe 40GB (MIG 1g.5gb)", "8.0"), "fp16", 640, 640)
    for key in keys | {weird}:
        assert re.fullmatch(r"[a-z0-9.-]+", key) and len(key) < 120, key
    assert engine_key(ORIN, "fp16", 480, 640) == "fp16-480x640-trt10.3.0-orin-sm87"


def test_precision_comes_from_the_target(tmp_path):
    manifest = read_bundle(trt_bundle(tmp_path, "tensorrt-int8")).manifest
    assert precision_of(manifest) == "int8"
    with pytest.raises(ModelError, match="tensorrt-fp16"):
        precision_of(replace(manifest, target="tensorrt-fp64"))


def test_find_engine_missing_stale_and_corrupt(tmp_path):
    bundle = read_bundle(trt_bundle(tmp_path))
    with pytest.raises(ModelError, match="edge models build-engine"):
        find_engine(bundle, ORIN)
    engine, sidecar = engine_paths(bundle.path, engine_key(ORIN, "fp16", 640, 640))
    os.makedirs(os.path.dirname(engine))
    with open(engine, "wb") as f:
        f.write(b"plan")
    record = {"onnx_sha256": bundle.manifest.model.sha256, "sha256": sha256_file(engine)}
    with open(sidecar, "w") as f:
        json.dump(record, f)
    assert find_engine(bundle, ORIN) == engine
    with pytest.raises(ModelError, match="no TensorRT engine"):  # another TensorRT: another key
        find_engine(bundle, Platform("10.4.0", "Orin", "8.7"))
    with open(sidecar, "w") as f:
        json.dump({**record, "onnx_sha256": "0" * 64}, f)  # built from another ONNX
    with pytest.raises(ModelError, match="no TensorRT engine"):
        find_engine(bundle, ORIN)
    with open(sidecar, "w") as f:
        json.dump({**record, "sha256": "0" * 64}, f)
    with pytest.raises(ModelError, match="sha256 does not match"):
        find_engine(bundle, ORIN)


# --- calibration --------------------------------------------------------------------------------------------

def test_calibration_batches_are_fixed_size_contiguous_float32():
    tensors = np.arange(7 * 3 * 2 * 2, dtype=np.float64).reshape(7, 3, 2, 2)
    batches = CalibrationBatches(tensors, 2, (3, 2, 2))
    assert len(batches) == 3 and batches.nbytes == 2 * 3 * 2 * 2 * 4
    served = []
    while (batch := batches.next_batch()) is not None:
        assert batch.shape == (2, 3, 2, 2) and batch.dtype == np.float32 and batch.flags.c_contiguous
        served.append(batch)
    np.testing.assert_array_equal(np.concatenate(served), tensors[:6])  # the 7th does not fill a batch
    with pytest.raises(ModelError, match="do not fit"):
        CalibrationBatches(tensors, 1, (3, 4, 4))
    with pytest.raises(ModelError, match="at least 8"):
        CalibrationBatches(tensors, 8, (3, 2, 2))


def test_calibration_cache_round_trip_and_an_existing_cache_is_kept(tmp_path):
    path = str(tmp_path / "calibration.cache")
    assert read_cache(path) is None
    write_cache(path, b"TRT-8601-EntropyCalibration2\nimages: 3c010a14\n")
    write_cache(path, b"other")
    assert read_cache(path).startswith(b"TRT-8601") and not os.path.exists(path + ".tmp")


def test_calibrator_feeds_batches_to_device_memory_and_uses_the_cache(tmp_path):
    trt, cuda = FakeTrt(), FakeCuda()
    tensors = np.random.default_rng(0).random((3, 3, 4, 4), np.float32)
    cache = str(tmp_path / "c.cache")
    calibrator = make_calibrator(trt, cuda, CalibrationBatches(tensors, 1, (3, 4, 4)), cache)
    assert isinstance(calibrator, FakeTrt.IInt8EntropyCalibrator2) and calibrator.get_batch_size() == 1
    for k in range(3):
        (pointer,) = calibrator.get_batch(["images"])
        np.testing.assert_array_equal(cuda.read(pointer, (1, 3, 4, 4), np.float32), tensors[k:k + 1])
    assert calibrator.get_batch(["images"]) is None and calibrator.read_calibration_cache() is None
    calibrator.write_calibration_cache(memoryview(b"table"))
    assert calibrator.read_calibration_cache() == b"table"
    assert isinstance(make_calibrator(trt, cuda, None, cache, "minmax"), FakeTrt.IInt8MinMaxCalibrator)
    with pytest.raises(ModelError, match="entropy, minmax"):
        make_calibrator(trt, cuda, None, cache, "percentile")


# --- backend: layout and buffers ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [NamedEngine, BindingEngine])
def test_layout_for_both_apis(kind):
    trt, cuda = FakeTrt(), FakeCuda()
    tensors = [("output0", False, (1, 6, 8400), np.float16), ("images", True, (1, 3, 640, 640), np.float32)]
    engine = kind(cuda, tensors, None)
    named = trt_backend.uses_tensor_api(engine, engine.create_execution_context())
    assert named == (kind is NamedEngine)
    layout = trt_backend.tensor_layout(engine, trt, named)
    assert [(t.name, t.is_input, t.shape, t.dtype) for t in layout] == \
        [("output0", False, (1, 6, 8400), np.float16), ("images", True, (1, 3, 640, 640), np.float32)]
    trt_backend.check_layout(layout, "m")
    tensor = layout[1].__class__
    trt_backend.check_layout([tensor("output0", False, (-1, 6, 8400), np.float16),
                              tensor("images", True, (-1, 3, 640, 640), np.float32)], "m")  # a dynamic batch runs
    with pytest.raises(ModelError, match="dynamic shapes on images"):
        trt_backend.check_layout([layout[0], tensor("images", True, (-1, 3, -1, 640), np.float32)], "m")
    with pytest.raises(ModelError, match="dynamic batch on outputs of a fixed-batch input"):
        trt_backend.check_layout([tensor("output0", False, (-1, 6, 8400), np.float16), layout[1]], "m")
    with pytest.raises(ModelError, match="one input"):
        trt_backend.check_layout([layout[1], layout[1]], "m")


@pytest.mark.parametrize("kind", [NamedEngine, BindingEngine])
def test_backend_runs_an_engine_through_detector(fakes, tmp_path, kind):
    trt, cuda = fakes
    seen = []
    trt.engines[b"plan"] = kind(cuda, TENSORS, lambda x: seen.append(x.copy()) or [OUTPUT])
    (tmp_path / "m.engine").write_bytes(b"plan")
    backend = open_backend(str(tmp_path / "m.engine"))
    assert (backend.name, backend.metadata) == ("tensorrt", {})
    assert [(i.name, i.shape, i.dtype) for i in backend.inputs + backend.outputs] == \
        [("images", (1, 3, 640, 640), "float32"), ("output0", (1, 6, 8400), "float32")]
    detector = Detector(backend, Detector.load(os.path.join(tiny_bundle(tmp_path, "c"), MANIFEST)).contract)
    frame = np.full((480, 640, 3), 114, np.uint8)
    detections = detector(frame)
    assert len(detections) == 1 and detections.class_ids.tolist() == [0] and detections.scores[0] == pytest.approx(0.9)
    np.testing.assert_array_equal(seen[0], detector.preprocess(frame)[0])  # the input reached the engine intact
    assert cuda.pushed == 0  # every context push was popped
    backend.close()
    backend.close()
    assert cuda.freed == 4  # two device and two pinned host buffers


def test_backend_errors_are_one_clear_line(fakes, tmp_path):
    (tmp_path / "ultra.engine").write_bytes(len(b'{"a":1}').to_bytes(4, "little") + b'{"a":1}plan')
    (tmp_path / "other.engine").write_bytes(b"built elsewhere")
    with pytest.raises(ModelError, match="JSON header"):
        open_backend(str(tmp_path / "ultra.engine"))
    with pytest.raises(ModelError, match="cannot load this engine.*edge models build-engine"):
        open_backend(str(tmp_path / "other.engine"))
    with pytest.raises(ModelError, match="runs engines"):
        open_backend(str(tmp_path / "m.onnx"), "tensorrt")
    with pytest.raises(ModelError, match="cannot read"):
        open_backend(str(tmp_path / "missing.engine"))


def test_without_tensorrt_everything_imports_and_the_error_says_how_to_install(no_tensorrt, tmp_path):
    (tmp_path / "m.engine").write_bytes(b"plan")
    with pytest.raises(BackendUnavailable) as error:
        open_backend(str(tmp_path / "m.engine"))
    message = str(error.value)
    assert "\n" not in message and "TensorRT is not installed" in message
    assert "JetPack" in message and "python3-libnvinfer" in message and "edge[tensorrt]" in message
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        Detector.load(trt_bundle(tmp_path))


# --- engine build (fake builder) and Detector.load ----------------------------------------------------------

def test_build_fp16_engine_with_timing_cache_then_load(fakes, tmp_path):
    trt, _ = fakes
    bundle = trt_bundle(tmp_path)
    typed = read_bundle(bundle)
    with pytest.raises(ModelError, match="no TensorRT engine fp16-640x640-trt10.3.0-orin-sm87"):
        Detector.load(bundle)
    engine = build_engine(typed, workspace_gb=1)
    config = trt.configs[0]
    assert config.flags == {"FP16"} and config.pool == ("WORKSPACE", 2**30) and config.int8_calibrator is None
    with open(engine, "rb") as f:
        assert f.read() == b"ENGINE FP16"  # the plain serialized engine, nothing prepended
    record = json.loads(open(engine_paths(bundle, engine_key(ORIN, "fp16", 640, 640))[1]).read())
    assert record["sha256"] == sha256_file(engine) and record["onnx_sha256"] == typed.manifest.model.sha256
    assert (record["tensorrt"], record["gpu"], record["compute_capability"], record["input"]) == \
        ("10.3.0", "Orin", "8.7", [640, 640])
    assert build_engine(typed) == engine and trt.builds == 1  # cached: no rebuild
    os.remove(engine)
    build_engine(typed)
    assert open(timing_cache_path(bundle, ORIN), "rb").read() == b"2"  # the second build reused the timing cache
    detector = Detector.load(bundle)
    assert detector.backend.name == "tensorrt" and len(detector(np.zeros((64, 64, 3), np.uint8))) == 1
    assert Detector.load(bundle, backend="onnxruntime").backend.name == "onnxruntime"


def test_tensorrt_8_builds_an_explicit_batch_network_and_10_needs_no_flag(fakes, tmp_path):
    trt, _ = fakes
    trt.__version__ = "8.6.1"
    bundle = trt_bundle(tmp_path)
    build_engine(read_bundle(bundle))
    assert trt.network_flags == 1 << trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH
    engine = find_engine(read_bundle(bundle))
    assert os.path.basename(engine).startswith("fp16-640x640-trt8.6.1-")
    trt.__version__ = "10.3.0"
    build_engine(read_bundle(bundle))
    assert trt.network_flags == 0 and trt.builds == 2


def test_int8_from_qdq_needs_no_calibrator(fakes, tmp_path):
    trt, _ = fakes
    trt.qdq = True
    bundle = trt_bundle(tmp_path, "tensorrt-int8")
    engine = build_engine(read_bundle(bundle))
    assert trt.configs[0].flags == {"FP16", "INT8"} and trt.configs[0].int8_calibrator is None
    assert json.loads(open(engine[: -len(".engine")] + ".json").read())["quantization"] == "qdq"


def test_int8_from_fp32_calibrates_or_uses_the_bundle_cache(fakes, tmp_path):
    trt, _ = fakes
    bundle = trt_bundle(tmp_path, "tensorrt-int8")
    with pytest.raises(ModelError, match="needs calibration data"):
        build_engine(read_bundle(bundle))
    build_engine(read_bundle(bundle), calibration=np.zeros((3, 3, 640, 640), np.float32))
    assert trt.calibrated_batches == 3 and open(os.path.join(bundle, "calibration.cache"), "rb").read() == \
        b"TRT-calibration 3"
    # A device build from a bundle that ships the cache: no images, TensorRT reads the cache.
    other = trt_bundle(tmp_path / "dev", "tensorrt-int8", "d")
    cache = os.path.join(other, "calibration.cache")
    os.replace(os.path.join(bundle, "calibration.cache"), cache)
    typed = read_bundle(other)
    build_engine(with_cache(typed, sha256_file(cache)))
    assert trt.calibrated_batches == 3 and trt.builds == 2
    taller = replace(typed.manifest.input, height=320)  # another engine key, so it builds, with a cache that does not match
    with pytest.raises(ModelError, match="does not match the manifest"):
        build_engine(with_cache(replace(typed, manifest=replace(typed.manifest, input=taller)), "0" * 64))


def with_cache(bundle: Bundle, sha256: str) -> Bundle:
    """The bundle with a manifest that names calibration.cache with this sha256."""
    section = TensorRTSection(BundleFile("calibration.cache", sha256))
    return replace(bundle, manifest=replace(bundle.manifest, tensorrt=section))


# --- dynamic batch: optimization profile, runs of 1..max images, padding of a fixed batch ------------------

DYNAMIC = [("images", True, (-1, 3, 640, 640), np.float32), ("output0", False, (-1, 6, 8400), np.float32)]


def per_image(x: np.ndarray) -> list:
    """tiny_bundle's output for each image, its box centre moved by the image's brightness (so images differ)."""
    out = np.repeat(OUTPUT, len(x), axis=0)
    out[:, 0, 0] = 100 + 400 * x.reshape(len(x), -1).mean(axis=1)
    return [out]


def batch_bundle(tmp_path, batch=4, dynamic=True, target="tensorrt-fp16") -> str:
    bundle = trt_bundle(tmp_path, target)
    path = os.path.join(bundle, MANIFEST)
    with open(path) as f:
        manifest = json.load(f)
    manifest["input"].update(batch=batch, dynamic_batch=dynamic)
    with open(path, "w") as f:
        json.dump(manifest, f)
    return bundle


def frames(count: int) -> list:
    return [np.full((480, 640, 3), 20 + 35 * k, np.uint8) for k in range(count)]


def test_dynamic_batch_engine_gets_a_profile_from_1_to_the_manifests_batch(fakes, tmp_path):
    trt, cuda = fakes
    trt.input_shape = (-1, 3, 640, 640)  # what the parser reads from a dynamic-batch ONNX
    bundle = read_bundle(batch_bundle(tmp_path))
    engine = build_engine(bundle)
    assert os.path.basename(engine) == "fp16-640x640-b4-trt10.3.0-orin-sm87.engine"
    assert trt.configs[0].profiles[0].shapes == {"images": ((1, 3, 640, 640), (4, 3, 640, 640), (4, 3, 640, 640))}
    record = json.loads(open(engine[: -len(".engine")] + ".json").read())
    assert (record["batch"], record["dynamic_batch"]) == (4, True)
    with pytest.raises(ModelError, match="edge-convert --batch N"):  # a dynamic batch with no largest size
        build_engine(read_bundle(batch_bundle(tmp_path / "any", batch=0)))


def test_int8_calibration_of_a_dynamic_batch_runs_batches_of_the_profiles_opt(fakes, tmp_path):
    trt, _ = fakes
    trt.input_shape = (-1, 3, 640, 640)
    build_engine(read_bundle(batch_bundle(tmp_path, target="tensorrt-int8")),
                 calibration=np.zeros((8, 3, 640, 640), np.float32))
    config = trt.configs[0]
    assert config.calibration_profile is config.profiles[0] and trt.calibrated_batches == 2  # 8 images, 4 a batch


@pytest.mark.parametrize("kind", [NamedEngine, BindingEngine])
def test_dynamic_batch_engine_runs_any_batch_up_to_its_max(fakes, tmp_path, kind):
    trt, cuda = fakes
    trt.input_shape = (-1, 3, 640, 640)
    bundle = batch_bundle(tmp_path)
    build_engine(read_bundle(bundle))
    trt.engines[b"ENGINE FP16"] = engine = kind(cuda, DYNAMIC, per_image, profile=(1, 4, 4))
    detector = Detector.load(bundle)
    assert (detector.max_batch, detector.backend.max_batch, detector.backend.dynamic_batch) == (4, 4, True)
    alone = [detector(frame) for frame in frames(6)]
    together = detector.batch(frames(6))  # runs of 4 and 2
    assert [d.xyxy.tolist() for d in together] == [d.xyxy.tolist() for d in alone]
    assert len({d.xyxy[0, 0] for d in together}) == 6  # every frame got its own image's box
    context = detector.backend._context
    assert [s[0] for s in context.shapes] == [1, 4, 2] and engine.profile == (1, 4, 4)  # set only when it changes
    with pytest.raises(ModelError, match="takes 1 to 4"):
        detector.backend.run(np.zeros((5, 3, 640, 640), np.float32))
    detector.backend.close()


def test_fixed_batch_engine_pads_a_short_batch(fakes, tmp_path):
    trt, cuda = fakes
    seen = []
    fixed = [("images", True, (4, 3, 640, 640), np.float32), ("output0", False, (4, 6, 8400), np.float32)]
    trt.engines[b"plan"] = NamedEngine(cuda, fixed, lambda x: seen.append(len(x)) or per_image(x))
    (tmp_path / "m.engine").write_bytes(b"plan")
    contract = read_bundle(batch_bundle(tmp_path, dynamic=False)).contract
    detector = Detector(open_backend(str(tmp_path / "m.engine")), contract)
    assert (detector.max_batch, detector.fixed_batch) == (4, 4)
    together = detector.batch(frames(3))
    assert seen == [4] and len(together) == 3  # one run of 4 images, the last one padding
    assert [d.xyxy.tolist() for d in together] == [detector(f).xyxy.tolist() for f in frames(3)]
    detector.backend.close()


# --- the store and `edge models build-engine` ---------------------------------------------------------------

def test_store_install_builds_the_engine_and_build_engine_is_idempotent(fakes, tmp_path, capsys):
    trt, _ = fakes
    store = Store(str(tmp_path / "state"))
    version = store.install(trt_bundle(tmp_path)).version
    engines = os.path.join(store.root, version, ENGINES)
    assert sorted(os.listdir(engines)) == ["fp16-640x640-trt10.3.0-orin-sm87.engine",
                                           "fp16-640x640-trt10.3.0-orin-sm87.json", "timing-trt10.3.0-orin-sm87.cache"]
    assert oct(os.stat(engines).st_mode & 0o777) == "0o755" and trt.builds == 1
    assert main(["models", "build-engine", "--state-dir", str(tmp_path / "state")]) == 0
    assert trt.builds == 1 and "fp16-640x640-trt10.3.0-orin-sm87.engine" in capsys.readouterr().out
    assert store.versions()[0].size > os.path.getsize(os.path.join(store.root, version, "a.onnx"))


def test_store_refuses_a_tensorrt_bundle_where_there_is_no_tensorrt(no_tensorrt, tmp_path):
    with pytest.raises(ModelError, match="needs a TensorRT engine built on this device: TensorRT is not installed"):
        Store(str(tmp_path / "state")).install(trt_bundle(tmp_path))


# --- converter ----------------------------------------------------------------------------------------------

def qdq_bundle(tmp_path) -> str:
    """tiny_bundle with QuantizeLinear/DequantizeLinear on its input, as an int8 QDQ export has."""
    bundle = tiny_bundle(tmp_path / "qdq", "q")
    path = os.path.join(bundle, "q.onnx")
    model = onnx.load(path)
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array(1 / 255, np.float32), "s"),
                              numpy_helper.from_array(np.array(0, np.uint8), "z")])
    graph.node[0].input[0] = "images_dq"
    graph.node.insert(0, helper.make_node("DequantizeLinear", ["images_q", "s", "z"], ["images_dq"]))
    graph.node.insert(0, helper.make_node("QuantizeLinear", ["images", "s", "z"], ["images_q"]))
    onnx.save(model, path)
    from edge.bundle import write_bundle
    return write_bundle(bundle, path, Detector.load(path).contract)


def test_convert_without_tensorrt_writes_the_bundle_and_defers_the_engine(no_tensorrt, tmp_path, caplog):
    out = str(tmp_path / "out" / "trt")
    with caplog.at_level(logging.INFO, logger="edge-convert"):
        assert build_tensorrt_bundle(tiny_bundle(tmp_path, "a"), "fp16", out) == out
    written = read_bundle(out)
    assert (written.target, written.precision, written.manifest.model.format) == ("tensorrt-fp16", "fp16", "onnx")
    assert sorted(os.listdir(out)) == ["a.onnx", MANIFEST] and "built on the device" in caplog.text
    int8 = build_tensorrt_bundle(qdq_bundle(tmp_path), "int8", str(tmp_path / "int8"))  # QDQ needs no --calib
    assert read_bundle(int8).target == "tensorrt-int8"


def test_convert_int8_from_fp32_needs_calibration_and_tensorrt(no_tensorrt, tmp_path):
    source = tiny_bundle(tmp_path, "a")
    with pytest.raises(ConvertError, match="--calib"):
        build_tensorrt_bundle(source, "int8", str(tmp_path / "out"))
    with pytest.raises(ConvertError, match="runs inside TensorRT"):
        build_tensorrt_bundle(source, "int8", str(tmp_path / "out"), calibration=np.zeros((4, 3, 640, 640), np.float32))
    with pytest.raises(ConvertError, match="expected one of fp16, int8"):
        build_tensorrt_bundle(source, "fp32", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_convert_with_tensorrt_calibrates_and_the_store_keeps_the_cache(fakes, tmp_path):
    trt, _ = fakes
    out = build_tensorrt_bundle(tiny_bundle(tmp_path, "a"), "int8", str(tmp_path / "trt"),
                                calibration=np.zeros((2, 3, 640, 640), np.float32))
    cache = read_bundle(out).manifest.tensorrt.calibration_cache
    assert cache.sha256 == sha256_file(os.path.join(out, cache.file))
    assert os.listdir(os.path.join(out, ENGINES)) and trt.builds == 1
    version = Store(str(tmp_path / "state")).install(out).version
    installed = tmp_path / "state" / "models" / version
    assert (installed / "calibration.cache").is_file() and trt.builds == 1  # the converted engine fits this "device"


# --- real TensorRT on a GPU ---------------------------------------------------------------------------------

@pytest.mark.hardware
def test_real_fp16_engine_builds_and_matches_onnxruntime(tmp_path):
    pytest.importorskip("tensorrt")
    pytest.importorskip("pycuda.driver")
    out = build_tensorrt_bundle(tiny_bundle(tmp_path, "a"), "fp16", str(tmp_path / "trt"))
    engine = find_engine(read_bundle(out))
    with open(engine, "rb") as f:
        assert b"{" not in f.read(5)  # a plain engine: no Ultralytics-style JSON header
    trt_detector, ort_detector = Detector.load(out), Detector.load(out, backend="onnxruntime")
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    got, want = trt_detector(frame), ort_detector(frame)
    assert trt_detector.backend.name == "tensorrt" and len(got) == len(want) == 1
    np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.5)
    trt_detector.backend.close()
