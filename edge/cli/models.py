"""`edge models install|list|rollback|build-engine`: the on-device bundle store (edge/service/store.py)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time

from ..errors import EdgeError, ModelError
from ..progress import Progress
from ..service.store import Change, Store, build_engine, default_state_dir, needs_engine

SYSTEMD_BOOTED = "/run/systemd/system"  # exists when systemd is PID 1 (sd_booted)


def add_models_parser(sub) -> None:
    """Register `edge models ...`."""
    p = sub.add_parser("models", help="install, list and roll back model bundles on this device")
    models = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument("--state-dir", default=None,
                       help=f"state directory holding models/ (default $STATE_DIRECTORY or {default_state_dir()})")
    result = argparse.ArgumentParser(add_help=False)
    result.add_argument("--reload", nargs="?", const="edge.service", metavar="UNIT",
                         help="after a switch, reload the running daemon: systemctl try-reload-or-restart UNIT "
                              "(default edge.service)")
    result.add_argument("--json", action="store_true", help="print the result as one JSON object")

    q = models.add_parser("install", parents=[state, result], help="verify, self-test and switch to a bundle")
    q.add_argument("bundle", help="bundle directory, or a .tar/.tar.gz of one")
    q.add_argument("--keep", type=int, default=3, help="versions kept besides current and previous (default 3)")
    q.set_defaults(func=cmd_install)

    q = models.add_parser("list", parents=[state], help="installed versions, current and previous")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = models.add_parser("rollback", parents=[state, result], help="switch current back to the previous version")
    q.set_defaults(func=cmd_rollback)

    q = models.add_parser("build-engine", parents=[state],
                          help="build the TensorRT engine of the current bundle when its target needs one")
    q.set_defaults(func=cmd_build_engine)


def cmd_install(args: argparse.Namespace) -> int:
    """Install a bundle and make it current."""
    return _report(Store(args.state_dir).install(args.bundle, keep=args.keep), args)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Make the previous version current again."""
    return _report(Store(args.state_dir).rollback(), args)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the installed versions."""
    versions = Store(args.state_dir).versions()
    if args.json:
        print(json.dumps([v.to_dict() for v in versions]))
        return 0
    if not versions:
        print("no model bundles installed")
        return 0
    print(f"  {'VERSION':<34} {'INSTALLED':<19} {'SIZE':>10}  MODEL")
    for v in versions:
        mark = "*" if v.current else "-" if v.previous else " "
        role = " (current)" if v.current else " (previous)" if v.previous else ""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.installed_at))
        print(f"{mark} {v.name:<34} {when:<19} {v.size / 2**20:>6.1f} MiB  {v.model} [{v.family}]{role}")
    return 0


def cmd_build_engine(args: argparse.Namespace) -> int:
    """Build the current bundle's TensorRT engine if it needs one (the edge-engine-build.service oneshot)."""
    from ..bundle import read_bundle

    store = Store(args.state_dir)
    current = store.link("current")
    if not current:
        raise ModelError(f"{store.root}: no current bundle; run `edge models install BUNDLE` first")
    bundle = f"{store.root}/{current}"
    installed = read_bundle(bundle)
    if not needs_engine(installed.manifest):
        print(f"{current}: target {installed.target!r} needs no engine build")
        return 0
    with Progress("models build-engine", total=1, eta=False) as progress:
        with progress.step("building the TensorRT engine (this takes minutes)"):
            engine = build_engine(installed)
    print(f"{current}: engine {engine}")
    return 0


def _report(change: Change, args: argparse.Namespace) -> int:
    """Print what changed and, with --reload, tell the daemon."""
    reload_note = _reload(args.reload) if change.changed and args.reload else None
    if args.json:
        print(json.dumps({"version": change.version, "changed": change.changed, "previous": change.previous,
                          "message": change.message, "reload": reload_note}))
    else:
        print(change.message)
        if reload_note:
            print(reload_note)
    return 0


def _reload(unit: str) -> str:
    """Reload the unit if it runs (systemctl try-reload-or-restart), or say how to."""
    if not shutil.which("systemctl") or not os.path.isdir(SYSTEMD_BOOTED):
        return "systemd is not running here: send SIGHUP to the running `edge run` to load the new model"
    done = subprocess.run(["systemctl", "try-reload-or-restart", unit], capture_output=True, text=True)
    if done.returncode:
        raise EdgeError(f"the switch is done, but systemctl try-reload-or-restart {unit} failed: "
                        f"{done.stderr.strip() or done.returncode}")
    return f"reloaded {unit} (if it was running)"
