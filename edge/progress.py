"""Progress of long work on stderr: a \\r-updated bar on a terminal, a line every 10 % or 10 s otherwise.

    with Progress("calibration", total=len(files)) as progress:
        for path in files:
            ...
            progress.update()

    with Progress("models install", total=3, eta=False) as progress:  # a few steps, some of them long
        with progress.step("self-test"):  # shown now, then again while it runs (the clock moves), counted at the end
            ...

`silenced()` turns every Progress off inside it (a command's --quiet or --json).
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from contextvars import ContextVar
from typing import Callable, Iterator, Optional, TextIO

_QUIET: ContextVar[bool] = ContextVar("edge_progress_quiet", default=False)
BAR = 24  # characters
REDRAW_S = 0.1  # a terminal bar is redrawn at most this often
LINE_EVERY_S = 10.0  # without a terminal: a line at least this often while work advances...
LINE_EVERY_FRACTION = 0.1  # ...and one per 10 % of the total
BEAT_S = 1.0  # a terminal bar is redrawn this often while a step runs (lines: every LINE_EVERY_S)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No Progress shows anything inside this block."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


class Progress:
    """Counts steps of one piece of work and shows them on `stream` (default stderr)."""

    def __init__(self, label: str, total: Optional[int] = None, stream: Optional[TextIO] = None,
                 clock: Callable[[], float] = time.monotonic, eta: bool = True):
        self.label, self.total, self.count, self.eta = label, total, 0, eta
        self.note = ""  # what is being done now, shown after the count
        self._lock = threading.Lock()
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not _QUIET.get()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._clock = clock
        self._start = self._shown_at = clock()
        self._shown_count = 0
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, steps: int = 1) -> None:
        """Count `steps` more done; show them when it is time to."""
        self.count += steps
        if not self.enabled:
            return
        now = self._clock()
        if self.tty:
            if now - self._shown_at >= REDRAW_S or self.count == self.total:
                self._show(now)
        elif now - self._shown_at >= LINE_EVERY_S or self._tenth(self.count) > self._tenth(self._shown_count):
            self._show(now)

    @contextlib.contextmanager
    def step(self, note: str) -> Iterator[None]:
        """One step that may take long: shown with `note` when it starts and again while it runs (so the clock
        moves), counted when it ends."""
        self.note = note
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(done,), daemon=True)
        if self.enabled:
            self._show(self._clock())
            beat.start()
        try:
            yield
        finally:
            done.set()
            if beat.is_alive():
                beat.join()
            self.count += 1

    def _beat(self, done: threading.Event) -> None:
        while not done.wait(BEAT_S if self.tty else LINE_EVERY_S):
            self._show(self._clock())

    def close(self) -> None:
        """Show the final count (a terminal bar ends its line); later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self.note = ""
        if not self.enabled or (not self.tty and self.count == self._shown_count):
            return
        self._show(self._clock())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _tenth(self, count: int) -> int:
        """Which 10 % of the total `count` is in (0 without a total)."""
        return int(count / self.total / LINE_EVERY_FRACTION) if self.total else 0

    def _show(self, now: float) -> None:
        with self._lock:  # a step's heartbeat thread shows too
            self._shown_at, self._shown_count = now, self.count
            elapsed = now - self._start
            if self.total:
                fraction = min(1.0, self.count / self.total)
                done = f"{self.count}/{self.total} {100 * fraction:3.0f}%"
                eta = f" eta {_clock_text(elapsed / fraction - elapsed)}" if self.eta and 0 < fraction < 1 else ""
            else:
                fraction, done, eta = 0.0, str(self.count), ""
            timing = f"{_clock_text(elapsed)}{eta}{' ' + self.note if self.note else ''}"
            if self.tty:
                bar = f" [{'#' * int(BAR * fraction):.<{BAR}}]" if self.total else ""
                self.stream.write(f"\r{self.label}{bar} {done} {timing}\x1b[K")
            else:
                self.stream.write(f"{self.label}: {done} {timing}\n")
            self.stream.flush()


def _clock_text(seconds: float) -> str:
    """83.4 -> '1:23'; 4000 -> '1:06:40'."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
