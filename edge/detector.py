"""Detector: model file or bundle -> backend + preprocess + decode + NMS -> Detections in frame pixels."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from .autodetect import infer_contract
from .backends import Backend, open_backend
from .backends.tensorrt.engines import find_engine, needs_engine
from .bundle import is_bundle, read_bundle
from .contract import THRESHOLD_KEYS, Contract
from .decode import DecodeContext, decode_format, make_anchors
from .decode.quantized import Dequantize
from .detections import Detections
from .errors import ContractError, FamilyMismatch, ModelError
from .nms import non_max_suppression
from .preprocess import BatchPreprocessor, Preprocessor
from .settings import ModelConfig, ThresholdsConfig

LEGACY_PRECISIONS = ("", "float32", "float16", "uint8")  # manifests that recorded the input dtype: ask the file


class Detector:
    """Runs one detection model on BGR frames: `Detector.load(path)(frame) -> Detections`."""

    def __init__(self, backend: Backend, contract: Contract, conf: Optional[float] = None, iou: Optional[float] = None,
                 max_det: Optional[int] = None, multi_label: Optional[bool] = None, agnostic: bool = False,
                 clip: bool = True, model_path: str = "", preset: str = "reference"):
        """Thresholds not given come from the contract's `preset` (Contract.thresholds): reference or deployment."""
        _check_contract(backend, contract, model_path)
        self.backend = backend
        self.contract = contract
        self.model_path = model_path
        defaults, origins = contract.thresholds(preset)
        self.conf = defaults.conf if conf is None else float(conf)
        self.iou = defaults.iou if iou is None else float(iou)
        self.max_det = defaults.max_det if max_det is None else int(max_det)
        self.multi_label = defaults.multi_label if multi_label is None else bool(multi_label)
        given = {"conf": conf, "iou": iou, "max_det": max_det, "multi_label": multi_label}
        self.thresholds_from = {key: "given" if given[key] is not None else origins[key] for key in given}
        self.agnostic = agnostic
        self.clip = clip
        self.names = contract.names
        spec = contract.input
        # Frames one run takes: the model's fixed batch, or the most a dynamic batch axis is declared to take
        # (0: no limit); a fixed batch runs padded to its size, a dynamic one with exactly the frames given.
        self.max_batch = spec.batch
        self.fixed_batch = 0 if spec.dynamic_batch else spec.batch
        self._batches = [BatchPreprocessor(spec, self.fixed_batch or 1)]  # one per slot (overlapped pipelines use 2)
        self._format = decode_format(contract.decode.format)
        self._dequantizers = tuple(Dequantize(o.quant_scale, o.quant_zero_point) for o in backend.outputs)
        integer = [(d.scale, kind) for d, o in zip(self._dequantizers, backend.outputs)
                   if d.scale and (kind := _integer_kind(o.dtype))]
        # A format that selects on integers takes 8/16-bit ones as they are (positive scales keep their order, and
        # the threshold is found in a table of every value); anything else gets whole outputs dequantized first.
        self._dequantize_whole = bool(integer) and not (
            self._format.quantized and all(scale > 0 and kind.itemsize <= 2 for scale, kind in integer))
        dtypes = {o.dtype for o in backend.outputs}
        best_dtype = dtypes.pop() if len(dtypes) == 1 and not self._dequantize_whole else "float32"
        self._best_scores = np.empty(max(0, *backend.outputs[0].shape[1:]), best_dtype)
        self._anchors = (make_anchors(contract.input.height, contract.input.width, contract.decode.strides,
                                      self._format.anchors) if self._format.anchors is not None else None)
        self.timing_ms = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}

    @classmethod
    def load(cls, path: str, *, family: Optional[str] = None, names: Optional[Sequence[str]] = None,
             backend: Optional[str] = None, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None,
             spin: Optional[bool] = None, verify: bool = True, **thresholds) -> "Detector":
        """Open a bundle directory, a manifest.json, or a raw .onnx/.tflite/.engine file (contract inferred);
        `thresholds`: conf, iou, max_det, multi_label, agnostic, clip, and preset (see __init__).

        A TensorRT bundle runs the engine cached for this device (edge/backends/tensorrt/engines.py);
        backend="onnxruntime" runs its ONNX.
        """
        path = str(path)
        if not os.path.exists(path):
            raise ModelError(f"{path}: no such file or directory")
        options = {"providers": providers, "threads": threads, "spin": spin}  # each backend takes those it knows
        if is_bundle(path):
            bundle = read_bundle(path, verify=verify)
            model_path, contract = bundle.model_path, bundle.contract
            if family not in (None, contract.family):
                raise FamilyMismatch(family, contract.family, path, "manifest")
            if names is not None:
                contract = contract.with_names(names)
            if needs_engine(bundle.manifest) and backend in (None, "tensorrt"):  # backend="onnxruntime" runs the ONNX
                model_path, backend = find_engine(bundle, verify=verify), "tensorrt"
            engine = open_backend(model_path, backend, **options)
            if contract.precision in LEGACY_PRECISIONS and engine.precision:
                contract = replace(contract, precision=engine.precision)
        elif os.path.isdir(path):
            raise ModelError(f"{path}: a directory but not a bundle (no manifest.json)")
        else:
            model_path = path
            engine = open_backend(model_path, backend, **options)
            contract = infer_contract(model_path, engine, family=family, names=tuple(names) if names else None)
        return cls(engine, contract, model_path=model_path, **thresholds)

    def __call__(self, frame: np.ndarray) -> Detections:
        """Detect objects in one BGR uint8 frame; boxes come back in that frame's pixels."""
        t0 = time.perf_counter()
        tensor, transform = self.prepare(frame)
        t1 = time.perf_counter()
        outputs = self.infer(tensor)
        t2 = time.perf_counter()
        detections = self.finish(outputs, transform)
        t3 = time.perf_counter()
        self.timing_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return detections

    def batch(self, frames: Sequence[np.ndarray]) -> list:
        """Detect objects in several frames with one run per `max_batch` of them; one Detections per frame, in
        order, each equal to what `detector(frame)` gives. timing_ms then holds the stages of all the runs."""
        size = self.max_batch or len(frames) or 1
        results: list = []
        timing = dict.fromkeys(self.timing_ms, 0.0)
        for start in range(0, len(frames), size):
            t0 = time.perf_counter()
            tensor, transforms = self.prepare_batch(frames[start:start + size])
            t1 = time.perf_counter()
            outputs = self.infer(tensor)
            t2 = time.perf_counter()
            results += self.finish_batch(outputs, transforms)
            t3 = time.perf_counter()
            for stage, seconds in zip(timing, (t1 - t0, t2 - t1, t3 - t2)):
                timing[stage] += seconds * 1e3
        self.timing_ms = timing
        return results

    @property
    def preprocess(self) -> Preprocessor:
        """The preprocessor of a single frame (slot 0, first image of the batch tensor)."""
        return self._batches[0].preprocessors[0]

    def prepare(self, frame: np.ndarray, slot: int = 0) -> tuple:
        """Stage 1, frame -> (input tensor, transform); each slot has its own tensor, so an overlapped pipeline
        prepares the next frame (slot 1) while the backend still reads this one (slot 0)."""
        tensor, transforms = self.prepare_batch((frame,), slot)
        return tensor, transforms[0]

    def prepare_batch(self, frames: Sequence[np.ndarray], slot: int = 0) -> tuple:
        """Stage 1 of a batch: frames -> (input tensor holding them in order, their transforms). A fixed-batch
        model gets its whole batch tensor (the images past the frames are padding whose results are ignored)."""
        count = len(frames)
        if not 0 < count <= (self.max_batch or count):
            raise ValueError(f"{count} frames for one run of a model that takes 1 to {self.max_batch}")
        while len(self._batches) <= slot:
            self._batches.append(BatchPreprocessor(self.contract.input, self.fixed_batch or 1))
        batch = self._batches[slot]
        if count > batch.size:  # a dynamic batch grows its tensor to the most frames seen
            batch = self._batches[slot] = BatchPreprocessor(self.contract.input, count)
        transforms = batch(frames)
        return (batch.tensor if self.fixed_batch else batch.tensor[:count]), transforms

    def infer(self, tensor: np.ndarray) -> list:
        """Stage 2, the backend run (outputs may be buffers the next run overwrites)."""
        return self.backend.run(tensor)

    def finish(self, outputs: list, transform) -> Detections:
        """Stage 3, decode + NMS: raw outputs -> Detections in the frame's pixels."""
        return self.finish_batch(outputs, (transform,))[0]

    def finish_batch(self, outputs: list, transforms: Sequence) -> list:
        """Stage 3 of a batch: the Detections of image i of the outputs for each transform i (padding ignored)."""
        return [self._finish([o[i:i + 1] for o in outputs], t) for i, t in enumerate(transforms)]

    def _finish(self, outputs: list, transform) -> Detections:
        """Decode + NMS of one image's outputs (batch axis of size 1)."""
        boxes, scores, class_ids = self.candidates(outputs)
        keep = self.select(boxes, scores, class_ids)
        xyxy = transform.boxes_to_frame(boxes[keep], clip=self.clip)
        return Detections.from_arrays(xyxy, scores[keep], class_ids[keep], self.names)

    detect = __call__

    def candidates(self, outputs: list) -> tuple:
        """Raw outputs -> (boxes xyxy in input pixels, scores, class ids) above the confidence threshold."""
        if self._dequantize_whole:
            outputs = [dq.whole(o) for dq, o in zip(self._dequantizers, outputs)]
        decode = self.contract.decode
        size = (self.contract.input.width, self.contract.input.height) if decode.normalized else (1.0, 1.0)
        context = DecodeContext(decode, len(self.names), self.conf, self.multi_label, size, self._anchors,
                                self._best_scores, self._dequantizers)
        return self._format.decode(outputs, context)

    def select(self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        """Indices kept after NMS (end2end models already ran NMS in the graph)."""
        if not self._format.nms:
            order = np.argsort(-scores, kind="stable")
            return order[: self.max_det]
        return non_max_suppression(boxes, scores, class_ids, self.iou, self.max_det, self.agnostic)

    def info(self) -> dict:
        """The resolved contract and runtime settings, JSON-ready."""
        c = self.contract
        return {
            "model": self.model_path,
            "backend": self.backend.name,
            "family": c.family,
            "task": c.task,
            "precision": c.precision,
            "input": {**{k: getattr(c.input, k) for k in c.input.__dataclass_fields__},
                      "shape": list(self.backend.inputs[0].shape)},
            "outputs": [{"name": o.name, "shape": list(o.shape), "dtype": o.dtype,
                         "quantization": {"scale": o.quant_scale, "zero_point": o.quant_zero_point}
                         if o.quant_scale else None}
                        for o in self.backend.outputs],
            "decode": {"format": c.decode.format, "normalized": c.decode.normalized},
            "postprocess": {"conf": self.conf, "iou": self.iou, "max_det": self.max_det,
                            "multi_label": self.multi_label, "agnostic": self.agnostic},
            "thresholds_from": dict(self.thresholds_from),
            "classes": len(c.names),
            "names": list(c.names),
            "metadata": c.metadata,
        }

    def with_thresholds(self, **thresholds) -> "Detector":
        """A detector sharing this one's engine with other thresholds (e.g. eval settings)."""
        settings: dict = dict(conf=self.conf, iou=self.iou, max_det=self.max_det, multi_label=self.multi_label,
                              agnostic=self.agnostic, clip=self.clip)
        settings.update(thresholds)
        detector = Detector(self.backend, self.contract, model_path=self.model_path, **settings)
        detector.thresholds_from = {k: "given" if k in thresholds else v for k, v in self.thresholds_from.items()}
        return detector


def _integer_kind(name: str) -> Optional[np.dtype]:
    """The numpy dtype of an integer tensor type name; None for floats and names numpy does not know."""
    try:
        kind = np.dtype(name)
    except TypeError:
        return None
    return kind if kind.kind in "iu" else None


def _check_contract(backend: Backend, contract: Contract, where: str) -> None:
    """The manifest must describe the tensors the engine really has."""
    spec = contract.input
    actual = backend.inputs[0]
    image = (3, spec.height, spec.width) if spec.layout == "NCHW" else (spec.height, spec.width, 3)
    if spec.dynamic_batch and actual.shape[:1] > (0,):
        raise ContractError(f"{where}: the manifest declares a dynamic batch axis but the model's input is fixed at "
                            f"batch {actual.shape[0]}")
    expected = (-1 if spec.dynamic_batch else spec.batch, *image)
    if any(a != e for a, e in zip(actual.shape, expected) if a > 0) or len(actual.shape) != 4:
        raise ContractError(f"{where}: manifest input {expected} does not match the model's {actual.shape}")
    if actual.dtype != spec.dtype:
        raise ContractError(f"{where}: manifest input dtype {spec.dtype} does not match the model's {actual.dtype}")
    fmt = decode_format(contract.decode.format)
    if len(backend.outputs) != fmt.outputs:
        raise ContractError(f"{where}: decoder {fmt.name} needs {fmt.outputs} outputs, "
                            f"the model has {len(backend.outputs)}")
    shapes = [tuple(o.shape) for o in backend.outputs]
    need = fmt.fits(shapes, contract)
    if need:
        shown = " and ".join(str(list(s)) for s in shapes)
        raise ContractError(f"{where}: decoder {fmt.name} with {len(contract.names)} class names does not fit the "
                            f"model's outputs {shown}; it needs {need}")


def load_detector(model: ModelConfig, thresholds: Optional[ThresholdsConfig] = None,
                  preset: str = "deployment") -> Detector:
    """The Detector the settings describe; the path is resolved (a models/current link names its target).
    Each threshold: the settings' (flag over config), else the bundle manifest's deployment one, else the family's
    deployment default (preset="reference": the family's reference one)."""
    from .names import load_names

    t = thresholds or ThresholdsConfig()
    overrides = {k: getattr(t, k) for k in THRESHOLD_KEYS if getattr(t, k) is not None}
    return Detector.load(os.path.realpath(model.path), family=model.family, backend=model.backend,
                         names=load_names(model.names) if model.names else None, providers=model.providers,
                         threads=model.threads, spin=model.spin, agnostic=t.agnostic, preset=preset, **overrides)


def checked_run(detector: Detector, frame: np.ndarray) -> Detections:
    """One frame's Detections after checking that the raw outputs and the boxes are finite (NaN scores pass the
    threshold test as "nothing found", so a broken model would look merely blind); ModelError otherwise."""
    tensor, _ = detector.prepare(frame)
    for i, output in enumerate(detector.backend.run(tensor)):
        if np.issubdtype(output.dtype, np.floating) and not np.isfinite(output).all():
            raise ModelError(f"self-test: output {i} of the model holds NaN or infinite values")
    result = detector(frame)
    if not (np.isfinite(result.xyxy).all() and np.isfinite(result.scores).all()):
        raise ModelError("self-test: the detector returned non-finite boxes or scores")
    return result
