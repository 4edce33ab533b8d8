"""Model bundles: a directory with manifest.json (schema edge/schema/manifest.schema.json) and the model file."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from typing import Optional

from .contract import (DECODERS, DFL_FORMATS, DTYPES, FAMILIES, LAYOUTS, RESIZES, Contract, DecodeSpec,
                       InputSpec, OutputSpec, PostprocessDefaults)
from .errors import ContractError, ModelError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def sha256_file(path: str) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_bundle(path: str) -> bool:
    """True for a bundle directory or a manifest.json path."""
    return (os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))) or os.path.basename(path) == MANIFEST


def read_bundle(path: str, verify: bool = True) -> tuple:
    """(model_path, Contract, manifest dict) of a bundle; the model's sha256 is checked when verify is set."""
    manifest_path = path if os.path.basename(path) == MANIFEST else os.path.join(path, MANIFEST)
    root = os.path.dirname(os.path.abspath(manifest_path))
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ModelError(f"{path}: no {MANIFEST} in this directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{manifest_path}: not valid JSON ({e})") from None
    contract = contract_from_manifest(manifest, where=manifest_path)
    model_file = manifest["model"]["file"]
    if model_file in ("", ".", "..") or "/" in model_file or "\\" in model_file:
        raise ModelError(f"{manifest_path}: model.file must be a file name inside the bundle, got {model_file!r}")
    model_path = os.path.join(root, model_file)
    if not os.path.isfile(model_path):
        raise ModelError(f"{manifest_path}: model file {model_file!r} is missing from the bundle")
    expected = manifest["model"].get("sha256")
    if verify and expected and sha256_file(model_path) != expected:
        raise ModelError(f"{model_path}: sha256 does not match the manifest (corrupt or replaced model file)")
    return model_path, contract, manifest


def write_bundle(out_dir: str, model_path: str, contract: Contract, extra: Optional[dict] = None) -> str:
    """Copy the model into `out_dir` and write its manifest; returns the bundle directory."""
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.basename(model_path)
    target = os.path.join(out_dir, name)
    if os.path.abspath(target) != os.path.abspath(model_path):
        shutil.copyfile(model_path, target)
    manifest = manifest_from_contract(contract, name, sha256_file(target))
    manifest.update(extra or {})
    tmp = os.path.join(out_dir, MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, MANIFEST))
    return out_dir


def manifest_from_contract(contract: Contract, model_file: str, sha256: str) -> dict:
    """The manifest dict for a contract (schema_version 1)."""
    fmt = os.path.splitext(model_file)[1].lstrip(".").lower()
    inp = contract.input
    return {
        "schema_version": SCHEMA_VERSION,
        "family": contract.family,
        "task": contract.task,
        "model": {"file": model_file, "format": fmt, "sha256": sha256},
        "target": contract.target or fmt,
        "precision": contract.precision or inp.dtype,
        "input": {
            "name": inp.name, "height": inp.height, "width": inp.width, "layout": inp.layout, "dtype": inp.dtype,
            "quantization": _quant(inp.quant_scale, inp.quant_zero_point), "color": inp.color,
            "pixel_scale": inp.pixel_scale, "resize": inp.resize, "pad_value": inp.pad_value,
        },
        "outputs": [
            {"name": o.name, "shape": list(o.shape), "dtype": o.dtype, "quantization": _quant(o.quant_scale, o.quant_zero_point)}
            for o in contract.outputs
        ],
        "decode": {"format": contract.decode.format, "normalized": contract.decode.normalized,
                   "strides": list(contract.decode.strides), "reg_max": contract.decode.reg_max},
        "postprocess": asdict(contract.postprocess),
        "names": list(contract.names),
        "source": dict(contract.source),
    }


def _quant(scale, zero_point) -> Optional[dict]:
    return {"scale": scale, "zero_point": zero_point} if scale else None


