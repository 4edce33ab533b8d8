"""Decode formats and backends come from registries: a toy of each (tests/toys/) runs a bundle end to end."""
import importlib
import subprocess
import sys

import numpy as np
import pytest

from edge import ContractError, Detector, ModelError
from edge.backends import BACKENDS, Backend, TensorInfo, backend_for, open_backend, register_backend
from edge.bundle import read_bundle, write_bundle
from edge.contract import Contract, DecodeSpec, OutputSpec, family_input
from edge.decode import FORMATS, DecodeFormat, decode_format, register_format

NAMES = ("a", "b")


@pytest.fixture
def toys():
    """Import the toy format and backend (tests/toys/: one file each, one registration line), then take them out."""
    before_formats, before_backends = dict(FORMATS), dict(BACKENDS)
    names = [f"tests.toys.{name}" for name in ("rows_decode", "npy_backend")]
    yield [importlib.reload(sys.modules[n]) if n in sys.modules else importlib.import_module(n) for n in names]
    for registry, before in ((FORMATS, before_formats), (BACKENDS, before_backends)):
        registry.clear()
        registry.update(before)


def toy_model(path) -> str:
    rows = np.zeros((1, 10, 6), np.float32)
    rows[0, 3] = [8, 8, 40, 24, 0.1, 0.9]
    rows[0, 5] = [10, 10, 20, 20, 0.8, 0.05]
    rows[0, 7] = [0, 0, 5, 5, 0.2, 0.1]  # below conf
    with open(path, "wb") as f:
        np.save(f, rows)
    return str(path)


def toy_contract(fmt: str = "toy-rows") -> Contract:
    return Contract("yolo11", family_input("yolo11", "images", 64, 64, "NCHW", "float32"),
                    (OutputSpec("rows", (1, 10, 6)),), DecodeSpec(fmt), NAMES)


def test_toy_format_and_backend_run_a_bundle_end_to_end(toys, tmp_path):
    bundle = write_bundle(str(tmp_path / "bundle"), toy_model(tmp_path / "m.toy"), toy_contract())
    assert read_bundle(bundle).manifest.decode.format == "toy-rows"  # the manifest accepts a registered format
    detector = Detector.load(bundle, threads=2, conf=0.5)
    assert detector.backend.name == "toy" and detector.backend.threads == 2
    detections = detector(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(detections.xyxy, [[8, 8, 40, 24], [10, 10, 20, 20]])
    np.testing.assert_allclose(detections.scores, [0.9, 0.8])
    assert detections.names == ["b", "a"]


def test_toy_format_shape_check_guards_the_model(toys, tmp_path):
    contract = toy_contract().with_names(("a", "b", "c"))  # 4+3 values per row; the model has 6
    with pytest.raises(ContractError, match=r"decoder toy-rows with 3 class names .* needs \[1, N, 4\+nc\]"):
        Detector(toys[1].NpyBackend(toy_model(tmp_path / "m.toy")), contract)


def test_unregistered_format_and_backend_are_refused(tmp_path):
    model = toy_model(tmp_path / "m.toy")
    with pytest.raises(ContractError, match="decode.format: must be yolo11, .*got 'toy-rows'"):
        write_bundle(str(tmp_path / "bundle"), model, toy_contract())
    with pytest.raises(ModelError, match=r"unsupported model file type '\.toy'; expected \.onnx, .* or \.plan"):
        backend_for(model)
    with pytest.raises(ModelError, match="unknown backend 'toy'; expected one of onnxruntime, tflite, tensorrt"):
        open_backend(model, "toy")


def test_a_name_or_extension_registers_once(toys):
    rows, npy = toys
    with pytest.raises(ValueError, match="already registered"):
        register_format(DecodeFormat("toy-rows", "yolo11", 1, "", rows.fits, rows.decode))
    with pytest.raises(ValueError, match="already registered"):
        register_backend("other", (".TOY",), npy.NpyBackend)
    with pytest.raises(ValueError, match="unknown option"):
        register_backend("other", (".other",), npy.NpyBackend, ("device",))


# ------------------------------------------------------------------------------------------- the built-in entries
def test_builtin_backends_by_extension():
    assert [backend_for(f"m{ext}") for ext in (".onnx", ".TFLITE", ".engine", ".plan")] == \
        ["onnxruntime", "tflite", "tensorrt", "tensorrt"]


def test_backend_modules_load_only_when_a_model_is_opened():
    code = "import sys, edge; print(sorted(m for m in ('edge.backends.onnxruntime', 'edge.backends.tflite') " \
           "if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("fmt, reg_max, bins", [("yolo11-dfl", 16, 16), ("damo-yolo-dfl", 16, 17),
                                                ("damo-yolo-head", 7, 8)])
def test_reg_max_counts_what_the_format_says(fmt, reg_max, bins):
    entry = decode_format(fmt)
    assert DecodeSpec(fmt, reg_max=reg_max).dfl_bins == entry.bins(reg_max) == bins
    assert entry.reg_max_for(bins) == reg_max


class SplitHead(Backend):
    """DAMO-YOLO's split DFL outputs: scores [1, N, nc] then box logits [1, N, 4*bins] for a 64x64 input."""

    name = "split"

    def __init__(self, bins: int, nc: int = 2, n: int = 84):
        self.inputs = [TensorInfo("images", (1, 64, 64, 3), "float32")]
        self.outputs = [TensorInfo("scores", (1, n, nc), "float32"),
                        TensorInfo("box_logits", (1, n, 4 * bins), "float32")]
        self.metadata = {}

    def run(self, tensor: np.ndarray) -> list:
        scores = np.zeros(self.outputs[0].shape, np.float32)
        scores[0, 0, 1] = 0.9  # anchor 0: the top-left cell of stride 8, class 1
        return [scores, np.zeros(self.outputs[1].shape, np.float32)]


def damo_dfl_contract(fmt: str = "damo-yolo-dfl", reg_max: int = 16) -> Contract:
    return Contract("damo-yolo", family_input("damo-yolo", "images", 64, 64, "NHWC", "float32"), (),
                    DecodeSpec(fmt, reg_max=reg_max), NAMES)


@pytest.mark.parametrize("reg_max, fits", [(16, True), (17, False), (15, False)])
def test_damo_dfl_head_of_17_bins_fits_reg_max_16_only(reg_max, fits):
    contract = damo_dfl_contract(reg_max=reg_max)
    if fits:  # equal logits: each side's expected bin is 8 of 0..16, so the box is the anchor -/+ 8 * stride 8
        detections = Detector(SplitHead(bins=17), contract, clip=False)(np.zeros((64, 64, 3), np.uint8))
        np.testing.assert_allclose(detections.xyxy, [[-64, -64, 64, 64]], atol=1e-4)
        assert detections.names == ["b"]
    else:
        with pytest.raises(ContractError, match="decoder damo-yolo-dfl with 2 class names does not fit"):
            Detector(SplitHead(bins=17), contract)


def test_unknown_format_in_a_contract_is_a_contract_error():
    with pytest.raises(ContractError, match="unknown decode format 'ssd'"):
        Detector(SplitHead(bins=17), damo_dfl_contract("ssd"))
