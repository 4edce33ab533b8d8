"""The DAMO-YOLO trainer runs and writes a checkpoint edge-convert accepts (the full run is a script, not CI)."""
import os

import pytest

from edge.scene import CLASSES
from models.synthetic import generate


def test_two_iterations_on_four_tiny_images_give_a_convertible_checkpoint(tmp_path, capsys):  # ~5 s idle
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from converters.cli import main as convert
    from models.damo_yolo.train import train

    generate(str(tmp_path / "data"), 4, 0, size=96, seed=0)
    ckpt = train(str(tmp_path / "data"), str(tmp_path / "tiny.pth"), imgsz=96, batch=2, max_iters=2)
    state = torch.load(ckpt, weights_only=True)
    assert set(state) == {"model"} and state["model"]["head.gfl_cls.0.weight"].shape[0] == len(CLASSES)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    out = tmp_path / "bundle"
    assert convert([ckpt, "--family", "damo-yolo", "--config", "Ns", "--imgsz", "96", "--names", ",".join(CLASSES),
                    "--out", str(out)]) == 0, capsys.readouterr().err
    assert os.path.isfile(out / "manifest.json")
