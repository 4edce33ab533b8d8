"""ONNX int8 (QDQ) by onnxruntime static quantization, with sensitivity-guided partial quantization.

Weights are int8 per-channel symmetric, activations uint8 calibrated on the user's images. The decode at the
end of the graph (DFL softmax and integral, sigmoid, anchor arithmetic, concat) always stays float: pixel
boxes and 0..1 scores cannot share int8 scales. When the quantized model loses more than `max_drop`
mAP50-95, the layers whose quantization hurts the output most are kept in float, most sensitive first, which
is the automatic form of DAMO-YOLO's hand-picked partial quantization.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from edge.progress import Progress

from . import INSTALL_HINT, ConvertError
from .calibration import evenly

log = logging.getLogger("edge-convert")

METHODS = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = "minmax"  # best of the three on YOLO11n/COCO here (README, Converter accuracy)
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
PROBE_IMAGES = 8  # calibration images the per-layer sensitivity is measured on


def _onnx_modules():
    try:
        import onnx
        from onnxruntime import quantization
    except ImportError as e:
        raise ConvertError(f"onnx-int8 needs onnx and onnxruntime's quantization tools: {INSTALL_HINT}") from e
    if "calibration_cache_path" not in inspect.signature(quantization.quantize_static).parameters:
        raise ConvertError("onnx-int8 needs onnxruntime >= 1.32 (calibration cache): pip install -U 'edge[convert]'")
    return onnx, quantization


def is_quantized(path: str) -> bool:
    """True for an ONNX file that already has QuantizeLinear/DequantizeLinear nodes."""
    try:
        import onnx
    except ImportError as e:
        raise ConvertError(f"reading the ONNX graph needs the onnx package: {INSTALL_HINT}") from e
    model = onnx.load(path, load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _learned(model) -> Callable:
    """A predicate: is this node a learned layer (weighted op with more than one output channel)?"""
    weights = {init.name: init for init in model.graph.initializer}

    def learned(node) -> bool:
        if node.op_type not in WEIGHTED_OPS:
            return False
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        if w is None:
            return True  # activation x activation (attention MatMul): part of the features
        if len(w.dims) < 2:
            return False  # a vector projection (DAMO-YOLO's integral) collapses the bins: decode
        out_channels = w.dims[-1] if node.op_type in ("MatMul", "Gemm") else w.dims[0]
        return out_channels > 1

    return learned


def decode_tail(model) -> list:
    """Nodes that only decode the head's predictions: no learned layer is fed by them, so they stay float.

    A projection with a single output channel (the fixed DFL/integral weights 0..reg_max) is decode too.
    """
    learned = _learned(model)
    consumers: dict = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    feeds_learned: dict = {}
    for node in reversed(model.graph.node):  # ONNX stores nodes topologically sorted
        feeds_learned[node.name] = any(learned(c) or feeds_learned.get(c.name, False)
                                       for out in node.output for c in consumers.get(out, []))
    return [n.name for n in model.graph.node if not learned(n) and not feeds_learned[n.name]]


def layer_groups(model, tail: Sequence[str]) -> dict:
    """Learned layer -> the nodes that stay float with it: itself and the ops after it up to the next layer.

    Keeping only a Conv float would still quantize its activation and residual add; the group is the unit
    the sensitivity search measures and keeps. Nodes before the first layer belong to no group.
    """
    learned, skip = _learned(model), set(tail)
    producer_group: dict = {}
    groups: dict = {}
    for node in model.graph.node:
        if node.name in skip:
            continue
        if learned(node):
            group = node.name
        else:
            group = next((producer_group[i] for i in node.input if i in producer_group), None)
        if group is None:
            continue
        groups.setdefault(group, []).append(node.name)
        for out in node.output:
            producer_group[out] = group
    return groups


@dataclass
class SearchResult:
    """What the partial-quantization search kept in float and what each step scored."""

    keep_float: list
    score: float
    baseline: float
    within: bool
    trials: list = field(default_factory=list)  # (number kept in float, score)
    sensitivity: list = field(default_factory=list)  # (layer, output error when only it is quantized), worst first


class OnnxInt8Quantizer:
    """Calibrates once (ranges cached in `workdir`), then writes QDQ models with any set of layers left float."""

    def __init__(self, fp32_path: str, calibration: np.ndarray, workdir: str, method: str = DEFAULT_METHOD):
        onnx, self._q = _onnx_modules()
        if method not in METHODS:
            raise ConvertError(f"--calib-method {method!r}: expected one of {', '.join(METHODS)}")
        self.fp32_path = fp32_path
        self.method = method
        model = onnx.load(fp32_path)
        self.input_name = model.graph.input[0].name
        self.tail = decode_tail(model)
        self.groups = layer_groups(model, self.tail)
        self.layers = list(self.groups)
        self.calibration = calibration
        self._cache = os.path.join(workdir, f"ranges-{method}.json")

    def quantize(self, out_path: str, keep_float: Sequence[str] = (), only: Optional[Sequence[str]] = None) -> str:
        """Write a QDQ model: every layer group but the decode tail and `keep_float` (or just `only`) quantized."""
        with _quiet_onnxruntime():
            self._quantize(out_path, keep_float, only)
        return out_path

    def _quantize(self, out_path: str, keep_float: Sequence[str], only: Optional[Sequence[str]]) -> None:
        q = self._q
        methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
                   "percentile": q.CalibrationMethod.Percentile}
        # Only the first model calibrates (later ones read the cached ranges): only it shows progress.
        progress = None if os.path.exists(self._cache) else Progress("calibration ranges", len(self.calibration))
        try:
            q.quantize_static(
                self.fp32_path, out_path, _Reader(self.calibration, self.input_name, q.CalibrationDataReader, progress),
                quant_format=q.QuantFormat.QDQ, per_channel=True,
                activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                nodes_to_quantize=[n for layer in only for n in self.groups[layer]] if only is not None else None,
                nodes_to_exclude=list(self.tail) + [n for layer in keep_float for n in self.groups[layer]],
                calibrate_method=methods[self.method],
                # Collect in chunks: histogram calibrators otherwise hold every intermediate tensor of every image
                # (112 images at 640 exhausted 24 GB here). ORT requires the chunk to divide the image count.
                # A Conv's output is quantized only where its consumer is: the head's last convs feed the float
                # decode directly (YOLO11n/COCO: 42.46 -> 42.76 mAP50-95 with this).
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                               "OpTypesToExcludeOutputQuantization": ["Conv"],
                               "CalibStridedMinMax": _chunk(len(self.calibration))},
                calibration_cache_path=self._cache)
        finally:
            if progress is not None:
                progress.close()


@contextlib.contextmanager
def _quiet_onnxruntime():
    """Silence the quantizer's advice through the root logger ("consider pre-processing"), once per model."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _Reader(tensors: np.ndarray, input_name: str, base, progress: Optional[Progress] = None):
    """A CalibrationDataReader over pre-processed tensors, one image per batch, counting them on `progress`."""

    class Reader(base):
        def __init__(self):
            self.index, self.end = 0, len(tensors)

        def get_next(self):
            if self.index >= self.end:
                return None
            self.index += 1
            if progress is not None:
                progress.update()
            return {input_name: tensors[self.index - 1:self.index]}

        def __len__(self):
            return len(tensors)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.index, self.end = start_index, end_index

    return Reader()


