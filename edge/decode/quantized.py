"""Integer (int8/uint8) outputs -> float32 values: real = (q - zero_point) * scale, for whole tensors or slices."""
from __future__ import annotations

from typing import Optional

import numpy as np


class Dequantize:
    """One output's quantization; float outputs (no scale) pass through unchanged.

    Every path computes float32(q) - float32(zero_point), then * float32(scale), so a value dequantized alone, in a
    slice or in the whole tensor has the same bits.
    """

    def __init__(self, scale: Optional[float], zero_point: int = 0):
        self.scale = scale
        self.zero_point = zero_point
        self._buffer: Optional[np.ndarray] = None
        self._lowest: dict = {}  # (threshold, dtype) -> lowest_above, computed once per threshold

    def applies(self, q: np.ndarray) -> bool:
        """Whether `q` holds integers to scale (False for float outputs)."""
        return bool(self.scale) and q.dtype.kind in "iu"

    def __call__(self, q: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Real values of `q` (any slice) as float32, into `out` or a new array; `q` itself when not quantized."""
        if not self.applies(q):
            return q
        real = np.subtract(q, self.zero_point, out=out, dtype=np.float32)
        real *= np.float32(self.scale)
        return real

    def whole(self, q: np.ndarray) -> np.ndarray:
        """Real values of a whole output into a buffer reused across frames (overwritten by the next call)."""
        if self.applies(q) and (self._buffer is None or self._buffer.shape != q.shape):
            self._buffer = np.empty(q.shape, np.float32)
        return self(q, out=self._buffer)

    def lowest_above(self, threshold: float, dtype: np.dtype) -> Optional[int]:
        """The smallest integer of `dtype` whose real value is > threshold (None when none is).

        With scale > 0 the mapping is increasing, so `q >= lowest_above(t)` selects exactly the values whose real
        value is > t, and the maximum of the integers is the integer of the maximum: candidates can be chosen on
        the integers and only the chosen ones dequantized (4x less memory read than dequantizing everything).
        """
        key = (threshold, np.dtype(dtype).str)
        if key not in self._lowest:
            if not self.scale or self.scale <= 0:
                raise ValueError(f"quantization scale {self.scale} is not positive")
            info = np.iinfo(dtype)
            values = self(np.arange(info.min, info.max + 1, dtype=dtype))
            above = np.flatnonzero(values > threshold)  # compared as the float path compares its scores
            self._lowest[key] = int(info.min + above[0]) if len(above) else None
        return self._lowest[key]


IDENTITY = Dequantize(None)
