"""DAMO-YOLO in PyTorch: official key layout for every config, numerical conformance where references exist."""
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.damo_yolo import CONFIGS, CheckpointError, DamoYolo, load_model  # noqa: E402
from models.registry import REGISTRY, damo_entry, lookup  # noqa: E402

from .conftest import SHARED  # noqa: E402

# Every config with a reference in ../shared/damo is checked; T and Ns (skipping) when the folder is absent.
REFERENCES = [c for c in CONFIGS if (SHARED / "damo" / f"ref_{c}.pth").is_file()] or ["T", "Ns"]


def official_keys(name: str) -> list:
    path = SHARED / "damo" / f"keys_{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return [(key, list(shape)) for key, shape in json.loads(path.read_text())]


def reference(cfg: str) -> tuple:
    """(ref_<cfg>.pth path, out_<cfg>.npz) or skip."""
    pth, npz = SHARED / "damo" / f"ref_{cfg}.pth", SHARED / "damo" / f"out_{cfg}.npz"
    if not (pth.is_file() and npz.is_file()):
        pytest.skip(f"no reference for DAMO-YOLO-{cfg} in {SHARED / 'damo'}")
    return pth, np.load(npz)


def layout(model) -> list:
    return [(key, list(value.shape)) for key, value in model.state_dict().items()]


@pytest.mark.needs_shared
@pytest.mark.parametrize("cfg", list(CONFIGS))
def test_state_dict_layout_matches_official(cfg):
    model = DamoYolo(cfg)
    assert layout(model) == official_keys(cfg)
    assert layout(model.fuse()) == official_keys(f"{cfg}_deploy")
    with torch.no_grad():
        scores, boxes = model.eval()(torch.zeros(1, 3, 64, 96))
    assert scores.shape == (1, 8 * 12 + 4 * 6 + 2 * 3, 80) and boxes.shape == (1, 126, 4)


def assert_close(ours, theirs, atol: float, what: str) -> None:
    error = float(np.abs(ours.detach().numpy() - theirs).max())
    assert error <= atol, f"{what}: max abs error {error:.3g} > {atol}"


@pytest.mark.needs_shared
@pytest.mark.parametrize("cfg", REFERENCES)
def test_outputs_match_official_code(cfg):
    """Train and deploy form against the official outputs: scores within 1e-4, boxes within 0.1 px.

    Runs in float64 so that only the reference's own float32 rounding remains (measured: T 8.7e-5 / 0.05 px); a
    float32 run adds the same amount again (T train form 1.05e-4 here). The float32 path is checked end to end
    through ONNX Runtime in test_convert.py.
    """
    pth, ref = reference(cfg)
    model = load_model(str(pth), cfg).double()
    images = torch.from_numpy(ref["input"]).double()
    with torch.no_grad():
        features = model.backbone(images)
        neck = model.neck(features)
        scores, boxes = model.head(neck)
        for i in range(3):  # intermediate maps (values up to ~25) locate a structural error
            assert_close(features[i], ref[f"backbone_{i}"], 2e-3, f"backbone_{i}")
            assert_close(neck[i], ref[f"neck_{i}"], 2e-3, f"neck_{i}")
        assert_close(scores, ref["scores_trainform"], 1e-4, "train-form scores")
        assert_close(boxes, ref["boxes_trainform"], 0.1, "train-form boxes")
        scores, boxes = model.fuse()(images)
    assert_close(scores, ref["scores"], 1e-4, "deploy scores")
    assert_close(boxes, ref["boxes"], 0.1, "deploy boxes")


@pytest.mark.needs_shared
def test_checkpoint_of_another_config_fails_in_one_line():
    pth, _ = reference("T")
    with pytest.raises(CheckpointError) as info:
        load_model(str(pth), "S")
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"backbone\.block_list\.0\.conv\.conv\.weight has shape \[24, 12, 3, 3\].*\[32, 12, 3, 3\]", message)


@pytest.mark.needs_shared
def test_bare_and_module_prefixed_state_dicts_load(tmp_path):
    pth, _ = reference("Ns")
    state = torch.load(pth, map_location="cpu", weights_only=True)["model"]
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "bare.pth")
    loaded = load_model(str(tmp_path / "bare.pth"), "Ns").state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    del state["head.integral.project"]
    torch.save({"model": state}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="missing key head.integral.project"):
        load_model(str(tmp_path / "missing.pth"), "Ns")


class Payload:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""


def test_arbitrary_pickles_are_refused(tmp_path):
    torch.save({"model": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="Payload object; only plain tensor checkpoints"):
        load_model(str(tmp_path / "evil.pth"), "Ns")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(str(tmp_path / "absent.pth"), "Ns")


def test_registry_agrees_with_configs():
    for cfg in CONFIGS.values():
        entry = damo_entry(cfg.name)
        assert entry.input_size == cfg.input_size and len(entry.names) == cfg.num_classes
        assert lookup(f"/somewhere/{entry.checkpoints[0]}") is entry
    assert lookup("damoyolo_tinynasL25_S_477.pth").config == "S"
    assert lookup("damoyolo_tinynasL18_Nm.pth").config == "Nm"
    assert lookup("yolo11n.pt").family == "yolo11" and "AGPL-3.0" in REGISTRY["yolo11n"].licence
    assert "Apache-2.0" in REGISTRY["damo-yolo-s"].licence
    assert lookup("my_model.pth") is None
