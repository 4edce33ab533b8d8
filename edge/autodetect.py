"""Infer the contract of a raw model file: Ultralytics ONNX/TFLite metadata or the DAMO-YOLO ONNX contract."""
from __future__ import annotations

import ast
import json
import zipfile
import zlib
from dataclasses import replace
from typing import Optional

from .backends.base import Backend
from .bundle import ModelMetadata
from .contract import FAMILIES, Contract, DecodeSpec, OutputSpec, family_defaults, family_input
from .decode.registry import decode_format
from .errors import ContractError, FamilyMismatch
from .names import COCO80, names_from_mapping


def ultralytics_metadata(path: str, backend: Backend) -> dict:
    """Ultralytics' export metadata: ONNX metadata_props (Python-literal strings) or the zip appended to a TFLite."""
    if backend.metadata:
        meta = {}
        for key, value in backend.metadata.items():
            try:
                meta[key] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                meta[key] = value
        return meta
    if str(path).lower().endswith(".tflite"):
        return _tflite_appended_metadata(path)
    return {}


def _tflite_appended_metadata(path: str) -> dict:
    """metadata.json (Ultralytics 8.3.2xx) or temp_meta.txt (older) in a zip appended to the flatbuffer."""
    if not zipfile.is_zipfile(path):
        return {}  # no archive appended (not an Ultralytics export): the caller needs --family/--names
    try:
        with zipfile.ZipFile(path) as archive:
            for member in ("metadata.json", "temp_meta.txt"):
                if member in archive.namelist():
                    if archive.getinfo(member).file_size > 1 << 20:
                        raise ContractError(f"{path}: appended {member} is implausibly large")
                    text = archive.read(member).decode("utf-8")
                    try:
                        meta = json.loads(text)
                    except json.JSONDecodeError:
                        meta = ast.literal_eval(text)
                    if not isinstance(meta, dict):
                        raise ContractError(f"{path}: appended {member} is not a key/value object")
                    return meta
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, UnicodeDecodeError, ValueError, TypeError, SyntaxError,
            NotImplementedError, RecursionError, MemoryError) as e:
        if isinstance(e, ContractError):
            raise
        raise ContractError(f"{path}: the metadata appended to this TFLite file is corrupt ({type(e).__name__}); "
                            "re-export it or pass --family and --names") from None
    return {}


def infer_contract(path: str, backend: Backend, family: Optional[str] = None,
                   names: Optional[tuple] = None) -> Contract:
    """Work out family, pixel convention, decoder and class names from the file and its tensors."""
    if len(backend.inputs) != 1:
        raise ContractError(f"{path}: expected one input tensor, the model has {len(backend.inputs)}")
    if family is not None and family not in FAMILIES:
        raise ContractError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    try:
        meta = ultralytics_metadata(path, backend)
    except ContractError:
        if family is None or names is None:
            raise
        meta = {}  # corrupt metadata, but the caller supplied everything it would have told us
    if meta.get("task") not in (None, "detect"):
        raise ContractError(f"{path}: task {meta.get('task')!r} is not supported; only detection models run here")
    outputs = tuple(OutputSpec(o.name, o.shape, o.dtype, o.quant_scale, o.quant_zero_point) for o in backend.outputs)
    evidence = _family_evidence(meta, outputs)
    if evidence is not None and family not in (None, evidence[0]):
        raise FamilyMismatch(family, evidence[0], path, evidence[1])
    if family is None:
        if evidence is None:
            raise ContractError(f"{path}: no Ultralytics metadata and not the DAMO-YOLO output contract; "
                                f"pass --family {'|'.join(FAMILIES)}")
        family = evidence[0]
    height, width, layout = _input_geometry(path, backend.inputs[0].shape, meta)
    i = backend.inputs[0]
    if i.dtype not in ("float32", "float16", "uint8", "int8"):
        raise ContractError(f"{path}: input dtype {i.dtype} is not supported")
    inp = replace(family_input(family, i.name, height, width, layout, i.dtype, i.quant_scale, i.quant_zero_point),
                  **_batch(i.shape[0]))
    decode, num_classes = _decode_spec(path, family, meta, outputs)
    if names is None and "names" in meta:
        names = names_from_mapping(meta["names"])
    if names is None and num_classes == 80:
        names = COCO80  # both families' official models are COCO-80 in this order
    if names is None:
        raise ContractError(f"{path}: cannot tell the {num_classes} class names; pass --names FILE (one per line)")
    names = tuple(names)
    if num_classes is not None and len(names) != num_classes:
        raise ContractError(f"{path}: the model has {num_classes} classes but {len(names)} names were given")
    integer_io = any(o.quant_scale for o in outputs) or i.quant_scale
    precision = "int8" if integer_io else backend.precision or ""  # the weights, not the input dtype
    return Contract(family=family, input=inp, outputs=outputs, decode=decode, names=names,
                    postprocess=family_defaults(family, max(height, width)),
                    target=backend.name, precision=precision,
                    metadata=ModelMetadata.of(meta).to_dict())


