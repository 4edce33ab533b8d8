"""Model bundles: a directory with manifest.json and the model file, read into one typed `Bundle`.

The manifest is declared once, as the dataclasses below (edge/typed.py validates them and generates the schema).
Regenerate the committed schema: `python -m edge.schema manifest > edge/schema/manifest.schema.json`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import List, Optional

from .contract import (
    DTYPES,
    FAMILIES,
    LAYOUTS,
    RESIZES,
    Contract,
    DecodeSpec,
    DeploymentThresholds,
    InputSpec,
    OutputSpec,
    PostprocessDefaults,
)
from .decode.registry import decode_format
from .errors import ContractError, ModelError
from .schema import schema_path
from .typed import ValidationError, build, schema, spec

# 2 adds `deployment` and `metadata`, 3 the input's `batch` and `dynamic_batch`; a manifest is written with the
# lowest version that holds what it says, so one without them stays readable by older runtimes.
SCHEMA_VERSION = 3
SCHEMA_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"
SCHEMA_PATH = schema_path("manifest")
FILE_NAME = r"(?!\.\.?$)[^/\\]+"  # one path component, not . or ..
SHA256 = r"[0-9a-f]{64}"


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


@dataclass(frozen=True)
class Quantization:
    """Integer tensor quantization: real = (q - zero_point) * scale."""

    scale: float = spec("real value of one integer step", exclusive_minimum=0.0)
    zero_point: int = spec("the integer that stands for 0.0")


@dataclass(frozen=True)
class ModelFile:
    """The model file of the bundle."""

    file: str = spec("file name inside the bundle directory", pattern=FILE_NAME,
                     pattern_hint="be a file name inside the bundle directory")
    format: str = spec("the file's extension (onnx, tflite, engine): the backend that runs it", "")
    sha256: Optional[str] = spec("sha256 of the model file, checked when the bundle is read", None, pattern=SHA256,
                                 pattern_hint="be 64 lowercase hex digits")


@dataclass(frozen=True)
class InputSection:
    """The input tensor and the pixel convention the model was trained with."""

    name: str = spec("input tensor name")
    height: int = spec("input height in pixels", minimum=1, maximum=8192)
    width: int = spec("input width in pixels", minimum=1, maximum=8192)
    layout: str = spec("tensor layout", choices=LAYOUTS)
    dtype: str = spec("tensor element type", choices=DTYPES)
    color: str = spec("channel order", choices=("RGB", "BGR"))
    pixel_scale: float = spec("fed value = pixel (0..255) * pixel_scale, before quantization", exclusive_minimum=0.0)
    resize: str = spec("letterbox: centred, aspect kept (Ultralytics); stretch: to exactly height x width (DAMO-YOLO)",
                       choices=RESIZES)
    pad_value: int = spec("letterbox border value", minimum=0, maximum=255)
    quantization: Optional[Quantization] = spec("integer inputs: how the fed values are quantized", None)
    batch: int = spec("images per inference: the model's fixed batch, or with dynamic_batch the most the runtime "
                      "groups into one run (the TensorRT profile's max; 0: no limit)", 1, minimum=0, maximum=1024)
    dynamic_batch: bool = spec("the batch axis is dynamic: 1 to batch images per run, without padding", False)

    def to_spec(self) -> InputSpec:
        """The runtime InputSpec."""
        q = self.quantization
        return InputSpec(self.name, self.height, self.width, self.layout, self.dtype, q.scale if q else None,
                         q.zero_point if q else 0, self.color, self.pixel_scale, self.resize, self.pad_value,
                         self.batch, self.dynamic_batch)

    @classmethod
    def of(cls, i: InputSpec) -> "InputSection":
        """The manifest section of an InputSpec."""
        return cls(i.name, i.height, i.width, i.layout, i.dtype, i.color, i.pixel_scale, i.resize, i.pad_value,
                   _quantization(i.quant_scale, i.quant_zero_point), i.batch, i.dynamic_batch)


@dataclass(frozen=True)
class OutputSection:
    """One output tensor."""

    name: str = spec("output tensor name")
    shape: List[int] = spec("shape as the model reports it (-1 or 0: dynamic)")
    dtype: str = spec("tensor element type")
    quantization: Optional[Quantization] = spec("integer outputs: how to dequantize them", None)

    def to_spec(self) -> OutputSpec:
        """The runtime OutputSpec."""
        q = self.quantization
        return OutputSpec(self.name, tuple(self.shape), self.dtype, q.scale if q else None, q.zero_point if q else 0)

    @classmethod
    def of(cls, o: OutputSpec) -> "OutputSection":
        """The manifest section of an OutputSpec."""
        return cls(o.name, list(o.shape), o.dtype, _quantization(o.quant_scale, o.quant_zero_point))


@dataclass(frozen=True)
class BundleFile:
    """Another file inside the bundle, pinned by its sha256."""

    file: str = spec("file name inside the bundle directory", pattern=FILE_NAME,
                     pattern_hint="be a file name inside the bundle directory")
    sha256: str = spec("its sha256", pattern=SHA256, pattern_hint="be 64 lowercase hex digits")


@dataclass(frozen=True)
class TensorRTSection:
    """What a TensorRT bundle ships for the engine build on the device (edge/backends/tensorrt/engines.py)."""

    calibration_cache: Optional[BundleFile] = spec("the int8 calibration cache TensorRT wrote when it calibrated",
                                                   None)


@dataclass(frozen=True)
class ModelMetadata:
    """What the model file says about itself (Ultralytics' export metadata), kept when it becomes a bundle."""

    version: Optional[str] = spec("the version it records (Ultralytics: the exporting package's)", None)
    date: Optional[str] = spec("when it was exported", None)
    description: Optional[str] = spec("what it is", None)
    author: Optional[str] = spec("who made it", None)
    license: Optional[str] = spec("its licence", None)

    @classmethod
    def of(cls, metadata: dict) -> "ModelMetadata":
        """These keys of a file's metadata, as text."""
        return cls(**{f.name: str(metadata[f.name]) for f in dataclasses.fields(cls)
                      if metadata.get(f.name) is not None})

    def to_dict(self) -> dict:
        """The keys that are set."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Manifest:
    """manifest.json of a model bundle: one model file and everything needed to run it."""

    schema_version: int = spec("manifest format version (2: with deployment or metadata; 3: with an input batch)",
                               choices=SCHEMA_VERSIONS)
    family: str = spec("model family: its pixel convention and reference thresholds", choices=FAMILIES)
    model: ModelFile = spec("the model file")
    input: InputSection = spec("the input tensor")
    outputs: List[OutputSection] = spec("output tensors in the order the model returns them")
    decode: DecodeSpec = spec("how the outputs become boxes")
    names: List[str] = spec("class names by class id")
    task: str = spec("what the model does", "detect", choices=("detect",))
    target: str = spec("what the bundle was built for, e.g. onnx, onnx-int8, tflite-int8, tensorrt-fp16", "")
    precision: str = spec("the weights: fp32, fp16 or int8 (empty: unknown; older bundles: the input dtype)", "")
    postprocess: PostprocessDefaults = spec("the family's reference (evaluation) thresholds: what Detector.load "
                                            "uses by default", default_factory=PostprocessDefaults)
    source: Optional[dict] = spec("what the model was converted from: file, sha256, tool versions", None)
    tensorrt: Optional[TensorRTSection] = spec("TensorRT bundles: inputs of the engine build", None)
    deployment: Optional[DeploymentThresholds] = spec("this model's thresholds for edge run, detect and demo (flags "
                                                      "and the config override them; a key left out, or no section: "
                                                      "the family's deployment default)", None)
    metadata: Optional[ModelMetadata] = spec("what the model file recorded about itself (version, date, ...)", None)

    def to_contract(self) -> Contract:
        """The runtime Contract this manifest describes."""
        return Contract(family=self.family, input=self.input.to_spec(),
                        outputs=tuple(o.to_spec() for o in self.outputs), decode=self.decode, names=tuple(self.names),
                        postprocess=self.postprocess, deployment=self.deployment, task=self.task, target=self.target,
                        precision=self.precision, source=dict(self.source or {}),
                        metadata=self.metadata.to_dict() if self.metadata else {})

    @classmethod
    def of(cls, contract: Contract, model_file: str, sha256: str) -> "Manifest":
        """The manifest of a contract and its model file."""
        fmt = os.path.splitext(model_file)[1].lstrip(".").lower()
        metadata = ModelMetadata.of(contract.metadata) if contract.metadata else None
        version = 3 if _batched(contract.input) else 2 if metadata or contract.deployment else 1
        return cls(version, contract.family, ModelFile(model_file, fmt, sha256), InputSection.of(contract.input),
                   [OutputSection.of(o) for o in contract.outputs], contract.decode, list(contract.names),
                   contract.task, contract.target or fmt, contract.precision, contract.postprocess,
                   dict(contract.source), deployment=contract.deployment, metadata=metadata)

    def to_json(self) -> dict:
        """The manifest as JSON data (absent optional sections left out)."""
        data = json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists
        if self.metadata:
            data["metadata"] = self.metadata.to_dict()
        if not _batched(self.input):  # one image per run: the keys schema_version 1 and 2 do not know stay out
            for key in ("batch", "dynamic_batch"):
                del data["input"][key]
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class Bundle:
    """A bundle that was read and checked: its directory, typed manifest and the Contract it describes."""

    path: str  # the bundle directory
    manifest: Manifest
    contract: Contract

    @property
    def model_path(self) -> str:
        """The model file."""
        return os.path.join(self.path, self.manifest.model.file)

    @property
    def precision(self) -> str:
        """fp32, fp16 or int8 as the manifest says (older bundles: the input dtype)."""
        return self.manifest.precision

    @property
    def target(self) -> str:
        """What the bundle was built for (onnx, tflite-int8, tensorrt-fp16, ...)."""
        return self.manifest.target


def read_bundle(path: str, verify: bool = True) -> Bundle:
    """The Bundle at a directory or manifest.json path; the model's sha256 is checked when verify is set."""
    manifest_path = path if os.path.basename(path) == MANIFEST else os.path.join(path, MANIFEST)
    root = os.path.dirname(os.path.abspath(manifest_path))
    try:
        with open(manifest_path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ModelError(f"{path}: no {MANIFEST} in this directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested too deep
        raise ModelError(f"{manifest_path}: not valid JSON ({e})") from None
    manifest = parse_manifest(data, where=manifest_path)
    bundle = Bundle(root, manifest, manifest.to_contract())
    if not os.path.isfile(bundle.model_path):
        raise ModelError(f"{manifest_path}: model file {manifest.model.file!r} is missing from the bundle")
    expected = manifest.model.sha256
    if verify and expected and sha256_file(bundle.model_path) != expected:
        raise ModelError(f"{bundle.model_path}: sha256 does not match the manifest (corrupt or replaced model file)")
    return bundle


def parse_manifest(data, where: str = MANIFEST) -> Manifest:
    """Validate manifest JSON data into a Manifest; errors name the key path and the problem."""
    if not isinstance(data, dict):
        raise ContractError(f"{where}: the manifest must be a JSON object")
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version not in SCHEMA_VERSIONS:  # first
        raise ContractError(f"{where}: schema_version {version} is not supported by this runtime (it reads "
                            f"{', '.join(map(str, SCHEMA_VERSIONS))}); upgrade edge")
    try:
        manifest = build(Manifest, data)
    except ValidationError as e:
        raise ContractError(f"{where}: {e}") from None
    _check(manifest, where)
    return manifest


def _check(m: Manifest, where: str) -> None:
    """What one field's declaration cannot say: rules across fields and the decode format's own needs."""
    if m.input.dtype in ("uint8", "int8") and m.input.quantization is None:
        raise ContractError(f"{where}: input.quantization is required for {m.input.dtype} inputs")
    if not m.names:
        raise ContractError(f"{where}: names must be a non-empty list of strings")
    if m.input.batch == 0 and not m.input.dynamic_batch:
        raise ContractError(f"{where}: input.batch 0 (no limit) needs input.dynamic_batch true")
    fmt, strides = decode_format(m.decode.format), list(m.decode.strides)
    if not strides or (fmt.strides and len(strides) != fmt.strides):
        need = f"{fmt.strides} levels for {fmt.name}" if fmt.strides else "at least one level"
        raise ContractError(f"{where}: decode.strides must list {need}, got {strides}")
    if fmt.anchors is not None and any(m.input.height % s or m.input.width % s for s in strides):
        raise ContractError(f"{where}: decode.strides {strides} must divide the input size "
                            f"{m.input.height}x{m.input.width}")


def contract_from_manifest(data: dict, where: str = MANIFEST) -> Contract:
    """Validate manifest JSON data and build its Contract."""
    return parse_manifest(data, where).to_contract()


def manifest_from_contract(contract: Contract, model_file: str, sha256: str) -> dict:
    """The manifest JSON data for a contract."""
    return Manifest.of(contract, model_file, sha256).to_json()


def write_bundle(out_dir: str, model_path: str, contract: Contract, extra: Optional[dict] = None) -> str:
    """Copy the model into `out_dir` and write its manifest (checked as read_bundle will); returns the directory."""
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.basename(model_path)
    target = os.path.join(out_dir, name)
    if os.path.abspath(target) != os.path.abspath(model_path):
        shutil.copyfile(model_path, target)
    data = {**manifest_from_contract(contract, name, sha256_file(target)), **(extra or {})}
    manifest = parse_manifest(data, where=os.path.join(out_dir, MANIFEST))
    tmp = os.path.join(out_dir, MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest.to_json(), f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, MANIFEST))
    return out_dir


def _batched(spec) -> bool:
    """The input declares a batch other than one image per run (an InputSpec or InputSection)."""
    return spec.batch != 1 or spec.dynamic_batch


def _quantization(scale: Optional[float], zero_point: int) -> Optional[Quantization]:
    return Quantization(scale, zero_point) if scale else None


def json_schema() -> dict:
    """The manifest's JSON Schema, generated from the dataclasses above."""
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://github.com/edge-runtime/edge/schema/manifest.schema.json",
            "title": "edge model bundle manifest", **schema(Manifest)}


def schema_text() -> str:
    """The schema exactly as committed at edge/schema/manifest.schema.json."""
    return json.dumps(json_schema(), indent=2) + "\n"

