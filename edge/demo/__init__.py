"""The bundled demo: a DAMO-YOLO-Ns model trained on synthetic shapes (manifest.json + ONNX here) and its scene."""
import os

BUNDLE = os.path.dirname(os.path.abspath(__file__))
