"""Frame -> network tensor (letterbox or stretch, colour, layout, dtype) into a reused buffer.

The converter imports this module for calibration, so calibration and inference see identical tensors.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import cv2
import numpy as np

from .contract import InputSpec
from .errors import ContractError


@dataclass(frozen=True)
class FrameTransform:
    """Where the frame landed in the input: input = frame * gain + pad."""

    gain_x: float
    gain_y: float
    pad_x: int
    pad_y: int
    frame_width: int
    frame_height: int

    def boxes_to_frame(self, xyxy: np.ndarray, clip: bool = True) -> np.ndarray:
        """Map (N, 4) input-pixel boxes back to frame pixels, in place, optionally clipped to the frame."""
        # (x, y, x, y) rows in the boxes' dtype: the same arithmetic as column by column (x -= pad_x, x /= gain_x, ...).
        xyxy -= np.array((self.pad_x, self.pad_y) * 2, xyxy.dtype)
        xyxy /= np.array((self.gain_x, self.gain_y) * 2, xyxy.dtype)
        if clip:
            np.clip(xyxy, 0, np.array((self.frame_width, self.frame_height) * 2, xyxy.dtype), out=xyxy)
        return xyxy


def letterbox_geometry(frame_hw: tuple, input_hw: tuple) -> tuple:
    """Ultralytics LetterBox(center=True, scaleup=True): (new_w, new_h, left, top, gain)."""
    h0, w0 = frame_hw
    h, w = input_hw
    gain = min(h / h0, w / w0)
    new_w, new_h = int(round(w0 * gain)), int(round(h0 * gain))
    # Ultralytics rounds the half padding with a -0.1 bias, so an odd remainder goes to the bottom/right.
    left = int(round((w - new_w) / 2 - 0.1))
    top = int(round((h - new_h) / 2 - 0.1))
    return new_w, new_h, left, top, gain


def _value_table(spec: InputSpec) -> np.ndarray:
    """Lookup table uint8 pixel -> input value, exact for every dtype (float /255 as Ultralytics computes it).

    Applied with cv2.LUT straight into the tensor, so colour order, layout, scaling and quantization cost one pass.
    """
    pixels = np.arange(256, dtype=np.float32)
    if spec.dtype == "uint8" and not spec.quant_scale:  # a plain uint8 input takes pixels as they are (the model
        return pixels.astype(np.uint8)  # scales them itself: DeepStream-style normalization in the graph)
    if spec.pixel_scale == 1.0:
        real = pixels
    else:  # divide in float32 like `im /= 255`, so values are bit-identical to the reference
        real = pixels / np.float32(round(1.0 / spec.pixel_scale))
    if spec.dtype in ("uint8", "int8"):
        if not spec.quant_scale:
            raise ContractError(f"int8 input {spec.name!r} has no quantization scale: cannot tell what its values mean")
        info = np.iinfo(spec.dtype)
        q = np.round(real / np.float32(spec.quant_scale)) + spec.quant_zero_point
        return np.clip(q, info.min, info.max).astype(spec.dtype)
    return real.astype(spec.dtype)


class Preprocessor:
    """Turns BGR uint8 frames into the model's input tensor, reusing one buffer across calls."""

    def __init__(self, spec: InputSpec, exact_resize: Optional[bool] = None, tensor: Optional[np.ndarray] = None):
        """tensor: a (1, ...) view to fill, e.g. one image of a batch tensor (default: a tensor of its own)."""
        # OpenCV's own worker threads spin for about a millisecond after each parallel call; right before inference
        # they took a core from the inference engine's pinned threads (~1.5 ms per frame lost on 2 cores). The work
        # here is ~0.3 ms on one thread, so OpenCV runs on the caller's thread only (process-wide, as Ultralytics does).
        cv2.setNumThreads(1)
        self.spec = spec
        # INTER_LINEAR is what Ultralytics uses, but OpenCV's ARM (NEON) and x86 builds round it differently;
        # INTER_LINEAR_EXACT (opt-in, EDGE_EXACT_RESIZE=1) gives the same pixels on every CPU (README, "Tested on").
        if exact_resize is None:
            exact_resize = os.environ.get("EDGE_EXACT_RESIZE") == "1"
        self._interpolation = cv2.INTER_LINEAR_EXACT if exact_resize else cv2.INTER_LINEAR
        self._table = _value_table(spec)
        self._identity = self._table.dtype == np.uint8 and bool((self._table == np.arange(256)).all())
        shape = (1, 3, spec.height, spec.width) if spec.layout == "NCHW" else (1, spec.height, spec.width, 3)
        if tensor is not None and (tensor.shape != shape or tensor.dtype != self._table.dtype):
            raise ValueError(f"tensor {tensor.dtype} {tensor.shape} is not the {self._table.dtype} {shape} input")
        self.tensor = np.empty(shape, dtype=self._table.dtype) if tensor is None else tensor
        self._pad = self._table[np.full(3, spec.pad_value, np.uint8)]
        self._geometry: Optional[tuple] = None
        # Scratch for the resized image and the colour planes, sized for the whole input and allocated once: a fresh
        # array per frame faults its pages in again, which cost more than the pixel work (~1 ms at 640x480 here).
        self._scratch = np.empty((2, spec.height * spec.width * 3), np.uint8)
        self._resized: Optional[np.ndarray] = None
        self._planes: Any = None  # B, G, R planes (NCHW) or the RGB image (NHWC)

    def __call__(self, frame: np.ndarray) -> tuple:
        """Return (tensor, transform); the tensor is overwritten by the next call."""
        frame = as_bgr(frame)
        h0, w0 = frame.shape[:2]
        spec = self.spec
        if spec.resize == "letterbox":
            new_w, new_h, left, top, _ = letterbox_geometry((h0, w0), (spec.height, spec.width))
            # Map back with the per-axis ratio the resize really applied (rounding makes them differ slightly),
            # as Ultralytics 8.4 predict does.
            gain_x, gain_y = new_w / w0, new_h / h0
        else:  # stretch: anisotropic scale, no offset (DAMO-YOLO)
            new_w, new_h, left, top = spec.width, spec.height, 0, 0
            gain_x, gain_y = spec.width / w0, spec.height / h0
        geometry = (new_w, new_h, left, top)
        if geometry != self._geometry:
            self._reset_canvas(new_w, new_h, left, top)
            self._geometry = geometry
        if (new_w, new_h) != (w0, h0):
            resized = cv2.resize(frame, (new_w, new_h), dst=self._resized, interpolation=self._interpolation)
        else:
            resized = frame
        if spec.layout == "NCHW":
            planes = cv2.split(resized, self._planes)  # B, G, R
            order = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
            for c, src in enumerate(order):
                cv2.LUT(planes[src], self._table, dst=self.tensor[0, c, top:top + new_h, left:left + new_w])
        else:
            region = self.tensor[0, top:top + new_h, left:left + new_w, :]
            if self._identity:  # pixels as they are: the colour conversion (or a copy) writes the tensor itself
                if spec.color == "RGB":
                    cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=region)
                else:
                    np.copyto(region, resized)
            else:
                if spec.color == "RGB":
                    resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=self._planes)
                cv2.LUT(resized, self._table, dst=region)
        return self.tensor, FrameTransform(gain_x, gain_y, left, top, w0, h0)

    def _reset_canvas(self, new_w: int, new_h: int, left: int, top: int) -> None:
        """Paint the padding strips once per frame geometry; later frames only overwrite the image region."""
        # Fill with whole padded lines (per plane, or interleaved for NHWC) so every write is a long contiguous
        # run; broadcasting the 3-value pad pixel instead cost ~0.9 ms per geometry change for NHWC.
        h, w = self.spec.height, self.spec.width
        if self.spec.layout == "NCHW":
            canvases = [(self.tensor[0, c], 1, np.full(w, self._pad[c])) for c in range(3)]
        else:
            canvases = [(self.tensor[0].reshape(h, w * 3), 3, np.tile(self._pad, w))]
        for plane, k, line in canvases:
            plane[:top] = line
            plane[top + new_h:] = line
            plane[top:top + new_h, :left * k] = line[:left * k]
            plane[top:top + new_h, (left + new_w) * k:] = line[(left + new_w) * k:]
        n = new_h * new_w
        self._resized = self._scratch[0, :3 * n].reshape(new_h, new_w, 3)
        colour = self._scratch[1, :3 * n]
        self._planes = ([colour[k * n:(k + 1) * n].reshape(new_h, new_w) for k in range(3)]
                        if self.spec.layout == "NCHW" else colour.reshape(new_h, new_w, 3))


class BatchPreprocessor:
    """Frames -> one batch tensor of `size` images, allocated once, through a Preprocessor per image writing straight
    into its place (images past the frames given keep what they held: padding)."""

    def __init__(self, spec: InputSpec, size: int):
        image = (3, spec.height, spec.width) if spec.layout == "NCHW" else (spec.height, spec.width, 3)
        self.tensor = np.zeros((size, *image), _value_table(spec).dtype)
        self.preprocessors = [Preprocessor(spec, tensor=self.tensor[i:i + 1]) for i in range(size)]

    @property
    def size(self) -> int:
        """Images the tensor holds."""
        return len(self.preprocessors)

    def __call__(self, frames) -> list:
        """Fill images 0..len(frames)-1 of the tensor; returns each frame's FrameTransform."""
        return [preprocess(frame)[1] for preprocess, frame in zip(self.preprocessors, frames)]


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Accept BGR, grey or BGRA uint8 frames; reject anything else with a clear message."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (BGR as cv2.imread gives), got {frame.dtype}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame must be HxWx3 BGR, got shape {frame.shape}")
    return frame
