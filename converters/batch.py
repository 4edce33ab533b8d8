"""ONNX with a dynamic batch axis (edge-convert --batch N), checked image by image against batch-1 runs.

Exporters trace one image: torch.onnx.export and Ultralytics bake the traced batch of 1 into Reshape targets
(YOLO11's DFL and head reshapes, DAMO-YOLO's head), so renaming the input's first axis alone does not make the
graph take a batch. Here every Reshape whose data comes from the image input and whose target pins 1 as its
first axis gets 0 there instead (ONNX Reshape: 0 copies that axis from the data, i.e. the batch); Reshapes of
constants (anchor grids) keep theirs. The image axes are pinned to the export size, the outputs' other axes to
what a batch-1 run gives, and the result is accepted only when each image of a batch run equals the same image
run alone through the source graph.
"""
from __future__ import annotations

import numpy as np

from edge.contract import InputSpec

from . import ConvertError

BATCH = "batch"  # the name of the dynamic axis
_DTYPES = {"float32": np.float32, "float16": np.float16}


def batched_onnx(onnx_path: str, out_path: str, spec: InputSpec, batch: int) -> None:
    """Write `onnx_path` with a dynamic batch axis to `out_path`, checked on `batch` images (ConvertError if a
    run of several images does not give each image's own result)."""
    import onnx

    model = onnx.load(onnx_path)
    dynamic_batch(model, spec)
    _pin_outputs(model)
    onnx.save(model, out_path)
    check_batch(onnx_path, out_path, spec, batch)


def dynamic_batch(model, spec: InputSpec) -> int:
    """Make the graph's batch axis dynamic in place; returns how many Reshape targets were rewritten."""
    from onnx import numpy_helper

    graph = model.graph
    image = (3, spec.height, spec.width) if spec.layout == "NCHW" else (spec.height, spec.width, 3)
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ConvertError(f"input {graph.input[0].name} has {len(dims)} axes; a batch needs an NCHW/NHWC image input")
    dims[0].dim_param = BATCH
    for dim, size in zip(list(dims)[1:], image):
        dim.dim_value = size  # also pins an export with dynamic image axes to its size
    constants = {t.name: t for t in graph.initializer}
    constants.update({n.output[0]: n.attribute[0].t for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    from_image, rewritten = {graph.input[0].name}, 0
    for node in graph.node:  # ONNX nodes are in topological order
        if not from_image.intersection(node.input):
            continue
        from_image.update(node.output)
        if node.op_type != "Reshape" or node.input[0] not in from_image or node.input[1] not in constants:
            continue
        target = numpy_helper.to_array(constants[node.input[1]])
        if target.ndim == 1 and target.size and target[0] == 1:
            fixed = target.copy()
            fixed[0] = 0
            name = f"{node.input[1]}_{BATCH}"
            if name not in constants:
                constants[name] = numpy_helper.from_array(fixed, name)
                graph.initializer.append(constants[name])
            node.input[1] = name
            rewritten += 1
    del graph.value_info[:]  # shapes inferred at batch 1 would contradict a batch run
    for output in graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = BATCH
    return rewritten


def _pin_outputs(model) -> None:
    """Give the outputs' axes past the batch the sizes a one-image run produces (exports with dynamic image
    axes leave them symbolic; the runtime preallocates outputs from them)."""
    import onnxruntime as ort

    session = _session(model.SerializeToString(), ort)
    i = session.get_inputs()[0]
    shape = [1, *i.shape[1:]]
    dtype = np.float16 if i.type == "tensor(float16)" else np.float32
    results = session.run(None, {i.name: np.zeros(shape, dtype)})
    for output, result in zip(model.graph.output, results):
        for dim, size in zip(list(output.type.tensor_type.shape.dim)[1:], result.shape[1:]):
            dim.dim_value = size


def check_batch(source: str, batched: str, spec: InputSpec, batch: int, seed: int = 0) -> None:
    """Each image of a `batch`-image run of `batched` must equal that image run alone through `source`."""
    import onnxruntime as ort

    one, many = _session(source, ort), _session(batched, ort)
    name = many.get_inputs()[0].name
    image = (3, spec.height, spec.width) if spec.layout == "NCHW" else (spec.height, spec.width, 3)
    dtype = _DTYPES.get(spec.dtype)
    if dtype is None:
        raise ConvertError(f"--batch needs a float input; this model's is {spec.dtype}")
    pixels = np.random.default_rng(seed).integers(0, 256, (batch, *image)).astype(np.float32)
    images = (pixels * np.float32(spec.pixel_scale)).astype(dtype)
    try:
        together = many.run(None, {name: images})
    except Exception as e:  # ORT raises several types; a Reshape that still pins the batch fails here
        raise ConvertError(f"{source}: the graph does not run with a batch of {batch} ({_first_line(e)}); export "
                           "it from the checkpoint with --batch instead") from None
    for k in range(batch):
        alone = one.run(None, {name: images[k:k + 1]})
        for index, (a, b) in enumerate(zip(alone, together)):
            if b.shape[1:] != a.shape[1:] or not np.allclose(b[k], a[0], rtol=1e-3, atol=1e-3):
                raise ConvertError(f"{source}: output {index} of image {k} differs between a batch of {batch} and a "
                                   "run of its own (the graph mixes images); export it from the checkpoint with "
                                   "--batch instead")


def pin_batch_one(model) -> None:
    """Fix a dynamic batch axis to 1 in place (TFLite conversion keeps one image per run)."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    del model.graph.value_info[:]


def _session(model, ort):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
