"""systemd integration with the standard library only: sd_notify over $NOTIFY_SOCKET and journald log priorities.

The Notifier is driven by the frame loop, which wakes after each inferred frame and at least every WAKE seconds
without one (Pipeline.events(idle=...)). READY=1 after the first inferred frame, or as soon as every source has
failed its first open (the service is up, retrying them); WATCHDOG=1 at half of $WATCHDOG_USEC while the frame
loop is alive: a camera outage does not stop the pings (sources reconnect on their own, /readyz and STATUS= say
which are down) but a hung detector or sink does, and systemd restarts the service. STATUS= with fps, latency and
the sources that are down, RELOADING=1 + MONOTONIC_USEC= and READY=1 around a reload (Type=notify-reload
semantics, also right under Type=notify), STOPPING=1 on shutdown.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Optional

log = logging.getLogger("edge")

PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))  # syslog err, warning, info; else debug 7
STATUS_PERIOD = 5.0  # seconds between STATUS= updates when there is no watchdog
WAKE = 1.0  # the most seconds the frame loop sleeps without a frame


def notify(message: str) -> bool:
    """Send one sd_notify datagram ('KEY=value' lines); False when not under systemd or the send fails."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
        return True
    except OSError as e:
        log.debug("sd_notify to %s failed: %s", address, e)
        return False


def watchdog_period() -> Optional[float]:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), None when no watchdog is asked of this process."""
    usec, pid = os.environ.get("WATCHDOG_USEC", ""), os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6


def status_line(status: dict) -> str:
    """The one-line STATUS= text for a pipeline status() snapshot."""
    lat = status["latency_ms"]["capture_to_result"]
    line = f"{status['fps']:.1f} fps, capture-to-result p50 {lat['p50']} ms p99 {lat['p99']} ms, " \
           f"{status['inferred']} frames, model {os.path.basename(status['model']['path'] or '') or '?'}"
    failed = status.get("model_reloads", {}).get("failed")
    line = f"{line}, {failed} failed reload(s)" if failed else line
    down = [sid for sid, src in (status.get("sources") or {}).items() if src.get("state") == "down"]
    return f"{line}, source(s) down: {', '.join(down)}" if down else line


class Notifier:
    """The service's side of the notify protocol; every method is a no-op outside systemd."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self.watchdog = watchdog_period()
        self.ready = False
        self._next = 0.0

    @property
    def wake(self) -> float:
        """How long the frame loop may wait for a frame before it must call tick() (within the watchdog period)."""
        return max(0.01, min(WAKE, self.watchdog or WAKE))

    def tick(self, status) -> None:
        """Call from the frame loop after each inferred frame and each idle wake-up: READY=1 once (see the module
        docstring), then WATCHDOG=1 and STATUS= when due."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.ready:  # systemd arms the watchdog only once READY=1 arrives
            snapshot = status()
            if not snapshot["inferred"] and any(s.get("state") in ("connecting", "up")
                                                for s in snapshot["sources"].values()):
                return  # a source is still opening or about to deliver its first frame
            self.ready = True
            self._send("READY=1", f"STATUS={status_line(snapshot)}", "WATCHDOG=1" if self.watchdog else None)
        elif now >= self._next:
            self._send("WATCHDOG=1" if self.watchdog else None, f"STATUS={status_line(status())}")
        else:
            return
        self._next = now + (self.watchdog or STATUS_PERIOD)

    def reloading(self) -> None:
        """Tell systemd a reload started (answered later by reloaded())."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def reloaded(self, status: str) -> None:
        """Tell systemd the reload finished (whatever its outcome) with a one-line status."""
        self._send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        """Tell systemd the service is shutting down."""
        self._send("STOPPING=1", "STATUS=stopping: draining events to sinks")

    def _send(self, *lines: Optional[str]) -> None:
        if self.enabled:
            notify("\n".join(line for line in lines if line))


def journal_stderr() -> bool:
    """Whether stderr is connected to journald ($JOURNAL_STREAM names stderr's device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


class Formatter(logging.Formatter):
    """`edge: error: ...` and `edge: warning: ...` for errors and warnings, `edge: ...` for the rest: one format
    for every line the CLI and the daemon print."""

    def format(self, record: logging.LogRecord) -> str:
        """The message with its prefix."""
        label = "error: " if record.levelno >= logging.ERROR else "warning: " if record.levelno >= logging.WARNING \
            else ""
        return f"edge: {label}{super().format(record)}"


class JournalFormatter(Formatter):
    """Prefixes each line with its syslog priority (`<3>` error ... `<7>` debug) so journald records it."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted message, every line prefixed."""
        level = next((p for threshold, p in PRIORITIES if record.levelno >= threshold), 7)
        return "\n".join(f"<{level}>{line}" for line in super().format(record).splitlines())


def setup_logging(level: int) -> None:
    """`edge: [error: |warning: ]message` on stderr, with priority prefixes when stderr goes to the journal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter() if journal_stderr() else Formatter())
    logging.basicConfig(level=level, handlers=[handler])
    if level > logging.DEBUG:
        quiet_native_logs()


def quiet_native_logs() -> None:
    """Silence OpenCV's and FFmpeg's own stderr lines (`[ WARN:0@0.2] global loadsave.cpp`, `[tcp @ 0x..]`);
    our messages already say what failed. --debug keeps them. An explicit environment setting wins."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg is first used
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"] == "ERROR":
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
