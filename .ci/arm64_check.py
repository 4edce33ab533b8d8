"""`edge detect` checks that .ci/arm64 runs inside the aarch64 root filesystem (scores and boxes: the parity tests).

    python arm64_check.py bus MODEL   # bus.jpg: the same classes as the Ultralytics reference for MODEL
    python arm64_check.py demo        # the bundled DAMO-YOLO demo model finds every shape of a generated frame
"""
import json
import os
import subprocess
import sys
import tempfile

SHARED = os.environ.get("EDGE_SHARED", "/shared")


def detect(model: str, image: str, *options: str) -> list:
    """Run the installed `edge detect --json` and return its detections."""
    out = subprocess.run(["edge", "detect", model, image, "--json", *options], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)["detections"]


def bus(model: str) -> None:
    ours = sorted(d["name"] for d in detect(f"{SHARED}/models/{model}", f"{SHARED}/images/bus.jpg"))
    reference = json.load(open(f"{SHARED}/reference/ultralytics_predict.json"))["models"][model]["images/bus.jpg"]
    want = sorted(d["name"] for d in reference["detections"])
    print(f"edge detect {model} bus.jpg: {ours}; reference: {want}")
    assert ours == want, "different objects than the reference"


def demo() -> None:
    import cv2

    from edge.demo import BUNDLE
    from edge.scene import demo_frame

    with tempfile.TemporaryDirectory() as tmp:
        image = os.path.join(tmp, "frame.png")
        cv2.imwrite(image, demo_frame(7, objects=5))
        # The thresholds `edge demo` uses.
        found = detect(BUNDLE, image, "--conf", "0.4", "--agnostic", "--no-multi-label")
    print(f"edge detect demo bundle: {len(found)} of 5 shapes: {sorted(d['name'] for d in found)}")
    assert len(found) == 5, "the demo model must find every shape"


if __name__ == "__main__":
    bus(sys.argv[2]) if sys.argv[1] == "bus" else demo()
