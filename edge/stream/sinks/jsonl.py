"""JSON lines sink: one event per line on stdout ('-') or in a file with size-based rotation."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Optional, TextIO

from ...errors import SinkError
from ...settings import JsonlConfig
from .worker import QueuedSink, encode_event


class JsonlSink(QueuedSink):
    """Writes each event as one flushed JSON line; a file rotates to path.1 .. path.N past max_bytes.

    A file that cannot be reopened (no free descriptors, disk gone) is retried with doubling backoff (RETRY_MIN up to
    RETRY_MAX seconds); events meanwhile count as failed, and the backups are never shifted again until it reopens.
    """

    name = "jsonl"
    RETRY_MIN, RETRY_MAX = 0.5, 30.0

    @classmethod
    def from_settings(cls, settings: JsonlConfig, queue_size: int = 1000) -> "JsonlSink":
        """The sink `sinks.jsonl` describes."""
        return cls(settings.path, max_bytes=settings.max_bytes, backups=settings.backups, queue_size=queue_size)

    def __init__(self, path: str = "-", max_bytes: int = 0, backups: int = 5, queue_size: int = 1000) -> None:
        super().__init__(queue_size)
        if max_bytes < 0 or backups < 0:
            raise SinkError(f"jsonl: max_bytes and backups must be >= 0, got {max_bytes} and {backups}")
        if not path:
            raise SinkError("jsonl: the path must not be empty (a file, or '-' for stdout)")
        self.path = path
        self.max_bytes = max_bytes if path != "-" else 0
        self.backups = backups
        self._file: Optional[TextIO] = None
        self._size = 0
        self._retry_at = 0.0  # monotonic time of the next reopen attempt while the file is closed
        self._delay = self.RETRY_MIN

    def start(self, status: Callable[[], dict]) -> None:
        """Open the output (a file is appended to), then start the writer thread."""
        if self.path == "-":
            self._file = sys.stdout
        else:
            self._file = self._open()
        super().start(status)

    def _open(self) -> TextIO:
        try:
            f = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"jsonl: cannot open {self.path}: {exc.strerror or exc}") from exc
        self._size = f.tell()
        return f

    def _reopen(self) -> None:
        """Open the file again once the backoff has passed; SinkError (the event fails) until it opens."""
        now = time.monotonic()
        if now < self._retry_at:
            raise SinkError(f"jsonl: {self.path} is closed after an error; next reopen in {self._retry_at - now:.1f} s")
        try:
            self._file = self._open()
        except SinkError:
            self._back_off()
            raise
        self._delay = self.RETRY_MIN

    def _back_off(self) -> None:
        self._retry_at, self._delay = time.monotonic() + self._delay, min(self._delay * 2, self.RETRY_MAX)

    def _rotate(self) -> None:
        """path -> path.1 -> ... -> path.<backups> (the oldest is removed); with no backups, start afresh."""
        if self._file is not None:
            self._file.close()
        self._file = None  # from here a failure leaves the sink closed: _reopen retries, nothing rotates twice
        try:
            for i in range(self.backups - 1, 0, -1):
                older = f"{self.path}.{i}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i + 1}")
            if self.backups:
                os.replace(self.path, f"{self.path}.1")
            else:
                os.remove(self.path)
        except OSError as exc:
            self._back_off()
            raise SinkError(f"jsonl: cannot rotate {self.path}: {exc.strerror or exc}") from exc
        self._reopen()

    def _deliver(self, event: dict) -> None:
        line = encode_event(event) + "\n"
        size = len(line.encode("utf-8"))
        if self._file is None:
            self._reopen()
        if self.max_bytes and self._size and self._size + size > self.max_bytes:
            self._rotate()
        if self._file is None:  # not reached: _reopen and _rotate open the file or raise
            raise SinkError(f"jsonl: {self.path} is not open")
        self._file.write(line)
        self._file.flush()
        self._size += size
        self.counters.add("published")

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then close the file (stdout stays open)."""
        super().close(timeout)
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
