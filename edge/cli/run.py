"""`edge run`: stream sources through a detector and publish events to sinks."""
from __future__ import annotations

import argparse
import functools
import logging

from ..stream.capture import DROP_POLICIES
from ..errors import ConfigError

log = logging.getLogger("edge")


def add_run_parser(sub, model_args) -> None:
    """Register the `run` subcommand; model_args adds the shared model flags."""
    p = sub.add_parser("run", help="stream camera/stream/file sources through the model and publish events")
    p.add_argument("--config", metavar="FILE", help="YAML config (edge/schema/config.schema.json); flags given "
                   "as well override it; SIGHUP re-reads it")
    model_args(p, flag=True)
    p.add_argument("--source", action="append", metavar="[NAME=]URI",
                   help="synthetic[:WxH[@fps]], video file, image folder, /dev/videoN, v4l2:N, rtsp://, http(s)://, "
                        "gst:PIPELINE or picamera2[:N]; repeat for several sources (shared round-robin)")
    p.add_argument("--all-frames", action="store_true", help="infer every frame (files: no real-time pacing) instead of the latest")
    p.add_argument("--every", type=int, default=1, metavar="N", help="infer every Nth captured frame")
    p.add_argument("--max-fps", type=float, help="cap the inference rate")
    p.add_argument("--drop", choices=DROP_POLICIES,
                   help="when a source's queue is full: latest keeps the newest frames, oldest keeps the queued ones, "
                        "block makes capture wait (default: latest, or block with --all-frames)")
    p.add_argument("--queue-size", type=int, default=8, help="frames queued per source with --all-frames")
    p.add_argument("--max-frames", type=int, help="stop after N inferred frames")
    p.add_argument("--width", type=int, help="capture width (cameras, synthetic)")
    p.add_argument("--height", type=int, help="capture height (cameras, synthetic)")
    p.add_argument("--fps", type=float, help="capture frame rate (cameras, synthetic)")
    p.add_argument("--fourcc", help="V4L2 pixel format, e.g. MJPG")
    _sink_args(p.add_argument_group("sinks"))
    p.set_defaults(func=functools.partial(cmd_run, parser=p))


def _sink_args(g) -> None:
    """Flags that open_sinks reads."""
    g.add_argument("--jsonl", metavar="PATH", help="write events as JSON lines to PATH ('-' for stdout)")
    g.add_argument("--jsonl-max-bytes", type=int, metavar="N", help="rotate the JSON lines file past N bytes")
    g.add_argument("--jsonl-backups", type=int, metavar="N", help="rotated files kept (default 5)")
    g.add_argument("--mqtt", metavar="URL", help="publish to an MQTT broker: mqtt[s]://[user:pass@]host[:port]")
    g.add_argument("--mqtt-qos", type=int, choices=(0, 1, 2), help="MQTT QoS (default 1)")
    g.add_argument("--mqtt-topic-prefix", metavar="PREFIX", help="topics PREFIX/SOURCE/events (default edge/HOSTNAME)")
    g.add_argument("--mqtt-client-id", metavar="ID")
    g.add_argument("--mqtt-ca", metavar="FILE", help="CA file for mqtts://")
    g.add_argument("--mqtt-cert", metavar="FILE", help="client certificate for mqtts://")
    g.add_argument("--mqtt-key", metavar="FILE", help="client key for mqtts://")
    g.add_argument("--http", metavar="HOST:PORT", help="serve /healthz /readyz /metrics /latest /stream.mjpg /snapshot.jpg")
    g.add_argument("--http-token", metavar="TOKEN", help="bearer token (required off loopback; or EDGE_HTTP_TOKEN)")
    g.add_argument("--http-max-age", type=float, metavar="S", help="/readyz fails when frames are older (default 10)")
    g.add_argument("--webhook", metavar="URL", help="POST each event to this URL")
    g.add_argument("--webhook-timeout", type=float, metavar="S", help="seconds per POST (default 5)")
    g.add_argument("--webhook-retries", type=int, metavar="N", help="retries after a failed POST (default 3)")
    g.add_argument("--sink-queue", type=int, metavar="N", help="events a sink holds before dropping the oldest (default 1000)")


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run until the sources end, --max-frames, or SIGTERM/SIGINT; exit 78 (EX_CONFIG) on a bad config."""
    from ..service.config import EX_CONFIG
    from ..service.daemon import Daemon

    if args.config is None and (args.model is None or not args.source):
        parser.error("--model and --source are required (or a --config FILE)")
    resolve = functools.partial(run_settings, args, parser)
    try:
        settings = resolve()
    except ConfigError as e:
        log.error("error: %s", e)
        return EX_CONFIG
    return Daemon(settings, resolve).run()


def run_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The flags alone, or the config file's settings with the flags given on the command line on top."""
    from ..service.config import load, to_namespace
    from ..stream.sources import split_name

    if args.config is None:
        settings = argparse.Namespace(**vars(args))
    else:
        settings = to_namespace(load(args.config))
        defaults = vars(parser.parse_args(["--config", args.config]))
        for key, value in vars(args).items():
            if key not in defaults or value != defaults[key]:
                setattr(settings, key, value)
    if args.source:
        settings.sources = [(name, uri, {}) for name, uri in map(split_name, args.source)]
    return settings
