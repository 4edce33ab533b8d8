"""python -m models.synthetic --out DIR --train N --val M --size 320 --seed 0"""
from __future__ import annotations

import argparse
import time

from . import generate


def main() -> None:
    """Generate the dataset and print where it went."""
    p = argparse.ArgumentParser(prog="python -m models.synthetic", description="Write a synthetic COCO-style dataset.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train", type=int, default=4000, help="training images")
    p.add_argument("--val", type=int, default=300, help="validation images")
    p.add_argument("--size", type=int, default=320, help="square image side (px)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    start = time.monotonic()
    paths = generate(args.out, args.train, args.val, args.size, args.seed)
    print(f"{args.train} train + {args.val} val images in {time.monotonic() - start:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in paths.items()))


if __name__ == "__main__":
    main()
