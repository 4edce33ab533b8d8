"""`edge doctor`: what this device has (Python, libraries, backends, L4T/Pi, cameras, directories, disk) and
whether the configured model can run here; every blocking problem comes with one fix-it line."""
from __future__ import annotations

import glob
import grp
import importlib
import os
import pwd
import shutil
import stat
import sys
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

TEGRA_RELEASE = "/etc/nv_tegra_release"
PI_MODEL = "/proc/device-tree/model"
DEV_DIR = "/dev"
STATE_DIR = "/var/lib/edge"
CONFIG_DIR = "/etc/edge"
MIN_FREE_MB = 200
BACKEND_MODULES = {"onnxruntime": ("onnxruntime",), "tflite": ("ai_edge_litert", "tflite_runtime"),
                   "tensorrt": ("tensorrt", "pycuda")}
BACKEND_FIX = {"onnxruntime": "pip install 'edge[onnx]'", "tflite": "pip install 'edge[tflite]'",
               "tensorrt": "install TensorRT with JetPack (apt install nvidia-tensorrt) and "
                           "pip install 'edge[tensorrt]'"}


@dataclass
class Check:
    """One finding: status ok, info, warn or fail (fail is blocking and carries a fix-it line)."""

    name: str
    status: str
    detail: str
    fix: Optional[str] = None


def probe_module(name: str) -> Optional[str]:
    """The version of an importable module ('?' when it has none), None when it cannot be imported."""
    try:
        module = importlib.import_module(name)
    except Exception:
        return None
    return str(getattr(module, "__version__", None) or getattr(module, "VERSION", None) or "?")


def identity() -> Tuple[int, set, str]:
    """(uid, group ids, user name) of this process."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return uid, set(os.getgroups()) | {os.getgid()}, user


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().replace("\0", "").strip()
    except OSError:
        return None


def platform_checks() -> List[Check]:
    """Python, numpy, OpenCV (+GStreamer), the backends, JetPack/L4T and the Raspberry Pi model."""
    checks = [Check("python", "ok", sys.version.split()[0] + f" ({sys.executable})")]
    numpy = probe_module("numpy")
    checks.append(Check("numpy", "ok", numpy) if numpy else
                  Check("numpy", "fail", "not importable", "pip install numpy"))
    cv2 = probe_module("cv2")
    if cv2 is None:
        checks.append(Check("opencv", "fail", "not importable", "pip install opencv-python-headless"))
    else:
        checks.append(Check("opencv", "ok", f"{cv2}, GStreamer {'yes' if gstreamer() else 'no'}"))
    found = []
    for backend, modules in BACKEND_MODULES.items():
        versions = {m: probe_module(m) for m in modules}
        detail = ", ".join(f"{m} {v}" if v else f"{m} missing" for m, v in versions.items())
        if backend == "onnxruntime" and versions["onnxruntime"]:
            detail += f" (providers: {', '.join(onnx_providers())})"
        usable = all(versions.values()) if backend == "tensorrt" else any(versions.values())
        found += [backend] if usable else []
        checks.append(Check(f"backend {backend}", "ok" if usable else "info", detail))
    if not found:
        checks.append(Check("backends", "fail", "no inference backend is installed", BACKEND_FIX["onnxruntime"]
                            + " (or 'edge[tflite]'; TensorRT comes with JetPack)"))
    tegra = _read(TEGRA_RELEASE)
    if tegra:
        checks.append(Check("jetson", "ok", f"L4T {l4t_release(tegra)}"))
    model = _read(PI_MODEL)
    if model:
        checks.append(Check("board", "ok", model))
    return checks


def gstreamer() -> bool:
    """Whether OpenCV was built with GStreamer."""
    import cv2

    return any(line.strip().startswith("GStreamer:") and "YES" in line
               for line in cv2.getBuildInformation().splitlines())


def onnx_providers() -> List[str]:
    """ONNX Runtime's available execution providers."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def l4t_release(text: str) -> str:
    """'# R35 (release), REVISION: 4.1, ...' -> 'R35.4.1' (the JetPack 5.1.2 generation)."""
    head = text.splitlines()[0] if text else ""
    major = head.split("(")[0].strip("# ").strip()
    revision = head.split("REVISION:")[1].split(",")[0].strip() if "REVISION:" in head else ""
    return f"{major}.{revision}" if revision else major or "unknown"


def camera_checks(needed: List[str]) -> List[Check]:
    """Every /dev/video* and /dev/media* with owner group and access; `needed` devices must be usable."""
    uid, gids, user = identity()
    checks = []
    devices = sorted(glob.glob(os.path.join(DEV_DIR, "video*")) + glob.glob(os.path.join(DEV_DIR, "media*")))
    for path in devices:
        st = os.stat(path)
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = str(st.st_gid)
        usable = uid == 0 or _allowed(st, uid, gids)
        detail = f"{stat.filemode(st.st_mode)} group {group}" + ("" if usable else f"; {user} is not in group {group}")
        fix = f"sudo usermod -aG {group} {user} and log in again (the unit uses SupplementaryGroups=video render)"
        blocking = not usable and path in needed
        checks.append(Check(f"camera {path}", "ok" if usable else "fail" if blocking else "warn", detail,
                            fix if blocking else None))
    for path in needed:
        if path not in devices:
            checks.append(Check(f"camera {path}", "fail", "no such device",
                                "connect the camera, or fix the source in the config (ls /dev/video* lists cameras)"))
    if not devices and not needed:
        checks.append(Check("cameras", "info", f"no {DEV_DIR}/video* or {DEV_DIR}/media* devices"))
    return checks


