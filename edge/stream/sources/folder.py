"""An image folder (or one image file): each readable image once, in name order."""
from __future__ import annotations

import logging
import os
from typing import Optional

import cv2

from ...errors import EdgeError
from ...images import list_images
from .base import Frame, Source, SourceError

log = logging.getLogger("edge")


class FolderSource(Source):
    """Images from a folder as frames; unreadable files are logged and skipped."""

    live = False

    def __init__(self, uri: str, source_id: Optional[str] = None):
        super().__init__(uri, source_id or os.path.basename(os.path.normpath(uri)))
        self._paths: list = []

    def open(self) -> None:
        """List the images."""
        try:
            self._paths = list_images(self.uri) if os.path.isdir(self.uri) else [self.uri]
        except EdgeError as e:
            raise SourceError(str(e)) from None

    def read(self) -> Optional[Frame]:
        """The next readable image, None after the last."""
        while self._paths:
            path = self._paths.pop(0)
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is not None:
                return self.frame(image)
            log.warning("%s: cannot read image (unsupported format); skipped", path)
            self._seq += 1
        return None

    def close(self) -> None:
        """Nothing to release."""
