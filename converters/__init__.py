"""Offline converter (edge-convert): trained checkpoints -> ONNX -> runtime bundles; workstation only."""


class ConvertError(Exception):
    """A conversion cannot proceed; the message is one actionable line."""


INSTALL_HINT = "pip install 'edge[convert]'"
