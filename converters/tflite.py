"""fp32 ONNX -> TFLite fp32, fp16 or full-integer int8 (int8 input and outputs) through onnx2tf and TensorFlow.

onnx2tf turns the NCHW ONNX graph into an NHWC Keras model; TensorFlow's own TFLiteConverter then quantizes it
with the calibration tensors (pre-processed exactly as the runtime does). The head is cut before its DFL first,
so box-bin logits and scores leave the model as separate tensors, each with its own int8 scale, and the runtime
decodes them (`yolo11-dfl` / `damo-yolo-dfl`, converters/onnx_head.py).

Full-integer int8 keeps the high-resolution leading layers (`float_stride`) and an attention block (`keep_float`)
in float by default: their int8 activations carry most of the rounding error (YOLO11n COCO val mAP50-95 41.8 ->
43.6, fp32 43.6, for ~5-10% more latency), while the model keeps int8 input and outputs and runs on any TFLite
runtime (builtin float ops between DEQUANTIZE / QUANTIZE).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import replace
from typing import Iterator, Optional, Sequence

import numpy as np

from edge.contract import Contract, DecodeSpec, OutputSpec
from edge.decode import decode_format
from edge.errors import EdgeError

from . import ConvertError
from .batch import pin_batch_one

PRECISIONS = ("fp32", "fp16", "int8")
TARGETS = {"fp32": "tflite", "fp16": "tflite-fp16", "int8": "tflite-int8"}
INSTALL_HINT = "pip install 'edge[tflite-convert]'"
HEAD_STRIDES = (8, 16, 32)  # both families' P3-P5 heads
# onnx2tf validates against this sample file and downloads it when absent from the working directory.
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# int8: the ops ahead of the first convolution below 1/FLOAT_STRIDE of the input resolution stay float (0: none).
FLOAT_STRIDE = 16
KEEP_FLOAT = ("attention",)  # int8: YOLO11's C2PSA block stays float too (int8 there costs YOLO11n 0.7-1.3 mAP)
CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def convert_tflite(onnx_path: str, contract: Contract, precision: str, calibration: Optional[np.ndarray],
                   out_path: str, float_stride: int = FLOAT_STRIDE,
                   keep_float: Sequence[str] = KEEP_FLOAT) -> Contract:
    """Write `out_path` (.tflite) from the fp32 ONNX that `contract` describes; returns the TFLite's contract.

    int8 only: `float_stride` keeps float every op that runs before the first convolution whose output is smaller
    than 1/float_stride of the input (for YOLO11 and DAMO-YOLO at 16: the stride-2 to stride-16 backbone stages, up
    to the first stride-32 downsampling); 0 quantizes everything. `keep_float` adds ops: "attention" (the block
    around any BATCH_MATMUL, YOLO11's C2PSA), a TFLite op type ("SOFTMAX") or a substring of an op's output tensor
    name. Both default to what measured best on YOLO11n (COCO val mAP50-95, fp32 43.62): everything int8 41.77,
    leading ops float 42.85, plus the C2PSA block 43.58, at about the plain int8 latency (ai-edge-litert, XNNPACK).
    """
    if precision not in PRECISIONS:
        raise ConvertError(f"TFLite precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "int8" and (calibration is None or len(calibration) == 0):
        raise ConvertError("tflite-int8 needs calibration images (--calib FOLDER or VIDEO)")
    spec = contract.input
    if spec.layout != "NCHW" or spec.dtype != "float32":
        raise ConvertError(f"{onnx_path}: TFLite conversion starts from an fp32 NCHW ONNX, this input is "
                           f"{spec.dtype} {spec.layout}")
    if float_stride < 0 or (float_stride and float_stride & (float_stride - 1)):
        raise ConvertError(f"float_stride {float_stride}: expected 0 or a power of two")
    if calibration is not None and tuple(calibration.shape[1:]) != (3, spec.height, spec.width):
        raise ConvertError(f"calibration tensors {calibration.shape} do not match the input "
                           f"3x{spec.height}x{spec.width}")
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import onnx
        import onnx2tf  # noqa: F401  (checked here so a missing toolchain fails before any work)
        import tensorflow as tf
        from tensorflow.lite.tools import flatbuffer_utils
    except ImportError as e:
        raise ConvertError(f"TFLite conversion needs onnx2tf and TensorFlow ({e.name} is missing): "
                           f"{INSTALL_HINT}") from None
    source = onnx.load(onnx_path)
    pin_batch_one(source)  # TFLite bundles run one image per inference, whatever batch the ONNX takes
    graph, decode = _split_head(source, contract, onnx_path)
    selection = (float_stride, tuple(keep_float)) if precision == "int8" else (0, ())
    flatbuffer = _convert(graph, tf, precision, calibration, onnx_path, selection)
    model = flatbuffer_utils.convert_bytearray_to_object(flatbuffer)
    _name_io(model, graph.graph.input[0].name, [o.name for o in graph.graph.output])
    with open(out_path, "wb") as f:
        f.write(flatbuffer_utils.convert_object_to_bytearray(model))
    return _tflite_contract(out_path, contract, precision, decode, graph)


def _split_head(graph, contract: Contract, where: str) -> tuple:
    """(ONNX graph with one output per quantization scale, the DecodeSpec that reads it)."""
    from .onnx_head import split_damo_head, split_yolo11_head

    if contract.decode.format == "yolo11":
        graph = split_yolo11_head(graph)
        channels = graph.graph.output[0].type.tensor_type.shape.dim[1].dim_value  # box logits [1, 4*bins, N]
        return graph, _dfl_spec("yolo11-dfl", channels // 4)
    if contract.decode.format == "damo-yolo":
        graph = split_damo_head(graph)
        channels = graph.graph.output[1].type.tensor_type.shape.dim[2].dim_value  # box logits [1, N, 4*bins]
        return graph, _dfl_spec("damo-yolo-dfl", channels // 4)
    raise ConvertError(f"{where}: TFLite conversion supports the yolo11 and damo-yolo ONNX layouts, "
                       f"not {contract.decode.format}")


def _dfl_spec(name: str, bins: int) -> DecodeSpec:
    """The DecodeSpec of a split DFL head with `bins` bins per box side, reg_max counted as the format declares."""
    return DecodeSpec(name, strides=HEAD_STRIDES, reg_max=decode_format(name).reg_max_for(bins))


def _convert(graph, tf, precision: str, calibration: Optional[np.ndarray], where: str, selection: tuple) -> bytes:
    """onnx2tf (NCHW ONNX -> NHWC Keras) in a scratch directory, then TensorFlow's TFLiteConverter."""
    import onnx
    import onnx2tf

    with tempfile.TemporaryDirectory(prefix="edge-tflite-") as work, _cwd(work):
        np.save(ONNX2TF_SAMPLE, np.full((20, 128, 128, 3), 0.5, np.float32))
        onnx.save(onnx.shape_inference.infer_shapes(graph), "head.onnx")
        try:
            keras_model = onnx2tf.convert(input_onnx_file_path="head.onnx", output_folder_path="saved_model",
                                          disable_model_save=True, non_verbose=True)
        except (Exception, SystemExit) as e:  # onnx2tf raises whatever its op converters raise, or exits
            raise ConvertError(f"{where}: onnx2tf cannot convert it ({_first_line(e)})") from None
        converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        _configure(converter, tf, precision, calibration)
        try:
            if not any(selection):
                return converter.convert()
            return _quantize_selectively(converter, tf, *selection)
        except Exception as e:  # TensorFlow's converter errors come in many types
            raise ConvertError(f"{where}: TFLite {precision} conversion failed ({_first_line(e)})") from None


def _quantize_selectively(converter, tf, float_stride: int, keep_float: tuple) -> bytes:
    """Calibrate, then quantize with the chosen ops denylisted (they stay float; int8 input and outputs remain).

    The same two steps as `converter.convert()` (calibration, then the MLIR quantizer), with the quantizer's
    `denylisted_nodes`, which names ops by their output tensor (what tf.lite.experimental.QuantizationDebugger
    passes it).
    """
    from tensorflow.lite.python.convert import mlir_quantize

    converter._experimental_calibrate_only = True  # the float model with the calibration ranges
    calibrated = converter.convert()
    nodes = _float_nodes(calibrated, float_stride, keep_float)
    return mlir_quantize(calibrated, disable_per_channel=converter._experimental_disable_per_channel,
                         input_data_type=tf.int8, output_data_type=tf.int8, denylisted_nodes=nodes or None)


def _float_nodes(flatbuffer: bytes, float_stride: int, keep_float: tuple) -> list:
    """Output tensor names of the ops to keep float, in execution order."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(flatbuffer)
    subgraph = model.subgraphs[0]
    builtins = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = [builtins.get(max(c.builtinCode, c.deprecatedBuiltinCode), "") for c in model.operatorCodes]
    ops = subgraph.operators
    kinds = [codes[op.opcodeIndex] for op in ops]
    outputs = [subgraph.tensors[op.outputs[0]] for op in ops]
    keep = set()
    if float_stride:  # the leading ops, up to the first convolution below 1/float_stride of the input
        height = subgraph.tensors[subgraph.inputs[0]].shape[1]
        for i, (kind, output) in enumerate(zip(kinds, outputs)):
            if kind in CONVOLUTIONS and output.shape[1] * float_stride < height:
                break
            keep.add(i)
    for token in keep_float:
        if token == "attention":
            keep |= _attention_block(ops, kinds)
        else:
            keep |= {i for i, (kind, output) in enumerate(zip(kinds, outputs))
                     if token == kind or (token not in builtins.values() and token in output.name.decode())}
    return [outputs[i].name.decode() for i in sorted(keep)]


def _attention_block(ops, kinds: list) -> set:
    """Indices of the ops of the block around the BATCH_MATMULs (YOLO11's C2PSA; empty without attention).

    From the last activated convolution (CONV_2D -> LOGISTIC, SiLU) ahead of the first BATCH_MATMUL, the block's
    input convolution, to the activated convolution after the first CONCATENATION behind the last BATCH_MATMUL,
    the one that merges the attention branch back.
    """
    matmuls = [i for i, kind in enumerate(kinds) if kind == "BATCH_MATMUL"]
    if not matmuls:
        return set()
    consumers: dict = {}
    for i, op in enumerate(ops):
        for tensor in op.inputs:
            consumers.setdefault(tensor, []).append(i)

    def activation(i: int) -> list:  # the LOGISTIC and MUL of a convolution's SiLU, or [] when it has none
        sigmoid = [c for c in consumers.get(ops[i].outputs[0], []) if kinds[c] == "LOGISTIC"]
        return sigmoid + [c for s in sigmoid for c in consumers.get(ops[s].outputs[0], []) if kinds[c] == "MUL"]

    starts = [i for i in range(matmuls[0]) if kinds[i] in CONVOLUTIONS and activation(i)]
    merges = [i for i in range(matmuls[-1], len(ops)) if kinds[i] == "CONCATENATION"]
    ends = [i for i in range(merges[0], len(ops)) if kinds[i] in CONVOLUTIONS and activation(i)] if merges else []
    if not starts or not ends:
        return set(range(matmuls[0], matmuls[-1] + 1))
    return set(range(starts[-1], max([ends[0]] + activation(ends[0])) + 1))


def _configure(converter, tf, precision: str, calibration: Optional[np.ndarray]) -> None:
    """Builtin ops only (no Flex: device runtimes lack it); fp16 weights, or full-integer with int8 I/O."""
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        assert calibration is not None  # convert_tflite refuses int8 without it
        nhwc = np.ascontiguousarray(calibration.transpose(0, 2, 3, 1), dtype=np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in nhwc)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


def _name_io(model, input_name: str, output_names: list) -> None:
    """Give the TFLite tensors the ONNX names (the converter calls them serving_default_*, Identity_*)."""
    subgraph = model.subgraphs[0]
    if len(subgraph.inputs) != 1 or len(subgraph.outputs) != len(output_names):
        raise ConvertError(f"the TFLite model has {len(subgraph.inputs)} input(s) and {len(subgraph.outputs)} "
                           f"output(s); expected 1 and {len(output_names)}")
    subgraph.tensors[subgraph.inputs[0]].name = input_name.encode()
    for index, name in zip(subgraph.outputs, output_names):
        subgraph.tensors[index].name = name.encode()


def _tflite_contract(path: str, contract: Contract, precision: str, decode: DecodeSpec, graph) -> Contract:
    """The produced file's contract, read back through the runtime's TFLite backend and checked against the ONNX."""
    from edge.backends.tflite import TFLiteBackend

    try:
        backend = TFLiteBackend(path)
    except EdgeError as e:
        raise ConvertError(f"{path}: the produced TFLite does not load ({e})") from None
    spec = contract.input
    i = backend.inputs[0]
    if tuple(i.shape) != (1, spec.height, spec.width, 3):
        raise ConvertError(f"{path}: TFLite input {i.shape} is not NHWC 1x{spec.height}x{spec.width}x3")
    expected = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.graph.output]
    for got, want in zip(backend.outputs, expected):
        if list(got.shape) != want:
            raise ConvertError(f"{path}: TFLite output {got.name} {got.shape} does not match the ONNX {want}")
    outputs = tuple(OutputSpec(o.name, o.shape, o.dtype, o.quant_scale, o.quant_zero_point) for o in backend.outputs)
    inp = replace(spec, name=i.name, layout="NHWC", dtype=i.dtype, quant_scale=i.quant_scale,
                  quant_zero_point=i.quant_zero_point, batch=1, dynamic_batch=False)
    return replace(contract, input=inp, outputs=outputs, decode=decode, target=TARGETS[precision], precision=precision)


@contextlib.contextmanager
def _cwd(path: str) -> Iterator[None]:
    """onnx2tf reads and writes files in the working directory: run it inside the temporary one."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:300]}" if text else type(error).__name__