def contract_from_manifest(m: dict, where: str = MANIFEST) -> Contract:
    """Validate a manifest dict and build its Contract; errors name the key and the problem."""
    def need(obj: dict, key: str, kind, path: str, choices=None):
        if not isinstance(obj, dict) or key not in obj:
            raise ContractError(f"{where}: missing key {path}{key}")
        value = obj[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ContractError(f"{where}: {path}{key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
        if choices and value not in choices:
            raise ContractError(f"{where}: {path}{key} is {value!r}; expected one of {', '.join(map(str, choices))}")
        return value

    def optional(obj: dict, key: str, kind, default, path: str):
        return need(obj, key, kind, path) if key in obj else default

    def positive(value: float, path: str) -> float:  # NaN fails the comparison too
        if not 0 < value < float("inf"):
            raise ContractError(f"{where}: {path} must be a positive finite number, got {value!r}")
        return value

    if not isinstance(m, dict):
        raise ContractError(f"{where}: the manifest must be a JSON object")
    version = need(m, "schema_version", int, "")
    if version != SCHEMA_VERSION:
        raise ContractError(f"{where}: schema_version {version} is not supported by this runtime (it reads {SCHEMA_VERSION}); upgrade edge")
    family = need(m, "family", str, "", FAMILIES)
    need(m, "model", dict, "")
    need(m["model"], "file", str, "model.")
    i = need(m, "input", dict, "")
    quant = i.get("quantization")
    if quant is not None and not isinstance(quant, dict):
        raise ContractError(f"{where}: input.quantization must be an object or null")
    inp = InputSpec(
        name=need(i, "name", str, "input."), height=need(i, "height", int, "input."), width=need(i, "width", int, "input."),
        layout=need(i, "layout", str, "input.", LAYOUTS), dtype=need(i, "dtype", str, "input.", DTYPES),
        quant_scale=float(need(quant, "scale", float, "input.quantization.")) if quant else None,
        quant_zero_point=int(need(quant, "zero_point", int, "input.quantization.")) if quant else 0,
        color=need(i, "color", str, "input.", ("RGB", "BGR")), pixel_scale=need(i, "pixel_scale", float, "input."),
        resize=need(i, "resize", str, "input.", RESIZES), pad_value=need(i, "pad_value", int, "input."),
    )
    if not (0 < inp.height <= 8192 and 0 < inp.width <= 8192):
        raise ContractError(f"{where}: input size {inp.height}x{inp.width} is out of range")
    if inp.dtype in ("uint8", "int8") and not inp.quant_scale:
        raise ContractError(f"{where}: input.quantization is required for {inp.dtype} inputs")
    if quant:
        positive(inp.quant_scale, "input.quantization.scale")
    positive(inp.pixel_scale, "input.pixel_scale")
    if not 0 <= inp.pad_value <= 255:
        raise ContractError(f"{where}: input.pad_value must be a pixel value 0..255, got {inp.pad_value}")
    outputs = []
    for k, o in enumerate(need(m, "outputs", list, "")):
        at = f"outputs[{k}]."
        oq = o.get("quantization") if isinstance(o, dict) else None
        if oq is not None and not isinstance(oq, dict):
            raise ContractError(f"{where}: {at}quantization must be an object or null")
        shape = need(o, "shape", list, at)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
            raise ContractError(f"{where}: {at}shape must be a list of integers, got {shape!r}")
        outputs.append(OutputSpec(need(o, "name", str, at), tuple(shape), need(o, "dtype", str, at),
                                  positive(need(oq, "scale", float, at + "quantization."), at + "quantization.scale")
                                  if oq else None,
                                  need(oq, "zero_point", int, at + "quantization.") if oq else 0))
    d = need(m, "decode", dict, "")
    fmt = need(d, "format", str, "decode.", DECODERS)
    strides = optional(d, "strides", list, [8, 16, 32], "decode.")
    if not strides or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in strides) \
            or (fmt == "damo-yolo-head" and len(strides) != 3):
        raise ContractError(f"{where}: decode.strides must be positive integers (three for damo-yolo-head), got {strides!r}")
    if fmt in DFL_FORMATS and any(inp.height % s or inp.width % s for s in strides):
        raise ContractError(f"{where}: decode.strides {strides} must divide the input size {inp.height}x{inp.width}")
    reg_max = optional(d, "reg_max", int, 16, "decode.")
    if reg_max < 1:
        raise ContractError(f"{where}: decode.reg_max must be a positive integer, got {reg_max}")
    decode = DecodeSpec(format=fmt, normalized=optional(d, "normalized", bool, False, "decode."),
                        strides=tuple(strides), reg_max=reg_max)
    names = need(m, "names", list, "")
    if not names or not all(isinstance(n, str) for n in names):
        raise ContractError(f"{where}: names must be a non-empty list of strings")
    p = optional(m, "postprocess", dict, {}, "")
    post = PostprocessDefaults(conf=optional(p, "conf", float, 0.25, "postprocess."),
                               iou=optional(p, "iou", float, 0.7, "postprocess."),
                               max_det=optional(p, "max_det", int, 300, "postprocess."),
                               multi_label=optional(p, "multi_label", bool, False, "postprocess."))
    if not (0 <= post.conf <= 1 and 0 <= post.iou <= 1 and post.max_det > 0):
        raise ContractError(f"{where}: postprocess needs conf and iou in 0..1 and max_det > 0, got {asdict(post)}")
    task = optional(m, "task", str, "detect", "")
    if task != "detect":
        raise ContractError(f"{where}: task {task!r} is not supported; only detection models run here")
    source = m.get("source") or {}
    if not isinstance(source, dict):
        raise ContractError(f"{where}: source must be an object or null")
    return Contract(family=family, input=inp, outputs=tuple(outputs), decode=decode, names=tuple(names),
                    postprocess=post, task=task, target=optional(m, "target", str, "", ""),
                    precision=optional(m, "precision", str, "", ""), source=source)
