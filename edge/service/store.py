"""On-device model store: verified bundles in versioned directories under <state>/models, switched by atomic links.

Layout: <state>/models/<name>-<sha12>/ (manifest.json, the model file, .edge-install.json, and for TensorRT
bundles a calibration cache and engines/, see edge/backends/tensorrt/engines.py), `current` and
`previous` symlinks to version directories, `.lock`, and `.tmp-*` work entries that the next run removes.
A version directory only appears (by rename) once it is complete, verified, self-tested and fsynced, and
`current` only ever moves by os.replace of a fresh symlink, so a crash at any step leaves the old or the new
bundle current. EDGE_STORE_CRASH_AT=<step> (one of STEPS) SIGKILLs the process at that step, for the tests.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import tarfile
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from ..backends.tensorrt import engines
from ..backends.tensorrt.engines import needs_engine
from ..bundle import MANIFEST, Bundle, read_bundle
from ..errors import BackendUnavailable, EdgeError, ModelError
from ..progress import Progress

DEFAULT_STATE_DIR = "/var/lib/edge"
RECORD = ".edge-install.json"
TMP = ".tmp-"
CRASH_ENV = "EDGE_STORE_CRASH_AT"
MAX_MEMBER_BYTES = 512 << 20  # one file of an archive (a model or an engine: YOLO11x fp32 is ~220 MB)
MAX_ARCHIVE_BYTES = 1 << 30  # all files of an archive, unpacked
MAX_MEMBERS = 1000
STEPS = ("unpacked", "engine", "selftested", "synced", "renamed", "previous", "linked", "switched", "pruning", "pruned")


def default_state_dir() -> str:
    """$STATE_DIRECTORY (systemd's StateDirectory=, first entry) or /var/lib/edge."""
    return os.environ.get("STATE_DIRECTORY", "").split(":")[0] or DEFAULT_STATE_DIR


def crash_point(step: str) -> None:
    """Test hook: SIGKILL this process when EDGE_STORE_CRASH_AT names `step` (a crash or power cut there)."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def build_engine(bundle: Bundle) -> str:
    """Build (or reuse) the bundle's TensorRT engine for this device under <bundle>/engines; returns its path."""
    try:
        return engines.build_engine(bundle)
    except BackendUnavailable as e:
        raise ModelError(f"{bundle.path}: target {bundle.target!r} needs a TensorRT engine built on this "
                         f"device: {e}") from None


def self_test(bundle_dir: str) -> float:
    """Load the bundle and infer one synthetic gray frame; returns the inference time in ms."""
    import numpy as np

    from ..detector import Detector, checked_run

    try:
        detector = Detector.load(bundle_dir)
        spec = detector.contract.input
        checked_run(detector, np.full((spec.height, spec.width, 3), 114, np.uint8))
    except EdgeError as e:
        raise ModelError(f"self-test failed: {e}") from None
    except Exception as e:  # an inference library error is a bad bundle, not a crash of the tool
        raise ModelError(f"self-test failed: {type(e).__name__}: {e}") from None
    return detector.timing_ms["inference"]


@dataclass
class Version:
    """One installed bundle version."""

    name: str
    path: str
    installed_at: float
    size: int
    model: str
    family: str
    current: bool = False
    previous: bool = False

    def to_dict(self) -> dict:
        """JSON-ready view."""
        return {"version": self.name, "path": self.path, "installed_at": self.installed_at, "size": self.size,
                "model": self.model, "family": self.family, "current": self.current, "previous": self.previous}


@dataclass
class Change:
    """What an install or rollback did."""

    version: str
    changed: bool
    message: str
    previous: Optional[str] = None


class Store:
    """The bundle store under <state_dir>/models."""

    def __init__(self, state_dir: Optional[str] = None):
        self.root = os.path.abspath(os.path.join(state_dir or default_state_dir(), "models"))

    def link(self, name: str) -> Optional[str]:
        """The version that link `name` (current or previous) points at, or None."""
        try:
            target = os.path.basename(os.readlink(os.path.join(self.root, name)))
        except OSError:
            return None
        return target if os.path.isfile(os.path.join(self.root, target, RECORD)) else None

    def versions(self) -> list:
        """Installed versions, oldest first."""
        if not os.path.isdir(self.root):
            return []
        current, previous = self.link("current"), self.link("previous")
        found = []
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name.startswith(".") or os.path.islink(path) or not os.path.isfile(os.path.join(path, RECORD)):
                continue
            with open(os.path.join(path, RECORD), encoding="utf-8") as f:
                record = json.load(f)
            size = sum(os.path.getsize(os.path.join(d, n)) for d, _, files in os.walk(path) for n in files)
            found.append(Version(name, path, record["installed_at"], size, record["model"], record["family"],
                                 name == current, name == previous))
        return sorted(found, key=lambda v: (v.installed_at, v.name))

    def install(self, source: str, keep: int = 3) -> Change:
        """Verify, unpack, self-test and switch `current` to a bundle directory or .tar/.tar.gz archive."""
        if keep < 1:
            raise EdgeError("--keep must be at least 1")
        with self._locked():
            work = tempfile.mkdtemp(prefix=TMP, dir=self.root)
            try:
                return self._install(source, work, keep)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def rollback(self) -> Change:
        """Switch `current` back to `previous` (and `previous` to what was current)."""
        with self._locked():
            target, old = self.link("previous"), self.link("current")
            if not target or target == old:
                raise EdgeError(f"{self.root}: no previous version to roll back to")
            read_bundle(os.path.join(self.root, target))
            self._activate(target)
            return Change(target, True, f"rolled back to {target} (previous: {old})", old)

    def _install(self, source: str, work: str, keep: int) -> Change:
        with Progress("models install", total=4, eta=False) as progress:  # stderr; --json silences it
            with progress.step("unpacking"):
                bundle = _unpack(source, work)
            crash_point("unpacked")
            with progress.step("verifying sha256"):
                unpacked = read_bundle(bundle)
            version = _version_name(unpacked)
            old = self.link("current")
            if version == old:
                progress.total = progress.count  # nothing more to do
                return Change(version, False, f"already installed: {version} is current", self.link("previous"))
            target = os.path.join(self.root, version)
            if os.path.isfile(os.path.join(target, RECORD)):
                try:
                    read_bundle(target)
                    self_test(target)
                except ModelError:  # a damaged copy: replace it with the fresh one
                    self._discard(target)
            fresh = not os.path.isdir(target)
            progress.total = progress.count + (2 + needs_engine(unpacked.manifest) if fresh else 0)
            if fresh:
                if needs_engine(unpacked.manifest):
                    with progress.step("building the TensorRT engine (this takes minutes)"):
                        build_engine(unpacked)
                crash_point("engine")
                with progress.step("self-test"):
                    ms = self_test(bundle)
                crash_point("selftested")
                with progress.step("writing"):
                    self._add(unpacked, target, source, ms)
            self._activate(version)
            crash_point("switched")
            self._prune(keep)
            crash_point("pruned")
        return Change(version, True, f"installed {version}" + (f" (previous: {old})" if old else ""), old)

    def _add(self, bundle: Bundle, target: str, source: str, self_test_ms: float) -> None:
        """Record, fsync and rename a checked bundle into its version directory."""
        record = {"installed_at": time.time(), "source": os.path.abspath(source), "model": bundle.manifest.model.file,
                  "family": bundle.manifest.family, "self_test_ms": round(self_test_ms, 3)}
        with open(os.path.join(bundle.path, RECORD), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        _seal(bundle.path)
        crash_point("synced")
        os.rename(bundle.path, target)
        _fsync_dir(self.root)
        crash_point("renamed")

    def _activate(self, version: str) -> None:
        """Point `previous` at the current version, then `current` at `version`, each by an atomic rename."""
        old = self.link("current")
        if old and old != version:
            self._point("previous", old)
            crash_point("previous")
        self._point("current", version)

    def _point(self, link: str, version: str) -> None:
        tmp = os.path.join(self.root, f"{TMP}{link}-{os.getpid()}")
        os.symlink(version, tmp)
        if link == "current":
            crash_point("linked")
        os.replace(tmp, os.path.join(self.root, link))
        _fsync_dir(self.root)

    def _prune(self, keep: int) -> None:
        versions = self.versions()
        spared = {v.name for v in versions[-keep:]} | {self.link("current"), self.link("previous")}
        for v in versions:
            if v.name not in spared:
                self._discard(v.path)

    def _discard(self, path: str) -> None:
        """Rename a version directory out of sight first, so a crash never leaves a half-deleted version."""
        doomed = tempfile.mkdtemp(prefix=TMP, dir=self.root)
        os.rename(path, os.path.join(doomed, "old"))
        _fsync_dir(self.root)
        crash_point("pruning")
        shutil.rmtree(doomed)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold <models>/.lock and remove work entries left by a crashed run."""
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        with open(os.path.join(self.root, ".lock"), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise EdgeError(f"{self.root}: another `edge models` command is running") from None
            for name in os.listdir(self.root):
                path = os.path.join(self.root, name)
                if name.startswith(TMP) and os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                elif name.startswith(TMP):
                    os.unlink(path)
            yield


def _unpack(source: str, work: str) -> str:
    """Copy the manifest and model of a bundle directory or archive into work/bundle; returns that directory."""
    if os.path.isdir(source):
        root = source
    elif os.path.isfile(source) and tarfile.is_tarfile(source):
        root = _extract(source, os.path.join(work, "archive"))
    else:
        raise ModelError(f"{source}: not a bundle directory or a .tar/.tar.gz of one")
    source_bundle = read_bundle(root, verify=False)
    bundle = os.path.join(work, "bundle")
    os.mkdir(bundle)
    calibration = engines.calibration_cache_path(source_bundle)
    for path in (os.path.join(root, MANIFEST), source_bundle.model_path, *([calibration] if calibration else [])):
        shutil.copyfile(path, os.path.join(bundle, os.path.basename(path)))
    cached = os.path.join(root, engines.ENGINES)
    if os.path.isdir(cached):  # engines built where the bundle was converted: kept when they fit this device
        os.mkdir(os.path.join(bundle, engines.ENGINES))
        for name in os.listdir(cached):
            path = os.path.join(cached, name)
            if name.endswith((".engine", ".json", ".cache")) and os.path.isfile(path) and not os.path.islink(path):
                shutil.copyfile(path, os.path.join(bundle, engines.ENGINES, name))
    return bundle


def _extract(archive: str, out: str) -> str:
    """Extract regular files and directories with safe relative names, within MAX_MEMBERS, MAX_MEMBER_BYTES and
    MAX_ARCHIVE_BYTES (sizes from the headers, before anything is written); returns the folder holding manifest.json."""
    os.makedirs(out)
    try:
        with tarfile.open(archive) as tar:
            total = 0
            for count, member in enumerate(tar, 1):
                total += member.size
                if count > MAX_MEMBERS or member.size > MAX_MEMBER_BYTES or total > MAX_ARCHIVE_BYTES:
                    raise ModelError(f"{archive}: refusing an archive over the limits ({MAX_MEMBERS} files, "
                                     f"{MAX_MEMBER_BYTES >> 20} MiB a file, {MAX_ARCHIVE_BYTES >> 20} MiB in all): "
                                     f"{member.name!r} is {member.size >> 20} MiB")
                _extract_member(tar, member, archive, out)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ModelError(f"{archive}: truncated or corrupt archive ({e})") from None
    roots = [d for d, _, files in os.walk(out) if MANIFEST in files]
    if len(roots) != 1:
        raise ModelError(f"{archive}: expected one {MANIFEST} in the archive, found {len(roots)}")
    return roots[0]


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: str, out: str) -> None:
    parts = member.name.replace("\\", "/").split("/")
    if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
        raise ModelError(f"{archive}: refusing archive member {member.name!r} (absolute, '..', or a link/device)")
    path = os.path.join(out, *[p for p in parts if p not in ("", ".")])
    if member.isdir():
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    src = tar.extractfile(member)
    if src is None:  # a link or device entry: nothing to copy
        return
    with src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _version_name(bundle: Bundle) -> str:
    """<model file stem>-<first 12 hex of the manifest's sha256>; the manifest pins the model's sha256."""
    if not bundle.manifest.model.sha256:
        raise ModelError(f"{bundle.path}: the manifest has no model.sha256; the store only installs verifiable bundles")
    with open(os.path.join(bundle.path, MANIFEST), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(bundle.manifest.model.file)[0]).lstrip(".") or "model"
    return f"{stem}-{digest[:12]}"


def _seal(bundle: str) -> None:
    """Readable by the service user, and on disk: fsync every file, then its directory (engines/ included)."""
    os.chmod(bundle, 0o755)
    for name in os.listdir(bundle):
        path = os.path.join(bundle, name)
        if os.path.isdir(path):
            _seal(path)
            continue
        os.chmod(path, 0o644)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_dir(bundle)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
