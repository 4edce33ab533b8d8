"""Wrap an exported model into a bundle and prove the runtime can run it."""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from edge import Detector
from edge.bundle import sha256_file, write_bundle
from edge.contract import Contract
from edge.errors import EdgeError

from . import ConvertError


def bundle_model(model_path: str, family: Optional[str], out_dir: str, names: Optional[Sequence[str]] = None,
                 target: str = "onnx", source: Optional[dict] = None, contract: Optional[Contract] = None) -> str:
    """Write the bundle with `contract` (else inferred as the runtime would) and verify it; returns out_dir."""
    if contract is None:
        try:
            contract = Detector.load(model_path, family=family, names=names).contract
        except EdgeError as e:
            raise ConvertError(str(e)) from None
    contract = replace(contract, target=target, source=dict(source or {}))
    write_bundle(out_dir, model_path, contract)
    verify_bundle(out_dir)
    return out_dir


def verify_bundle(bundle: str) -> int:
    """Load the bundle with edge.Detector and run one inference on a synthetic frame; returns the detection count."""
    try:
        detector = Detector.load(bundle)
        rows, cols = np.mgrid[0:360, 0:480]
        frame = np.stack([rows % 256, cols % 256, (rows + cols) % 256], -1).astype(np.uint8)
        return len(detector(frame))
    except EdgeError as e:
        raise ConvertError(f"{bundle}: the written bundle does not run: {e}") from None


def source_info(path: str, **extra) -> dict:
    """Provenance for the manifest: the checkpoint's name and sha256 plus tool versions and notes."""
    return {"file": os.path.basename(path), "sha256": sha256_file(path), **extra}
