#!/usr/bin/python3
"""Images of one Fashion-MNIST class in the models' form, float32 (N, 3, 32, 32) in [-1, 1],
as an .npy that `diffclip finetune --images` and `diffclip edit --image` read: the first
COUNT of that class from OFFSET on, in the split's order (the demo fine-tunes on the training
split and edits held-out images of the test split).

usage: fashion_images.py OUT.npy --split train|t10k --class sneaker [--count N] [--offset K]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--split", required=True, choices=["train", "t10k"])
    ap.add_argument("--class", dest="name", required=True, choices=common.CLASSES)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--dataset", default=common.DATASET_DIR)
    args = ap.parse_args()
    images, labels = common.load_split(args.split, args.dataset)
    chosen = np.flatnonzero(labels == common.CLASSES.index(args.name))
    chosen = chosen[args.offset:args.offset + args.count]
    if len(chosen) < args.count:
        raise SystemExit(f"fashion_images.py: only {len(chosen)} {args.name} images in "
                         f"{args.split} from {args.offset}")
    np.save(args.out, common.to_model_images(images[chosen]))


if __name__ == "__main__":
    main()
