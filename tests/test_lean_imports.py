"""The device runtime never pulls in training/conversion stacks."""
import pkgutil
import subprocess
import sys

import edge

FORBIDDEN = ("torch", "ultralytics", "tensorflow", "onnx", "converters", "models", "torchvision", "tensorrt")


def test_importing_every_edge_module_stays_lean():
    modules = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if not m.name.endswith("__main__")]
    assert "edge.detector" in modules and "edge.backends.tflite" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from edge import Detector\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"forbidden modules imported: {result.stdout.strip()}"