def _allowed(st: os.stat_result, uid: int, gids: set) -> bool:
    """Read-write access by the permission bits."""
    if st.st_uid == uid:
        return st.st_mode & 0o600 == 0o600
    if st.st_gid in gids:
        return st.st_mode & 0o060 == 0o060
    return st.st_mode & 0o006 == 0o006


def directory_checks() -> List[Check]:
    """The state directory (writable, free disk) and the configuration directory (readable)."""
    state = (os.environ.get("STATE_DIRECTORY") or STATE_DIR).split(":")[0]
    config = (os.environ.get("CONFIGURATION_DIRECTORY") or CONFIG_DIR).split(":")[0]
    checks = []
    if not os.path.isdir(state):
        checks.append(Check("state dir", "warn", f"{state} does not exist (StateDirectory=edge creates it)"))
    elif not os.access(state, os.W_OK):
        checks.append(Check("state dir", "warn", f"{state} is not writable by this user (the service's is)"))
    else:
        checks.append(Check("state dir", "ok", f"{state} writable"))
    existing = state
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing) or "/"
    free_mb = shutil.disk_usage(existing).free // (1 << 20)
    low = free_mb < MIN_FREE_MB
    checks.append(Check("disk", "fail" if low else "ok", f"{free_mb} MiB free under {existing}",
                        f"free disk space under {existing} (models and engines need at least {MIN_FREE_MB} MiB)"
                        if low else None))
    readable = os.path.isdir(config) and os.access(config, os.R_OK | os.X_OK)
    checks.append(Check("config dir", "ok" if readable else "warn",
                        f"{config} " + ("readable" if readable else "missing or unreadable")))
    return checks


def default_config() -> Optional[str]:
    """$CONFIGURATION_DIRECTORY/config.yaml or /etc/edge/config.yaml when it exists."""
    path = os.path.join((os.environ.get("CONFIGURATION_DIRECTORY") or CONFIG_DIR).split(":")[0], "config.yaml")
    return path if os.path.isfile(path) else None


def config_checks(path: str) -> Tuple[List[Check], List[str]]:
    """The config is valid, its model exists and has an installed backend; also (checks, camera devices it needs)."""
    from ..errors import EdgeError
    from .config import load

    try:
        config = load(path)
    except EdgeError as e:
        return [Check("config", "fail", str(e), f"fix the config, then run edge check-config {path}")], []
    checks = [Check("config", "ok", path)]
    needed = []
    for source in config.sources:
        uri = source.uri
        if uri.startswith("/dev/video"):
            needed.append(uri)
        elif uri.lower().startswith("v4l2:") and uri[5:].isdigit():
            needed.append(os.path.join(DEV_DIR, f"video{uri[5:]}"))
        elif uri.lower().startswith("picamera2") and not (probe_module("picamera2") and probe_module("libcamera")):
            checks.append(Check(f"source {uri}", "fail", "picamera2/libcamera not importable",
                                "apt install python3-picamera2 and create the venv with --system-site-packages"))
        elif uri.lower().startswith("gst:") and probe_module("cv2") and not gstreamer():
            checks.append(Check(f"source {uri}", "fail", "this OpenCV has no GStreamer",
                                "use the distribution's OpenCV (apt install python3-opencv) in a "
                                "--system-site-packages venv"))
    checks.append(model_check(config.model))
    return checks, needed


def model_check(model) -> Check:
    """Whether the configured model exists and a backend for it is installed."""
    from ..backends import backend_for
    from ..bundle import is_bundle, read_bundle
    from ..errors import EdgeError

    path = os.path.realpath(model.path)
    if not os.path.exists(path):
        return Check("model", "fail", f"{model.path} does not exist",
                     "install a model: edge models install BUNDLE (or fix model.path)")
    try:
        model_file = read_bundle(path, verify=False).model_path if is_bundle(path) else path
        backend = model.backend or backend_for(model_file)
    except EdgeError as e:
        return Check("model", "fail", str(e), "reinstall the bundle: edge models install BUNDLE")
    modules = BACKEND_MODULES[backend]
    have = [m for m in modules if probe_module(m)]
    if (backend == "tensorrt" and len(have) < len(modules)) or not have:
        return Check("model", "fail", f"{os.path.basename(model_file)} needs {backend}, which is not installed",
                     BACKEND_FIX[backend])
    if backend == "onnxruntime" and model.providers:
        missing = [p for p in model.providers if p not in onnx_providers()]
        if missing:
            return Check("model", "fail", f"providers {', '.join(missing)} are not available",
                         f"install an onnxruntime build with them, or set model.providers to {onnx_providers()}")
    return Check("model", "ok", f"{model_file} runs on {backend}")


def diagnose(config: Optional[str]) -> List[Check]:
    """Every check, the config's when one is given (or found in the configuration directory)."""
    checks = platform_checks()
    needed: List[str] = []
    config = config or default_config()
    if config:
        found, needed = config_checks(config)
        checks += found
    return checks + camera_checks(needed) + directory_checks()


def report(checks: List[Check]) -> dict:
    """JSON-ready: ok, every check, and the fix-it lines."""
    failed = [c for c in checks if c.status == "fail"]
    return {"ok": not failed, "checks": [asdict(c) for c in checks], "fixes": [c.fix for c in failed if c.fix]}
