"""A toy source in one file: `count:N` yields N grey frames whose brightness is the frame number."""
from typing import Optional

import numpy as np

from edge.stream.sources import Frame, Source, register


class CounterSource(Source):
    """N frames, then the end of the stream."""

    live = False

    def __init__(self, uri: str, source_id: Optional[str] = None, frames: int = 3, width: int = 64, height: int = 48):
        super().__init__(uri, source_id)
        self.frames, self.size = frames, (height, width)

    def open(self) -> None:
        self.done = 0

    def read(self) -> Optional[Frame]:
        if self.done >= self.frames:
            return None
        self.done += 1
        return self.frame(np.full((*self.size, 3), self.done, np.uint8))

    def close(self) -> None:
        pass


register("counter", lambda uri: {"frames": int(uri[6:])} if uri.startswith("count:") else None,
         lambda: CounterSource, first=True)
