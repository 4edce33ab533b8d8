"""deploy/ansible: the role really runs (ansible_connection=local into a temporary root): install, an idempotent
second run with no changes, and a failed health gate that rolls the model back."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from edge.service.store import Store

from .onnx_models import tiny_bundle

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "deploy" / "ansible" / "site.yml"
ANSIBLE = shutil.which("ansible-playbook") or str(Path(sys.executable).parent / "ansible-playbook")
pytestmark = pytest.mark.skipif(not os.access(ANSIBLE, os.X_OK), reason="ansible-playbook is not installed "
                                "(pip install ansible-core; the dev extra has it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    """A temporary device root, a wheel of this checkout, two bundles and the variables pointing into the root."""
    tmp = tmp_path_factory.mktemp("ansible")
    src = shutil.copytree(ROOT, tmp / "src", ignore=shutil.ignore_patterns(
        ".*", "*.egg-info", "build", "dist", "__pycache__", "tests", "bench", "runs", "deploy"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(tmp / "dist"), src], check=True, capture_output=True, timeout=300)
    # This venv's packages minus edge itself, for the device venv (the role installs edge from the wheel).
    deps = tmp / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("edge", "__editable__")) and not entry.name.endswith(".pth"):
            (deps / entry.name).symlink_to(entry)
    device = tmp / "device"
    variables = {
        "edge_venv": f"{device}/opt/edge/venv", "edge_config_dir": f"{device}/etc/edge",
        "edge_state_dir": f"{device}/var/lib/edge", "edge_unit_dir": f"{device}/etc/systemd/system",
        "edge_incoming_dir": f"{device}/var/cache/edge/bundles", "edge_manage_service": False, "edge_jetson": True,
        "edge_wheel": str(next((tmp / "dist").glob("edge-*.whl"))), "edge_extras": [], "edge_python": sys.executable,
        "edge_pip_args": "--no-index", "edge_environment": {"PYTHONPATH": str(deps)},
        "edge_config": {"sources": [{"name": "gate", "uri": "synthetic:320x240@5"}]},
        "edge_config_validate": _has_check_config(), "edge_health_command": "true", "edge_health_retries": 1,
        "edge_health_delay": 0, "ansible_become": False,
        "edge_bundle": tiny_bundle(tmp / "bundles", "gate", 0.9),
    }
    host = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
    (tmp / "inventory.ini").write_text(f"[edge]\n{host}\n")
    return {"tmp": tmp, "device": device, "vars": variables, "second": tiny_bundle(tmp / "bundles", "gate2", 0.8)}


def _has_check_config() -> bool:
    """`edge check-config` validates the templated config when this checkout has it."""
    return subprocess.run([sys.executable, "-m", "edge", "check-config", "--help"], capture_output=True,
                          cwd=ROOT, timeout=60).returncode == 0


def playbook(site: dict, **overrides) -> tuple:
    """Run site.yml against localhost; returns (exit code, output, recap counters)."""
    extra = site["tmp"] / "vars.json"
    extra.write_text(json.dumps({**site["vars"], **overrides}))
    env = dict(os.environ, ANSIBLE_HOME=str(site["tmp"] / "ansible-home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    done = subprocess.run([ANSIBLE, "-i", str(site["tmp"] / "inventory.ini"), str(PLAYBOOK), "-e", f"@{extra}"],
                          capture_output=True, text=True, env=env, timeout=300)
    output = done.stdout + done.stderr
    recap = re.search(r"^localhost\s+:\s+(.*)$", output, re.M)
    assert recap, output
    return done.returncode, output, {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}


def test_install_then_idempotent_then_rollback_on_a_failed_health_gate(site):
    device, store = site["device"], Store(str(site["device"] / "var/lib/edge"))
    rc, out, recap = playbook(site)
    assert rc == 0 and recap["changed"] > 0 and recap["failed"] == 0, out
    first = store.link("current")
    assert first and first.startswith("gate-") and (device / "opt/edge/venv/bin/edge").exists()
    config = (device / "etc/edge/config.yaml").read_text()
    assert f"path: {device}/var/lib/edge/models/current" in config and "uri: synthetic:320x240@5" in config
    units = device / "etc/systemd/system"
    assert (units / "edge.service").read_text() == (ROOT / "systemd/edge.service").read_text()
    assert (units / "edge.service.d/jetson.conf").exists() and (units / "edge-engine-build.service").exists()
    override = (units / "edge.service.d/50-ansible.conf").read_text()
    assert f"ExecStart={device}/opt/edge/venv/bin/edge run --config {device}/etc/edge/config.yaml" in override
    if shutil.which("systemd-analyze"):  # the installed units with the role's drop-ins verify cleanly
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / "edge.service"),
                               str(units / "edge-engine-build.service")], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr

    rc, out, recap = playbook(site)
    assert rc == 0 and recap["changed"] == 0 and recap["failed"] == 0, out

    rc, out, recap = playbook(site, edge_bundle=site["second"], edge_health_command="false")
    assert rc != 0 and recap["rescued"] == 1, out
    assert "Roll back to the previous model" in out and "rolled back to the previous model" in out
    assert store.link("current") == first and store.link("previous").startswith("gate2-")