def _chunk(count: int, largest: int = 8) -> int:
    """The largest chunk size up to `largest` that divides `count`."""
    return max(k for k in range(1, largest + 1) if count % k == 0)


def output_error(reference: list, candidate: list) -> float:
    """Mean per-channel normalized squared error over all outputs (channels: each output's smallest axis)."""
    errors = []
    for ref, got in zip(reference, candidate):
        axis = 1 + int(np.argmin(ref.shape[1:]))
        ref, got = (np.moveaxis(a.astype(np.float64), axis, -1).reshape(-1, a.shape[axis]) for a in (ref, got))
        errors.append(np.mean(((got - ref) ** 2).mean(axis=0) / (ref.var(axis=0) + 1e-9)))
    return float(np.mean(errors))


def run_outputs(path: str, tensors: np.ndarray) -> list:
    """All outputs of an ONNX model for each tensor, stacked per output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    runs = [session.run(None, {name: t[None]}) for t in tensors]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]


def layer_sensitivity(quantizer: OnnxInt8Quantizer, workdir: str, probe: np.ndarray) -> list:
    """(layer, output error) with only that layer quantized, most sensitive first."""
    reference = run_outputs(quantizer.fp32_path, probe)
    path = os.path.join(workdir, "single-layer.onnx")
    scores = []
    with Progress("layer sensitivity", len(quantizer.layers)) as progress:
        for layer in quantizer.layers:
            quantizer.quantize(path, only=[layer])
            scores.append((layer, output_error(reference, run_outputs(path, probe))))
            progress.update()
    return sorted(scores, key=lambda item: -item[1])


def search_partial(quantizer: OnnxInt8Quantizer, out_path: str, score: Callable[[str], float], baseline: float,
                   max_drop: float, workdir: str) -> SearchResult:
    """Quantize everything; while the drop exceeds max_drop keep the 1, 2, 4, ... most sensitive layers float."""
    quantizer.quantize(out_path)
    full = score(out_path)
    result = SearchResult([], full, baseline, baseline - full <= max_drop, trials=[(0, full)])
    log.info("int8 (all layers): %.2f vs fp32 %.2f", full, baseline)
    if result.within:
        return result
    probe = quantizer.calibration[evenly(len(quantizer.calibration), PROBE_IMAGES)]
    result.sensitivity = layer_sensitivity(quantizer, workdir, probe)
    ranked = [layer for layer, _ in result.sensitivity]
    trial = os.path.join(workdir, "trial.onnx")
    count = 1
    while True:
        count = min(count, len(ranked))
        quantizer.quantize(trial, keep_float=ranked[:count])
        value = score(trial)
        result.trials.append((count, value))
        log.info("int8 with %d layer(s) in float: %.2f vs fp32 %.2f", count, value, baseline)
        if value > result.score:
            os.replace(trial, out_path)
            result.keep_float, result.score = ranked[:count], value
        if baseline - value <= max_drop or count == len(ranked):
            break
        count *= 2
    result.within = baseline - result.score <= max_drop
    return result
