"""Test helpers: where the developer data folder ../shared lives, and skipping tests that need it.

Mark a test (or a module, with `pytestmark`) `@pytest.mark.needs_shared`, or ask for the `shared` fixture;
either skips with a clear reason when the folder is absent. EDGE_SHARED overrides the location.
"""
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("EDGE_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
SKIP_REASON = f"needs the developer data folder {SHARED} (absent here; set EDGE_SHARED to point at it)"


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_shared: reads ../shared; skipped when that folder is absent")


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_shared") and not SHARED.is_dir():
        pytest.skip(SKIP_REASON)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder (skips the test when it is absent)."""
    if not SHARED.is_dir():
        pytest.skip(SKIP_REASON)
    return SHARED


def shared_file(*parts) -> Path:
    """A file under ../shared, or skip the calling test when it (or the folder) is missing."""
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} is absent ({SKIP_REASON})")
    return path


@pytest.fixture(scope="session")
def shared_path():
    """`shared_path("models", "yolo11n.onnx")` -> that file, skipping the test when it is missing."""
    return shared_file