def _family_evidence(meta: dict, outputs: tuple) -> Optional[tuple]:
    """(family, what says so) when the file's metadata or its outputs identify the family, else None."""
    if "names" in meta and ("Ultralytics" in str(meta.get("author", "")) or "stride" in meta):
        return "yolo11", "Ultralytics metadata"
    shapes = [o.shape for o in outputs]
    if (len(shapes) == 2 and len(shapes[0]) == 3 and len(shapes[1]) == 3 and shapes[1][-1] == 4
            and shapes[0][1] == shapes[1][1]):
        return "damo-yolo", "outputs"  # SPEC §4.2: scores [1,N,C] then xyxy boxes [1,N,4]
    if len(shapes) == 6 and all(len(s) == 4 for s in shapes):
        return "damo-yolo", "outputs"  # SPEC §4.3: three class maps then three regression maps
    return None


def _input_geometry(path: str, shape: tuple, meta: dict) -> tuple:
    if len(shape) != 4:
        raise ContractError(f"{path}: input must be 4-D image batch, got shape {shape}")
    if shape[1] == 3:
        layout, height, width = "NCHW", shape[2], shape[3]
    elif shape[3] == 3:
        layout, height, width = "NHWC", shape[1], shape[2]
    else:
        raise ContractError(f"{path}: input shape {shape} has no 3-channel axis")
    if height <= 0 or width <= 0:  # dynamic axes: take the export size from the metadata
        imgsz = meta.get("imgsz")
        if not (isinstance(imgsz, (list, tuple)) and len(imgsz) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192 for v in imgsz)):
            raise ContractError(f"{path}: input size is dynamic and the file records no valid imgsz; "
                                "re-export with a fixed size")
        height, width = int(imgsz[0]), int(imgsz[1])
    return height, width, layout


def _batch(size: int) -> dict:
    """The input's batch axis: a fixed size, or dynamic (no limit known without a manifest)."""
    return {"batch": size, "dynamic_batch": False} if size > 0 else {"batch": 0, "dynamic_batch": True}


def _decode_spec(path: str, family: str, meta: dict, outputs: tuple) -> tuple:
    """(DecodeSpec, number of classes or None) for the output tensors."""
    if family == "yolo11":
        if len(outputs) != 1:
            raise ContractError(f"{path}: a YOLO11 detect model has one output, this one has {len(outputs)}")
        shape = outputs[0].shape
        normalized = str(path).lower().endswith(".tflite")  # onnx2tf TFLite exports boxes divided by the input size
        if len(shape) == 3 and shape[-1] == 6 and shape[1] > 6:  # [1, max_det, 6]: NMS ran inside the graph
            return DecodeSpec("yolo11-end2end", normalized), None
        if len(shape) != 3:
            raise ContractError(f"{path}: YOLO11 output must be [1, 4+nc, N], got {shape}")
        names = meta.get("names")
        nc = len(names) if isinstance(names, (dict, list, tuple)) and names else None
        if nc is None:  # the smaller axis is 4+nc (N is thousands of anchors)
            nc = min(shape[1], shape[2]) - 4
        if 4 + nc not in shape[1:]:
            raise ContractError(f"{path}: output {shape} does not hold 4+{nc} values per anchor")
        return DecodeSpec("yolo11", normalized), nc
    if len(outputs) == 2:
        scores, boxes = outputs[0].shape, outputs[1].shape
        if len(scores) != 3 or len(boxes) != 3 or boxes[-1] != 4 or scores[1] != boxes[1]:
            raise ContractError(f"{path}: DAMO-YOLO outputs must be scores [1,N,C] and boxes [1,N,4], "
                                f"got {scores} and {boxes}")
        return DecodeSpec("damo-yolo"), scores[2]
    if len(outputs) == 6:
        nc = outputs[0].shape[1]
        bins = outputs[3].shape[1] // 4  # a regression map holds 4 sides x bins channels
        return DecodeSpec("damo-yolo-head", reg_max=decode_format("damo-yolo-head").reg_max_for(bins)), nc
    raise ContractError(f"{path}: DAMO-YOLO models have 2 outputs (scores, boxes) or 6 (raw head), "
                        f"this one has {len(outputs)}")
