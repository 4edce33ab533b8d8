"""The synthetic shapes dataset: deterministic, and its COCO annotations describe what is drawn."""
import json

import cv2
import numpy as np

from edge.scene import CLASSES, demo_frame
from models.synthetic import generate, image_rng, sample


def test_same_seed_same_dataset_other_seed_other_dataset(tmp_path):
    a, b, c = (generate(str(tmp_path / name), 3, 2, size=96, seed=seed) for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    for split in ("train", "val"):
        assert open(a[split]).read() == open(b[split]).read()
        for name in ("000000.jpg", "000001.jpg"):
            assert (tmp_path / "a" / split / name).read_bytes() == (tmp_path / "b" / split / name).read_bytes()
    assert (tmp_path / "a/train/000000.jpg").read_bytes() != (tmp_path / "c/train/000000.jpg").read_bytes()
    image, objects = sample(image_rng(5, "train", 1), 96)
    again, same = sample(image_rng(5, "train", 1), 96)
    assert np.array_equal(image, again) and objects == same
    assert np.array_equal(demo_frame(3), demo_frame(3)) and not np.array_equal(demo_frame(3), demo_frame(4))


def test_annotations_are_consistent(tmp_path):
    paths = generate(str(tmp_path), 25, 5, size=128, seed=0)
    assert open(paths["names"]).read().split() == list(CLASSES)
    for split in ("train", "val"):
        coco = json.load(open(paths[split]))
        assert [c["name"] for c in coco["categories"]] == list(CLASSES)
        category_ids = {c["id"] for c in coco["categories"]}
        images = {im["id"]: im for im in coco["images"]}
        assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
        assert {a["image_id"] for a in coco["annotations"]} == set(images)  # every image has objects
        for a in coco["annotations"]:
            im = images[a["image_id"]]
            x, y, w, h = a["bbox"]
            assert a["category_id"] in category_ids and a["iscrowd"] == 0
            assert w >= 3 and h >= 3 and x >= 0 and y >= 0 and x + w <= im["width"] and y + h <= im["height"]
            assert 0 < a["area"] <= w * h
        for im in coco["images"]:
            pixels = cv2.imread(str(tmp_path / split / im["file_name"]))
            assert pixels.shape == (im["height"], im["width"], 3)

