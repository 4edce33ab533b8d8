"""systemd/ units: `systemd-analyze verify` passes on every unit and drop-in, and the hardening is what the issue asks."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"
BINARY = "/opt/edge/venv/bin/edge"
pytestmark = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed "
                                "(apt-get install systemd; .ci/run installs it)")


def directives(path: Path) -> dict:
    """{(section, key): [values...]} of a unit file or drop-in; repeated keys keep every value."""
    found, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if re.fullmatch(r"\[\w+\]", line):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            found.setdefault((section, key.strip()), []).append(value.strip())
    return found


def verify(unit_dir: Path, *units: str) -> str:
    """systemd-analyze's complaints about `units` (with their drop-ins), with edge's binary stubbed; '' when clean.

    systemd 252 exits 0 on unknown keys and unparsable values and only warns, so any output counts as a failure.
    """
    stub = unit_dir / "edge"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    for unit in unit_dir.glob("*.service"):
        unit.write_text(unit.read_text().replace(BINARY, str(stub)))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *[str(unit_dir / u) for u in units]],
                          capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr).strip() or ("" if done.returncode == 0 else f"exit {done.returncode}")


@pytest.fixture
def copy(tmp_path) -> Path:
    return Path(shutil.copytree(UNITS, tmp_path / "systemd"))


def test_every_unit_and_drop_in_verifies(copy):
    units = sorted(p.name for p in UNITS.glob("*.service"))
    assert units == ["edge-engine-build.service", "edge.service"]
    assert verify(copy, *units) == ""


@pytest.mark.parametrize("breakage", ["Restartt=on-failure", "WatchdogSec=soon", "Type=notifyy", "DeviceAllow=video0 rw"])
def test_a_broken_unit_fails_verification(copy, breakage):
    unit = copy / "edge.service"
    unit.write_text(unit.read_text().replace("[Service]\n", f"[Service]\n{breakage}\n", 1))
    assert verify(copy, "edge.service") != ""


def test_a_broken_drop_in_fails_verification(copy):
    (copy / "edge.service.d" / "jetson.conf").write_text("[Service]\nBindPath=/tmp/argus_socket\n")
    assert "BindPath" in verify(copy, "edge.service")


@pytest.mark.skipif(Path(BINARY).exists(), reason=f"{BINARY} is installed on this machine")
def test_a_missing_binary_fails_verification(tmp_path):
    unit = tmp_path / "edge.service"
    unit.write_text((UNITS / "edge.service").read_text())
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "is not executable" in done.stderr


def test_edge_service_has_the_required_directives():
    d = directives(UNITS / "edge.service")
    service = {key: values for (section, key), values in d.items() if section == "Service"}
    expected = {"Type": "notify", "NotifyAccess": "main", "ExecStart": f"{BINARY} run --config /etc/edge/config.yaml",
                "ExecReload": "/bin/kill -HUP $MAINPID", "WatchdogSec": "30s", "Restart": "on-failure",
                "RestartPreventExitStatus": "78", "DynamicUser": "yes", "SupplementaryGroups": "video render",
                "DevicePolicy": "closed", "StateDirectory": "edge", "ConfigurationDirectory": "edge",
                "ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                "LockPersonality": "yes", "Environment": "PYTHONUNBUFFERED=1"}
    assert {k: service.get(k, [None])[-1] for k in expected} == expected
    assert {"char-video4linux rw", "char-media rw", "char-dma_heap rw"} <= set(service["DeviceAllow"])
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(service["RestrictAddressFamilies"][0].split())
    assert int(service["TimeoutStartSec"][0].rstrip("s")) >= 120


def test_no_unit_uses_private_devices():
    files = [p for p in UNITS.rglob("*") if p.suffix in (".service", ".conf")]
    assert len(files) == 3
    for path in files:
        assert not [k for _, k in directives(path) if k == "PrivateDevices"], f"{path} sets PrivateDevices="


def test_jetson_drop_in_and_engine_build_oneshot():
    jetson = directives(UNITS / "edge.service.d" / "jetson.conf")
    assert jetson[("Service", "BindPaths")] == ["/tmp/argus_socket"]
    assert "nvargus-daemon.service" in jetson[("Unit", "After")][0].split()
    assert {"/dev/nvmap rw", "/dev/nvhost-ctrl rw", "/dev/nvhost-gpu rw"} <= set(jetson[("Service", "DeviceAllow")])
    assert "edge-engine-build.service" in jetson[("Unit", "Wants")][0].split()
    build = directives(UNITS / "edge-engine-build.service")
    assert build[("Service", "Type")] == ["oneshot"] and build[("Unit", "Before")] == ["edge.service"]
    assert build[("Service", "ExecStart")] == [f"{BINARY} models build-engine"]
    assert build[("Service", "TimeoutStartSec")] == ["60min"]
    assert build[("Service", "User")] == directives(UNITS / "edge.service")[("Service", "User")]
