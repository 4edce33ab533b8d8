"""A toy decode format in one file: `toy-rows`, one output [1, N, 4+nc] of xyxy boxes (input pixels) + class scores."""
from typing import Optional

import numpy as np

from edge.decode import DecodeContext, DecodeFormat, register_format


def fits(shapes: list, contract) -> Optional[str]:
    """None when the one output has 4+nc values per row, else what it needs."""
    return None if len(shapes[0]) == 3 and shapes[0][-1] == 4 + len(contract.names) else "[1, N, 4+nc]"


def decode(outputs: list, ctx: DecodeContext) -> tuple:
    """Each row keeps its best class when that score is above conf."""
    rows = outputs[0][0]
    best = rows[:, 4:].max(axis=1)
    keep = best > ctx.conf
    return rows[keep, :4].astype(np.float32), best[keep], rows[keep, 4:].argmax(axis=1).astype(np.int64)


register_format(DecodeFormat("toy-rows", "yolo11", 1, "[1,N,4+nc] xyxy + class scores", fits, decode))
