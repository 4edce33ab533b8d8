"""Malformed model files, manifests and appended metadata: one clean EdgeError, never another exception,
a native crash or a hang.

Loads that hand arbitrary bytes to onnxruntime or the TFLite interpreter run in a subprocess, so a segfault
fails one test (naming the file) instead of killing pytest. Manifest and metadata fuzzing runs in-process
against a stub backend, so it needs no model file and no ../shared.
"""
import importlib.util
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import edge
import edge.detector
from edge.autodetect import infer_contract
from edge.backends import Backend, TensorInfo
from edge.bundle import MANIFEST, write_bundle
from edge.errors import ContractError, EdgeError, ModelError
from edge.names import COCO80

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------------------------- subprocess loads
LOADER = r"""
import sys
import edge
for path in sys.argv[1:]:
    print("TRY", path, flush=True)
    try:
        edge.Detector.load(path)
    except edge.EdgeError as e:
        print("RESULT", type(e).__name__, flush=True)
    except BaseException as e:
        print("RESULT", "OTHER", type(e).__name__, str(e).replace("\n", " ")[:300], flush=True)
    else:
        print("RESULT", "LOADED", flush=True)
"""


def load_in_subprocess(paths) -> dict:
    """Detector.load each path in one child interpreter; {path: 'ModelError' | 'ContractError' | 'LOADED' | ...}."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run([sys.executable, "-c", LOADER, *map(str, paths)], capture_output=True, text=True,
                              timeout=60, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        tried = [line for line in out.splitlines() if line.startswith("TRY")]
        pytest.fail(f"loading hung (no answer in 60 s); last attempt: {tried[-1] if tried else 'none'}")
    results, current = {}, None
    for line in proc.stdout.splitlines():
        if line.startswith("TRY "):
            current = line[4:]
        elif line.startswith("RESULT ") and current is not None:
            results[current] = line[7:]
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        pytest.fail(f"the loader died ({how}) while loading {current}:\n{proc.stderr[-2000:]}")
    return results


NO_TFLITE = all(importlib.util.find_spec(m) is None for m in ("ai_edge_litert", "tflite_runtime"))


def assert_all_edge_errors(results: dict, paths) -> None:
    """Every file gave ModelError/ContractError (or, for .tflite without a TFLite runtime, BackendUnavailable)."""
    def ok(path, result) -> bool:
        return result in ("ModelError", "ContractError") or (
            NO_TFLITE and str(path).endswith(".tflite") and result == "BackendUnavailable")
    bad = {p: results.get(str(p), "no answer") for p in paths if not ok(p, results.get(str(p)))}
    assert not bad, f"expected a ModelError/ContractError for each file, got: {bad}"


def test_random_bytes_give_model_errors(tmp_path):
    rng = random.Random(1234)
    paths = []
    for k, size in enumerate([0, 1, 7, 8, 64, 4096, 200_000]):
        for ext in (".onnx", ".tflite"):
            path = tmp_path / f"random{k}{ext}"
            path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))
            paths.append(path)
        # the TFL3 identifier in place gets random bytes past the cheap check, into the flatbuffer verifier
        if size >= 8:
            body = bytearray(rng.randrange(256) for _ in range(size))
            body[4:8] = b"TFL3"
            path = tmp_path / f"random{k}_tfl3.tflite"
            path.write_bytes(bytes(body))
            paths.append(path)
    assert_all_edge_errors(load_in_subprocess(paths), paths)


@pytest.mark.needs_shared
def test_truncated_models_give_model_errors(tmp_path, shared_path):
    paths = []
    for name in ("yolo11n.onnx", "yolo11n_int8.tflite"):
        data = shared_path("models", name).read_bytes()
        n = len(data)
        cuts = {0, 1, 8, 16, 100, 4096, n // 10, n // 3, n // 2, n - 100_000, n - 1}
        if name.endswith(".tflite"):  # also cut at, just before and inside the appended metadata zip
            zip_start = data.rfind(b"PK\x03\x04")
            assert zip_start > 0
            cuts |= {zip_start - 1, zip_start, zip_start + 40, n - 22}
        for cut in sorted(cuts):
            path = tmp_path / f"cut{cut}_{name}"
            path.write_bytes(data[:cut])
            paths.append(path)
    assert_all_edge_errors(load_in_subprocess(paths), paths)


# ---------------------------------------------------------------------------------------------- paths
def test_missing_paths_directories_and_unknown_extensions(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        edge.Detector.load(tmp_path / "absent.onnx")
    with pytest.raises(ModelError, match="not a bundle"):
        edge.Detector.load(tmp_path)
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(b"\x80\x02not a model")
    with pytest.raises(ModelError, match="unsupported model file type"):
        edge.Detector.load(weights)


# ---------------------------------------------------------------------------------------------- stub backend
class StubBackend(Backend):
    """A backend with YOLO11n's tensors ([1,3,640,640] in, [1,84,8400] out) and no engine behind it."""

    name = "stub"

    def __init__(self, metadata=None, input_shape=(1, 3, 640, 640), output_shape=(1, 84, 8400)):
        self.inputs = [TensorInfo("images", tuple(input_shape), "float32")]
        self.outputs = [TensorInfo("output0", tuple(output_shape), "float32")]
        self.metadata = dict(metadata or {})
        self.result = np.zeros(output_shape, np.float32)
        self.result[0, :4, 0] = [320, 320, 100, 80]  # one confident person in the middle
        self.result[0, 4, 0] = 0.9

    def run(self, tensor):
        assert tensor.shape == self.inputs[0].shape
        return [self.result.copy()]


