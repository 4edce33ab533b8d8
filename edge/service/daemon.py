"""The `edge run` process: build the pipeline from the run settings, drive systemd notify from the frame loop,
stop cleanly on SIGTERM/SIGINT and reload on SIGHUP with a hot model swap.

Reload (SIGHUP, or `systemctl reload` with ExecReload=kill -HUP $MAINPID or Type=notify-reload) re-reads the
config. Applied live: the model section and thresholds (a new detector is loaded beside the running one, warmed
up and self-tested on the latest real frame (refused when its raw outputs hold NaN/inf, or when it finds nothing
where the running model found objects), then swapped in between two frames; a link such as
models/current that now points elsewhere counts as a change) and logging.level. Sources, pipeline and sinks
need a restart: a reload logs which of them changed and keeps the running ones.

ONNX Runtime's threads spin between runs unless model.spin or max_fps says otherwise; a loop that turns out to wait
for its frames gets the same model without spinning, swapped in the same way (SPIN_CHECK_FRAMES below).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import replace
from typing import Callable, Optional

import numpy as np

from ..detections import Detections
from ..detector import checked_run, load_detector
from ..errors import ModelError, SinkError
from ..settings import Config, HttpConfig
from ..stream.analytics import source_analytics
from ..stream.media import Media
from ..stream.pipeline import Pipeline
from ..stream.sinks import open_sinks
from ..stream.sources import open_source
from .systemd import Notifier, status_line

log = logging.getLogger("edge")

def model_key(config: Config) -> tuple:
    """What identifies the loaded model: its resolved path, the file's modification time and the model settings."""
    path = os.path.realpath(config.model.path)
    return (path, _stamp(path), config.model, config.thresholds)


def _stamp(path: str) -> Optional[int]:
    """Modification time of a model file or of a bundle's manifest (None when it is gone)."""
    try:
        return os.stat(os.path.join(path, "manifest.json") if os.path.isdir(path) else path).st_mtime_ns
    except OSError:
        return None


def self_test(detector, image: np.ndarray, running_found: int = 0) -> None:
    """Warm the detector up and check it on a real frame: finite raw outputs, sane Detections, and objects found
    when the running model found `running_found` > 0 there; ModelError otherwise."""
    detector(image)  # the first run warms the engine up
    result = checked_run(detector, image)
    if not isinstance(result, Detections):
        raise ModelError(f"self-test: the detector returned {type(result).__name__}, not Detections")
    if running_found and not len(result):
        raise ModelError(f"self-test: finds nothing on the latest frame, where the running model found "
                         f"{running_found} object(s); restart the service to switch anyway")


def apply_log_level(config: Config, debug: bool) -> None:
    """logging.level from the config, unless --debug was given."""
    if not debug:
        logging.getLogger().setLevel(config.logging.level.upper())


RESTART_SECTIONS = ("sources", "pipeline", "sinks", "tracking", "media")
# model.spin unset and not paced by max_fps: after this many frames, if the inference ran less than SPIN_BUSY of the
# time, the loop waits for its frames (a camera slower than the model) and ONNX Runtime's spinning threads only burn
# CPU (3.4x per frame for the demo model at 5 fps, README "Benchmarks"), so the model is reloaded without spinning.
SPIN_CHECK_FRAMES = 100
SPIN_BUSY = 0.5


def inference_share(status: dict) -> float:
    """The share of the time the backend was running: inferences per second x the inference p50."""
    loop, inference = status["loop"], status["latency_ms"].get("inference") or {}
    runs_per_s = status["fps"] / (loop.get("frames_per_inference") or 1)
    return runs_per_s * (inference.get("p50") or 0.0) / 1e3


