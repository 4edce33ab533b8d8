"""Cut a detector's ONNX head so each quantized output keeps its own int8 scale (TFLite full-integer export)."""
from __future__ import annotations

import onnx
from onnx import helper, shape_inference

from . import ConvertError

YOLO11_OUTPUTS = ("box_logits", "scores")  # the `yolo11-dfl` decode order
DAMO_OUTPUTS = ("scores", "box_logits")  # the `damo-yolo-dfl` decode order


def split_yolo11_head(model: onnx.ModelProto) -> onnx.ModelProto:
    """YOLO11 [1,4+nc,N] output -> `box_logits` [1,4*reg_max,N] (the DFL's input) and `scores` [1,nc,N].

    Ending before the DFL keeps its int8 Softmax (fixed 1/256 output steps) and the pixel-box arithmetic out of
    the quantized graph, and boxes off the scores' int8 scale; the runtime does the DFL for candidates only.
    """
    graph = model.graph
    if len(graph.output) != 1:
        raise ConvertError(f"a YOLO11 ONNX has one output, this one has {len(graph.output)}")
    producers = {out: node for node in graph.node for out in node.output}
    final = producers.get(graph.output[0].name)
    if final is None or final.op_type != "Concat" or len(final.input) != 2:
        raise ConvertError("the YOLO11 output is not Concat(boxes, scores); re-export it with Ultralytics")
    return _with_outputs(model, {_dfl_input(graph, producers): YOLO11_OUTPUTS[0], final.input[1]: YOLO11_OUTPUTS[1]})


def _dfl_input(graph: onnx.GraphProto, producers: dict) -> str:
    """The box-logit tensor the DFL reshapes, transposes and soft-maxes (before its Conv with arange weights)."""
    consumers: dict = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    # YOLO11's attention block has Softmax too: the DFL one is the Softmax read by a Conv (the arange weights).
    dfl = [n for n in graph.node if n.op_type == "Softmax"
           and [c.op_type for c in consumers.get(n.output[0], [])] == ["Conv"]]
    if len(dfl) != 1:
        raise ConvertError(f"expected one DFL (Softmax -> Conv) in the YOLO11 head, found {len(dfl)}")
    return _back_through(dfl[0].input[0], producers, ("Reshape", "Transpose"))


def split_damo_head(model: onnx.ModelProto) -> onnx.ModelProto:
    """DAMO-YOLO (scores, xyxy boxes) -> `scores` [1,N,C] and `box_logits` [1,N,4*(R+1)], before the head's DFL.

    Each level's class map (after its Sigmoid) and scaled box logits (the Softmax input) are flattened
    channels-last, a no-op on onnx2tf's NHWC tensors, and concatenated level by level as the head does.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    softmaxes = [n for n in graph.node if n.op_type == "Softmax"]
    final = producers.get(graph.output[0].name) if len(graph.output) == 2 else None
    if final is None or final.op_type != "Concat" or len(softmaxes) != len(final.input):
        raise ConvertError("not a DAMO-YOLO head (scores = Concat over levels, one DFL Softmax per level)")
    cls_maps = [_back_through(t, producers, ("Transpose", "Reshape", "Flatten")) for t in final.input]
    reg_maps = [_back_through(n.input[0], producers, ("Reshape", "Transpose")) for n in softmaxes]
    if any(producers[t].op_type != "Sigmoid" for t in cls_maps):
        raise ConvertError("the DAMO-YOLO class maps do not end in a Sigmoid")
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in shape_inference.infer_shapes(model).graph.value_info}
    new = onnx.ModelProto()
    new.CopyFrom(model)
    for name, maps in ((DAMO_OUTPUTS[0], cls_maps), (DAMO_OUTPUTS[1], reg_maps)):
        levels = []
        for k, tensor in enumerate(sorted(maps, key=lambda t: -shapes[t][2] * shapes[t][3])):  # stride 8 first
            _, channels, height, width = shapes[tensor]
            shape = helper.make_tensor(f"{name}_shape_{k}", onnx.TensorProto.INT64, [3], [1, height * width, channels])
            new.graph.initializer.append(shape)
            new.graph.node.extend([
                helper.make_node("Transpose", [tensor], [f"{name}_nhwc_{k}"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"{name}_nhwc_{k}", shape.name], [f"{name}_level_{k}"]),
            ])
            levels.append(f"{name}_level_{k}")
        new.graph.node.append(helper.make_node("Concat", levels, [name], axis=1))
    return _with_outputs(new, {name: name for name in DAMO_OUTPUTS})


def _back_through(tensor: str, producers: dict, ops: tuple) -> str:
    """Follow `tensor` up through shape-only ops to the tensor they rearrange."""
    while tensor in producers and producers[tensor].op_type in ops:
        tensor = producers[tensor].input[0]
    return tensor


def _with_outputs(model: onnx.ModelProto, outputs: dict) -> onnx.ModelProto:
    """A copy whose graph outputs are `outputs` (tensor -> new name), with nodes they do not need pruned."""
    inferred = shape_inference.infer_shapes(model)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    missing = [t for t in outputs if t not in known]
    if missing:
        raise ConvertError(f"cannot infer the shape of head tensor(s) {', '.join(missing)}")
    new = onnx.ModelProto()
    new.CopyFrom(model)
    graph = new.graph
    renames = {t: n for t, n in outputs.items() if t != n}
    for node in graph.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    del graph.output[:]
    for tensor, name in outputs.items():
        value = known[tensor].type.tensor_type
        dims = [d.dim_value for d in value.shape.dim]
        graph.output.append(helper.make_tensor_value_info(name, value.elem_type, dims))
    _prune(graph)
    del graph.value_info[:]
    return new


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers that no graph output depends on."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