ULTRALYTICS_META = {"author": "Ultralytics", "task": "detect", "stride": "32", "imgsz": "[640, 640]",
                    "names": repr(dict(enumerate(COCO80)))}


def stub_contract():
    return infer_contract("yolo11n.onnx", StubBackend(ULTRALYTICS_META))


def make_bundle(root: Path, contract=None, model_bytes=b"stub model bytes") -> Path:
    """A bundle around a dummy model.onnx (open_backend is patched to the stub in these tests)."""
    model = root / "model.onnx"
    model.write_bytes(model_bytes)
    bundle = root / "bundle"
    write_bundle(str(bundle), str(model), contract or stub_contract())
    return bundle


def load_with_stub(path, backend=None, **kwargs):
    with mock.patch.object(edge.detector, "open_backend", lambda *a, **k: backend or StubBackend()):
        return edge.Detector.load(str(path), **kwargs)


def test_stub_bundle_round_trip(tmp_path):
    """Positive control for the manifest tests below: the unmodified bundle loads and detects."""
    bundle = make_bundle(tmp_path)
    detector = load_with_stub(bundle)
    assert detector.contract == stub_contract()  # the file's metadata (here: author) is kept in the manifest
    detections = detector(np.zeros((480, 640, 3), np.uint8))
    assert detections.names == ["person"]


# ---------------------------------------------------------------------------------------------- manifests
def edit_manifest(bundle: Path, edit) -> None:
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _set(keys, value):
    def edit(m):
        for k in keys[:-1]:
            m = m[k]
        m[keys[-1]] = value
    return edit


def _delete(keys):
    def edit(m):
        for k in keys[:-1]:
            m = m[k]
        del m[keys[-1]]
    return edit