class Daemon:
    """One run: `Daemon(config, resolve).run()`; resolve() re-reads the config (and flags) at each reload."""

    pipeline: Pipeline  # set when the start-up completes (a SIGTERM during the model load leaves it unset)

    def __init__(self, config: Config, resolve: Callable[[], Config], debug: bool = False):
        self.config, self.resolve, self.debug = config, resolve, debug
        self.notifier = Notifier()
        self._hup = threading.Event()
        self._reload: Optional[threading.Thread] = None
        self._outcome = ""
        self._stopping = self._stop_asked = False
        self._reference: tuple = (None, 0)  # the latest inferred frame and how many objects the running model found
        # before the slow model load: a SIGHUP now is remembered (reload after the first frame), SIGTERM stops
        handlers = {signal.SIGINT: self._on_stop, signal.SIGTERM: self._on_stop, signal.SIGHUP: self._on_hup}
        self._previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            apply_log_level(config, debug)
            detector = load_detector(config.run_model(), config.thresholds)
            self.model_key = model_key(config)
            self._spin_check_at = self._loaded(config, detector, 0)
            if self._stop_asked:
                return
            sinks = open_sinks(config.sinks)
            if config.sinks.http is not None:
                sinks.append(open_server(config.sinks.http, config.media.dir if config.media else None))
            self.pipeline = Pipeline(detector, open_sources(config, detector), sinks, **vars(config.pipeline),
                                     analytics=source_analytics(config, detector.names),
                                     media=Media(config.media) if config.media else None)
        except BaseException:
            self._restore_signals()
            raise

    def start(self) -> None:
        """Open the sources that must open at start-up (files, or all with require_sources) and start the sinks;
        their errors raise here, before anything is logged about the run (run() starts it too when not done)."""
        if not hasattr(self, "pipeline") or self._stop_asked:
            return
        try:
            self.pipeline.start()
        except BaseException:
            self._restore_signals()
            raise

    def run(self) -> int:
        """Run until the sources end, max_frames, or SIGTERM/SIGINT (then drain the sinks); returns 0, or 1 when every
        source ended without a single frame inferred (every file unreadable)."""
        try:
            if self._stop_asked or not hasattr(self, "pipeline"):
                log.info("stopped during start-up")
                return 0
            for event in self.pipeline.events(idle=self.notifier.wake):
                if event is not None:  # for the reload self-test: the latest frame, what the running model found
                    self._reference = (self.pipeline.last_frame, len(event["detections"]))
                self._between_frames()
        finally:
            self._stop_notice()
            self._restore_signals()
        status = self.pipeline.status()
        lat, reloads = status["latency_ms"]["capture_to_result"], status["model_reloads"]
        log.info("%d frames inferred; capture-to-result p50 %s ms, p99 %s ms; %s; model reloads: %d succeeded, "
                 "%d failed", status["inferred"], lat["p50"], lat["p99"],
                 ", ".join(f"{sid}: {s['captured']} captured, {s['dropped']} dropped"
                           for sid, s in status["sources"].items()), reloads["succeeded"], reloads["failed"])
        return 0 if self._stop_asked or not nothing_inferred(status) else 1

    def _between_frames(self) -> None:
        """The frame loop's duties after each inferred frame or idle wake-up: notify (watchdog), start or finish a
        reload."""
        self.notifier.tick(self.pipeline.status)
        if self._reload is not None and not self._reload.is_alive():
            self._reload = None
            if self._outcome:  # a SIGHUP reload, not the spin decision
                self.notifier.reloaded(self._outcome)
        if self._reload is not None:
            return
        if self._hup.is_set():
            self._hup.clear()
            self.notifier.reloading()
            self._reload = threading.Thread(target=self._reload_model, name="edge-reload", daemon=True)
            self._reload.start()
        elif self._spin_check_at is not None and self.pipeline.inferred >= self._spin_check_at:
            self._spin_check_at = None
            busy = inference_share(self.pipeline.status())
            if busy < SPIN_BUSY:
                self._outcome = ""
                self._reload = threading.Thread(target=self._stop_spinning, args=(busy,), name="edge-spin", daemon=True)
                self._reload.start()

    def spinning(self) -> str:
        """How the running ONNX Runtime session's threads spin, for the start-up log ('' for other backends)."""
        if self.pipeline.detector.backend.name != "onnxruntime":
            return ""
        if self._spin_check_at is not None:
            return "on until the loop turns out to wait for its frames"
        return "off" if self._running_model[0].spin is False else "on"

    def _loaded(self, config: Config, detector, inferred: int) -> Optional[int]:
        """Remember what the running detector was loaded from (the file itself, not where a link points later; the
        pipeline settings running, which a reload does not change); returns the frame count at which to decide
        whether its threads should spin, None when there is nothing to decide (model.spin set, max_fps pacing, a
        backend without a CPU thread pool that spins)."""
        model = replace(config, pipeline=self.config.pipeline).run_model()
        path = os.path.realpath(model.path)
        self._running_model = (replace(model, path=path), config.thresholds, _stamp(path))
        spins = (model.spin is None and model.threads != 1 and detector.backend.name == "onnxruntime"
                 and not detector.backend.accelerated)
        return inferred + SPIN_CHECK_FRAMES if spins else None

    def _stop_spinning(self, busy: float) -> None:
        """Reload the running model with its inference threads not spinning between runs, and swap it in."""
        model, thresholds, stamp = self._running_model
        try:
            if _stamp(model.path) != stamp:
                raise ModelError(f"{model.path} changed since it was loaded (a reload picks the new one up)")
            detector = load_detector(replace(model, spin=False), thresholds)
            frame, found = self._reference
            if frame is not None:
                self_test(detector, frame.image, found)
            self.pipeline.swap_detector(detector, reload=False)
            log.info("the inference ran %.0f%% of the time (the loop waits for its frames): onnxruntime threads no "
                     "longer spin between runs, saving CPU (model.spin decides)", busy * 100)
        except Exception as e:
            log.warning("onnxruntime threads keep spinning between runs: their reload failed: %s", e)

    def _reload_model(self) -> None:
        """Re-read the settings; load, warm up and self-test a changed model beside the running one, then swap it."""
        try:
            config = self.resolve()
            apply_log_level(config, self.debug)
            stale = sorted(k for k in RESTART_SECTIONS if getattr(config, k) != getattr(self.config, k))
            if stale:
                log.warning("reload: %s changed; these need a restart (systemctl restart), the running ones stay",
                            ", ".join(stale))
            key = model_key(config)
            if key == self.model_key:
                log.info("reload: model unchanged")
                self._outcome = "reloaded; model unchanged"
                return
            frame, found = self._reference
            if frame is None:
                raise ModelError("no frame yet to self-test the new model on (no source has delivered); reload "
                                 "again once one does")
            detector = load_detector(replace(config, pipeline=self.config.pipeline).run_model(), config.thresholds)
            self_test(detector, frame.image, found)
            self.pipeline.swap_detector(detector)
            self.model_key = key
            self._spin_check_at = self._loaded(config, detector, self.pipeline.inferred)
            log.info("reload: now running %s (conf %s, iou %s, max_det %s, multi_label %s)", detector.model_path,
                     detector.conf, detector.iou, detector.max_det, "on" if detector.multi_label else "off")
            self._outcome = f"reloaded; model {os.path.basename(detector.model_path)}"
        except Exception as e:
            message = str(e) or type(e).__name__
            self.pipeline.reload_failed(message)
            log.error("reload failed, the running model stays: %s", message)
            self._outcome = f"reload failed: {message}; {status_line(self.pipeline.status())}"

    def _on_hup(self, signum, _frame) -> None:
        log.info("SIGHUP: reloading the configuration")
        self._hup.set()

    def _on_stop(self, signum, _frame) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self._stop_asked = True
        self._stop_notice()
        if hasattr(self, "pipeline"):
            self.pipeline.stop()

    def _restore_signals(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _stop_notice(self) -> None:
        """STOPPING=1, once."""
        if not self._stopping:
            self._stopping = True
            self.notifier.stopping()


def nothing_inferred(status: dict) -> bool:
    """Whether every source ended without a frame inferred; logs one error line per source that says why."""
    sources = status["sources"]
    if status["inferred"] or not all(s["state"] == "ended" for s in sources.values()):
        return False
    for sid, s in sources.items():
        if s["skipped"]:
            log.error("%s: none of its %d input(s) could be read (each is named above); nothing inferred", s["uri"],
                      s["skipped"])
        elif not s["error"]:  # a source error was logged when it happened
            log.error("%s: ended without a frame; nothing inferred", s["uri"])
    return True


def open_server(settings: HttpConfig, media_dir: Optional[str] = None):
    """The ops HTTP server; a missing prometheus-client is a one-line SinkError naming the extra."""
    try:
        from .server import HttpServer
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "prometheus_client":
            raise SinkError("the HTTP server needs prometheus-client: pip install 'edge[http]'") from exc
        raise
    return HttpServer.from_settings(settings, media_dir)


def open_sources(config: Config, detector) -> list:
    """The configured sources (not opened yet), sized for the model."""
    common = {"realtime": not config.pipeline.all_frames,
              "model_size": (detector.contract.input.width, detector.contract.input.height)}
    return [open_source(s.uri, source_id=s.name, width=s.width, height=s.height, fps=s.fps, fourcc=s.fourcc, **common)
            for s in config.sources]
