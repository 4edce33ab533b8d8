"""Tiny ONNX models for tests: fixed outputs behind a real input, with optional Ultralytics-style metadata."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge import Detector
from edge.bundle import write_bundle


def constant_model(path, input_shape, outputs: dict, metadata: dict | None = None, input_name: str = "images") -> str:
    """An ONNX file whose outputs are the given arrays whatever the input (the input still flows through a Mul)."""
    nodes, graph_outputs, inits = [], [], []
    # Reduce the input to a scalar zero and add it to each constant, so the graph really depends on its input.
    nodes.append(helper.make_node("ReduceMax", [input_name], ["in_max"], keepdims=0))
    inits.append(numpy_helper.from_array(np.zeros((), np.float32), "zero"))
    nodes.append(helper.make_node("Mul", ["in_max", "zero"], ["in_zero"]))
    for name, array in outputs.items():
        array = np.asarray(array, np.float32)
        inits.append(numpy_helper.from_array(array, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "in_zero"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    graph = helper.make_graph(nodes, "constant", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
                              graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.save(model, str(path))
    return str(path)


def yolo11_output(boxes_xywh, class_scores, num_anchors: int = 8400) -> np.ndarray:
    """A [1, 4+nc, N] Detect output with the given anchors filled in and every other score 0."""
    class_scores = np.asarray(class_scores, np.float32)
    out = np.zeros((1, 4 + class_scores.shape[1], num_anchors), np.float32)
    out[0, :4, : len(boxes_xywh)] = np.asarray(boxes_xywh, np.float32).T
    out[0, 4:, : len(class_scores)] = class_scores.T
    return out


def ultralytics_metadata(names, imgsz=(640, 640)) -> dict:
    """metadata_props as Ultralytics writes them (values are Python literals)."""
    return {"author": "Ultralytics", "task": "detect", "stride": 32, "batch": 1, "imgsz": list(imgsz),
            "names": {i: n for i, n in enumerate(names)}}


def tiny_bundle(where, tag: str, score: float = 0.9) -> str:
    """A tiny two-class YOLO11 bundle in where/<tag>-bundle; `score` changes the model bytes (and so its version)."""
    where = Path(where)
    where.mkdir(parents=True, exist_ok=True)
    out = yolo11_output([[320, 320, 100, 60]], [[score, 0.0]])
    model = constant_model(where / f"{tag}.onnx", (1, 3, 640, 640), {"output0": out}, ultralytics_metadata(["a", "b"]))
    return write_bundle(str(where / f"{tag}-bundle"), model, Detector.load(model).contract)