MANIFEST_CASES = {
    "missing schema_version": (_delete(["schema_version"]), ContractError, "schema_version"),
    "missing family": (_delete(["family"]), ContractError, "family"),
    "missing model": (_delete(["model"]), ContractError, "model"),
    "missing model.file": (_delete(["model", "file"]), ContractError, "model.file"),
    "missing input": (_delete(["input"]), ContractError, "input"),
    "missing input.height": (_delete(["input", "height"]), ContractError, "input.height"),
    "missing outputs": (_delete(["outputs"]), ContractError, "outputs"),
    "missing decode": (_delete(["decode"]), ContractError, "decode"),
    "missing names": (_delete(["names"]), ContractError, "names"),
    "schema_version 4": (_set(["schema_version"], 4), ContractError, "schema_version 4"),
    "schema_version as text": (_set(["schema_version"], "1"), ContractError,
                               "schema_version: must be an integer, got '1'"),
    "unknown family": (_set(["family"], "yolov5"), ContractError, "family: must be yolo11 or damo-yolo, got 'yolov5'"),
    "unknown decoder": (_set(["decode", "format"], "ssd"), ContractError, "decode.format"),
    "height as text": (_set(["input", "height"], "640"), ContractError, "input.height: must be an integer, got '640'"),
    "height as bool": (_set(["input", "height"], True), ContractError, "input.height: must be an integer, got true"),
    "height out of range": (_set(["input", "height"], 100_000), ContractError,
                            "input.height: must be at most 8192, got 100000"),
    "names empty": (_set(["names"], []), ContractError, "names"),
    "names not strings": (_set(["names"], [1, 2]), ContractError, "names"),
    "pad_value out of range": (_set(["input", "pad_value"], 300), ContractError, "pad_value"),
    "pixel_scale zero": (_set(["input", "pixel_scale"], 0), ContractError, "pixel_scale"),
    "pixel_scale NaN": (_set(["input", "pixel_scale"], float("nan")), ContractError, "pixel_scale"),
    "uint8 input without quantization": (_set(["input", "dtype"], "uint8"), ContractError, "quantization"),
    "input quantization not an object": (_set(["input", "quantization"], [0.1, 0]), ContractError, "quantization"),
    "output quantization not an object": (_set(["outputs", 0, "quantization"], "0.1"), ContractError, "quantization"),
    "output quantization without scale": (_set(["outputs", 0, "quantization"], {"zero_point": 0}), ContractError,
                                          "scale"),
    "output shape with text": (_set(["outputs", 0, "shape"], [1, "84", 8400]), ContractError, "shape"),
    "strides not a list": (_set(["decode", "strides"], 8), ContractError, "strides"),
    "stride of zero": (_set(["decode", "strides"], [8, 0, 32]), ContractError, "strides"),
    "raw DAMO head with two strides": (lambda m: m["decode"].update(format="damo-yolo-head", strides=[8, 16]),
                                       ContractError, "strides"),
    "reg_max as text": (_set(["decode", "reg_max"], "16"), ContractError, "reg_max"),
    "postprocess not an object": (_set(["postprocess"], [0.25]), ContractError, "postprocess"),
    "conf as text": (_set(["postprocess", "conf"], "0.25"), ContractError, "conf"),
    "iou above 1": (_set(["postprocess", "iou"], 7), ContractError, "iou"),
    "segmentation task": (_set(["task"], "segment"), ContractError, "segment"),
    "model.file absolute": (_set(["model", "file"], "/etc/passwd"), ModelError, "inside the bundle"),
    "model.file escaping": (_set(["model", "file"], "../model.onnx"), ModelError, "inside the bundle"),
    "model.file escaping below": (_set(["model", "file"], "sub/../../model.onnx"), ModelError, "inside the bundle"),
    "model.file missing": (_set(["model", "file"], "other.onnx"), ModelError, "missing"),
    "model.file a directory": (_set(["model", "file"], "."), ModelError, "inside the bundle|missing"),
    "sha256 mismatch": (_set(["model", "sha256"], "0" * 64), ModelError, "sha256"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_bad_manifest_gives_a_clean_error(tmp_path, case):
    edit, error, message = MANIFEST_CASES[case]
    bundle = make_bundle(tmp_path)
    edit_manifest(bundle, edit)
    with pytest.raises(error, match=message.replace(".", "\\.")):
        load_with_stub(bundle)


@pytest.mark.parametrize("text", [b"", b"{", b"not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"null", b'"x"'])
def test_manifest_that_is_not_a_json_object(tmp_path, text):
    bundle = make_bundle(tmp_path)
    (bundle / MANIFEST).write_bytes(text)
    with pytest.raises(ModelError, match="JSON"):  # ContractError is a ModelError
        load_with_stub(bundle)


def test_replaced_model_file_fails_the_sha256_check(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / "model.onnx").write_bytes(b"another model")
    with pytest.raises(ModelError, match="sha256"):
        load_with_stub(bundle)
    load_with_stub(bundle, verify=False)  # the check is what failed, nothing else
    load_with_stub(bundle / MANIFEST, verify=False)  # a manifest.json path works as well as the directory


# Values a fuzzer should try: plausible ones of the wrong kind or out of range, and arbitrary JSON.
PLAUSIBLE = st.sampled_from([None, True, False, 0, 1, -1, 3, 255, 256, 640, 8193, 0.5, 1.5, float("nan"),
                             float("inf"), "", "yolo11", "damo-yolo", "yolo11-end2end", "damo-yolo-head", "NCHW",
                             "NHWC", "uint8", "int8", "float16", "RGB", "BGR", "stretch", "../x.onnx", "model.onnx",
                             [], {}, [8, 16, 32], {"scale": 0.1, "zero_point": 0}])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)


def _paths(value, prefix=()):
    """Every (container path, key) inside a JSON value."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    out = []
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


@pytest.fixture(scope="module")
def base_manifest():
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads((make_bundle(Path(tmp)) / MANIFEST).read_text())


@SETTINGS
@given(draw=st.data())
def test_fuzzed_manifest_loads_or_raises_edge_error(base_manifest, draw):
    manifest = json.loads(json.dumps(base_manifest))
    for _ in range(draw.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(manifest)
        if not paths:
            break
        path = draw.draw(st.sampled_from(paths), label="path")
        parent = manifest
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and draw.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw.draw(PLAUSIBLE | JSON, label="value")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        bundle.mkdir()
        (bundle / "model.onnx").write_bytes(b"stub model bytes")
        (bundle / MANIFEST).write_text(json.dumps(manifest))
        try:
            detector = load_with_stub(bundle)
        except EdgeError as e:
            event(type(e).__name__)
            return
        event("loaded")
        detections = detector(np.zeros((48, 64, 3), np.uint8))  # whatever loads must also run
        assert len(detections) <= max(detector.max_det, 0)


@pytest.mark.parametrize("edit", [_set(["names"], list(COCO80[:79])), _set(["decode", "format"], "yolo11-end2end")],
                         ids=["79 names for 80 classes", "end2end decoder for a raw head"])
def test_manifest_disagreeing_with_the_model_outputs_fails_at_load(tmp_path, edit):
    bundle = make_bundle(tmp_path)
    edit_manifest(bundle, edit)
    with pytest.raises(ContractError):
        load_with_stub(bundle)


# ---------------------------------------------------------------------------------------------- metadata
def fake_tflite_with_zip(path: Path, member: str, text) -> Path:
    """A TFL3 header followed by a zip holding `member` (the metadata path only reads the zip)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 56 + buffer.getvalue())
    return path


def check_inferred(contract, backend) -> None:
    """An inferred contract must at least be consistent with the tensors it came from."""
    assert 4 + len(contract.names) in backend.outputs[0].shape[1:]
    assert contract.input.height > 0 and contract.input.width > 0


META_KEYS = st.sampled_from(["names", "task", "author", "stride", "imgsz", "description", "version", "batch"])
META_VALUES = (PLAUSIBLE | JSON | st.sampled_from([["a"] * 80, {str(i): "x" for i in range(80)}, [640, 640],
                                                   [-1, 640], [0, 0], ["640", "640"], [1e9, 1e9], "detect",
                                                   "segment", "Ultralytics"]))
SHAPES = st.sampled_from([(1, 3, 640, 640), (1, 3, -1, -1), (1, 640, 640, 3), (1, -1, -1, 3)])
VALID_META = {"author": "Ultralytics", "task": "detect", "stride": 32, "imgsz": [640, 640],
              "names": {str(i): name for i, name in enumerate(COCO80)}}


@st.composite
def metadata(draw, values=META_VALUES):
    """Ultralytics' metadata with some keys dropped and some replaced or added."""
    meta = {k: v for k, v in VALID_META.items() if not draw(st.booleans())}
    meta.update(draw(st.dictionaries(META_KEYS, values, max_size=3)))
    return meta


@SETTINGS
@given(meta=metadata(), shape=SHAPES, member=st.sampled_from(
    ["metadata.json", "temp_meta.txt"]), as_text=st.booleans(), family=st.sampled_from([None, "yolo11", "damo-yolo"]))
def test_fuzzed_tflite_metadata_infers_or_raises_contract_error(meta, shape, member, as_text, family):
    """JSON (metadata.json) or a Python literal (temp_meta.txt, older Ultralytics) appended in a zip."""
    text = repr(meta) if as_text else json.dumps(meta)
    backend = StubBackend(input_shape=shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = fake_tflite_with_zip(Path(tmp) / "model.tflite", member, text)
        try:
            contract = infer_contract(str(path), backend, family=family)
        except EdgeError as e:
            event(type(e).__name__)
            return
    event("inferred")
    check_inferred(contract, backend)


@SETTINGS
@given(meta=metadata(META_VALUES | st.text(max_size=30)), shape=SHAPES,
       as_text=st.dictionaries(META_KEYS, st.booleans()))
def test_fuzzed_onnx_metadata_props_infer_or_raise_contract_error(meta, shape, as_text):
    """ONNX metadata_props hold Python-literal strings (Ultralytics writes str(value)); some stay plain text."""
    props = {k: v if as_text.get(k) and isinstance(v, str) else repr(v) for k, v in meta.items()}
    backend = StubBackend(metadata=props, input_shape=shape)
    try:
        contract = infer_contract("model.onnx", backend)
    except EdgeError as e:
        event(type(e).__name__)
        return
    event("inferred")
    check_inferred(contract, backend)


@pytest.mark.parametrize("text", ["{", "[1, 2]", "{'names': {[]: 1}}", "(" * 200, "[" * 100_000, "\udcff"],
                         ids=["truncated", "not an object", "unhashable key", "deep nesting", "very deep", "bad utf8"])
def test_unreadable_tflite_metadata_is_a_contract_error(tmp_path, text):
    path = tmp_path / "model.tflite"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", text.encode("utf-8", "surrogateescape"))
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + buffer.getvalue())
    with pytest.raises(ContractError, match="metadata"):
        infer_contract(str(path), StubBackend())


def test_oversized_tflite_metadata_is_refused(tmp_path):
    path = fake_tflite_with_zip(tmp_path / "model.tflite", "metadata.json", " " * (2 << 20))
    with pytest.raises(ContractError, match="implausibly large"):
        infer_contract(str(path), StubBackend())


def test_overflowing_class_id_in_metadata_is_a_contract_error():
    names = "{" + ", ".join(f"{i}: 'class{i}'" for i in range(79)) + ", 1e999: 'last'}"  # 80 names, one id inf
    backend = StubBackend(metadata={"author": "Ultralytics", "names": names})
    with pytest.raises(ContractError):
        infer_contract("model.onnx", backend, family="yolo11")


def test_unknown_family_argument_is_a_contract_error(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"stub")
    with pytest.raises(ContractError, match="unknown family"):
        load_with_stub(model, family="yolov8")


def test_raw_model_with_dynamic_input_and_no_imgsz(tmp_path):
    meta = dict(ULTRALYTICS_META, imgsz="[0, -640]")
    with pytest.raises(ContractError, match="dynamic"):
        infer_contract("model.onnx", StubBackend(meta, input_shape=(1, 3, -1, -1)))
    contract = infer_contract("model.onnx", StubBackend(ULTRALYTICS_META, input_shape=(1, 3, -1, -1)))
    assert (contract.input.height, contract.input.width) == (640, 640)


# ---------------------------------------------------------------------------------------------- real models
def corrupt_zip(data: bytes, where: str) -> bytes:
    """Flip bytes inside the metadata zip appended to a TFLite file; the flatbuffer before it stays intact."""
    start, central, end = data.rfind(b"PK\x03\x04"), data.rfind(b"PK\x01\x02"), data.rfind(b"PK\x05\x06")
    assert 0 < start < central < end
    lo, hi = {"compressed data": (start + 60, start + 120), "local header": (start, start + 30),
              "central directory": (central, central + 46), "end record": (end, end + 22),
              "whole zip": (start, len(data))}[where]
    out = bytearray(data)
    for i in range(lo, hi):
        out[i] ^= 0xA5
    assert out[:start] == data[:start]
    return bytes(out)


@pytest.mark.needs_shared
@pytest.mark.parametrize("where", ["compressed data", "local header", "central directory", "end record", "whole zip"])
def test_tflite_with_corrupt_appended_metadata(tmp_path, shared_path, where):
    path = tmp_path / "yolo11n_int8.tflite"
    path.write_bytes(corrupt_zip(shared_path("models", "yolo11n_int8.tflite").read_bytes(), where))
    with pytest.raises(ContractError, match="metadata"):  # "...metadata...is corrupt" or "no Ultralytics metadata"
        edge.Detector.load(path)
    # The message's advice works: naming the family and the classes loads the intact flatbuffer.
    detector = edge.Detector.load(path, family="yolo11", names=COCO80)
    assert detector.contract.decode.format == "yolo11" and detector.contract.decode.normalized


@pytest.mark.needs_shared
def test_tflite_without_appended_metadata(tmp_path, shared_path):
    data = shared_path("models", "yolo11n_int8.tflite").read_bytes()
    path = tmp_path / "plain.tflite"
    path.write_bytes(data[:data.rfind(b"PK\x03\x04")])
    with pytest.raises(ContractError, match="no Ultralytics metadata"):
        edge.Detector.load(path)
    assert edge.Detector.load(path, family="yolo11").names == COCO80  # 80 classes: COCO names by default


@pytest.fixture(scope="module", params=["yolo11n.onnx", "yolo11n_int8.tflite"])
def real_model(request, shared_path):
    path = shared_path("models", request.param)
    return path, edge.Detector.load(path).contract


@pytest.mark.needs_shared
def test_real_bundle_round_trip(tmp_path, real_model):
    """Positive control: the unmodified bundle of a real model loads and agrees with the raw file."""
    path, contract = real_model
    detector = edge.Detector.load(write_bundle(str(tmp_path / "bundle"), str(path), contract))
    assert detector.contract == contract  # precision, version and the rest of the file's metadata included


def _input(contract, **changes):
    return replace(contract, input=replace(contract.input, **changes))


MISMATCHES = {
    "height": lambda c: _input(c, height=320),
    "width": lambda c: _input(c, width=480),
    "layout": lambda c: _input(c, layout="NHWC" if c.input.layout == "NCHW" else "NCHW"),
    "dtype": lambda c: _input(c, dtype="uint8", quant_scale=1 / 255, quant_zero_point=0),
    "decoder": lambda c: replace(c, decode=replace(c.decode, format="damo-yolo")),
}


@pytest.mark.needs_shared
@pytest.mark.parametrize("field", list(MISMATCHES))
def test_real_bundle_whose_manifest_disagrees_with_the_model(tmp_path, real_model, field):
    path, contract = real_model
    bundle = write_bundle(str(tmp_path / "bundle"), str(path), MISMATCHES[field](contract))
    with pytest.raises(ContractError, match="does not match|needs"):
        edge.Detector.load(bundle)


@pytest.mark.needs_shared
def test_real_bundle_with_a_damaged_model_file(tmp_path, real_model):
    path, contract = real_model
    bundle = Path(write_bundle(str(tmp_path / "bundle"), str(path), contract))
    model = bundle / path.name
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        edge.Detector.load(bundle)


def test_flatbuffer_bounds_check_catches_truncation_before_the_interpreter(shared_path):
    """Older TFLite runtimes (ai-edge-litert 2.1 on Python 3.9) segfault on these; the check must catch them."""
    from edge.backends.tflite import flatbuffer_problem

    data = shared_path("models", "yolo11n_int8.tflite").read_bytes()
    assert flatbuffer_problem(data) is None
    zip_start = data.rfind(b"PK\x03\x04")  # Ultralytics' metadata zip follows the flatbuffer
    for cut in (8, 100, 4096, len(data) // 3, zip_start - 1000):
        assert flatbuffer_problem(data[:cut]), f"cut at {cut} not detected"
    rng = random.Random(7)
    for _ in range(50):
        body = bytearray(rng.randrange(256) for _ in range(4096))
        body[4:8] = b"TFL3"
        assert flatbuffer_problem(bytes(body))
