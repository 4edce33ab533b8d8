"""Offline converter (edge-convert): trained checkpoints -> ONNX -> runtime bundles; workstation only."""


class ConvertError(Exception):
    """A conversion cannot proceed; the message is one actionable line."""


INSTALL_HINT = "pip install 'edge[convert]'"

from .api import ConvertOptions, ConvertResult, convert  # noqa: E402  (api imports ConvertError from here)

__all__ = ["ConvertError", "ConvertOptions", "ConvertResult", "INSTALL_HINT", "convert"]
