"""Normalization in the graph: a uint8 NHWC input (Transpose, Cast, Div 255 prepended to the ONNX) against the
runtime's float32 NCHW pre-processing, both on ONNX Runtime CPU, alternating per image.

Answers whether moving the /255 and the layout change into the model makes pre+post cheaper for the frame as a
whole or only moves the cost into inference. Needs the `onnx` package (dev extra); writes nothing but a temp file.

    python bench/graph_normalize.py --model ../shared/models/yolo11n.onnx --images ../shared/coco/val2017
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from prepost_bench import load_frames  # noqa: E402

from edge import Detector  # noqa: E402


def uint8_model(path: str, out: str) -> str:
    """The model with a [1, H, W, 3] uint8 input that the graph turns into its float NCHW input /255."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    name, dims = graph.input[0].name, [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    graph.initializer.append(numpy_helper.from_array(np.array(255.0, np.float32), "pixel_max"))
    nodes = [helper.make_node("Transpose", ["pixels"], ["pixels_nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Cast", ["pixels_nchw"], ["pixels_float"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["pixels_float", "pixel_max"], [name])]
    del graph.input[0]
    graph.input.insert(0, helper.make_tensor_value_info("pixels", TensorProto.UINT8, [1, dims[2], dims[3], 3]))
    for node in reversed(nodes):
        graph.node.insert(0, node)
    onnx.save(model, out)
    return out


def main() -> int:
    """Time both variants per image (pre, inference) and check that they give the same raw outputs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a float32 NCHW .onnx")
    ap.add_argument("--images", required=True)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    frames = load_frames(args.images, args.limit)
    # Spinning off for both: two sessions in one process would otherwise fight over the cores between runs.
    ours = Detector.load(args.model, spin=False)
    with tempfile.TemporaryDirectory() as tmp:
        # the runtime takes a plain uint8 input as pixels that the graph normalizes: its own letterbox, undivided
        graph = Detector.load(uint8_model(args.model, os.path.join(tmp, "uint8.onnx")), spin=False)
        times: dict = {"float pre": [], "float inference": [], "uint8 pre": [], "uint8 inference": []}
        largest = 0.0
        for r in range(args.rounds):
            for i, frame in enumerate(frames):
                outputs = {}
                for variant in (("float", "uint8") if (i + r) % 2 else ("uint8", "float")):
                    t0 = time.perf_counter()
                    detector = ours if variant == "float" else graph
                    tensor = detector.prepare(frame)[0]
                    t1 = time.perf_counter()
                    outputs[variant] = detector.infer(tensor)[0].copy()
                    t2 = time.perf_counter()
                    times[f"{variant} pre"].append((t1 - t0) * 1e3)
                    times[f"{variant} inference"].append((t2 - t1) * 1e3)
                largest = max(largest, float(np.abs(outputs["float"] - outputs["uint8"]).max()))
    p50 = {k: float(np.median(v)) for k, v in times.items()}
    for key, value in p50.items():
        print(f"{key:<18}{value:9.3f} ms")
    print(f"pre + inference: float {p50['float pre'] + p50['float inference']:.3f} ms, uint8 graph "
          f"{p50['uint8 pre'] + p50['uint8 inference']:.3f} ms; largest raw output difference {largest:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
