#!/usr/bin/python3
"""The demo's measurement: the independent classifier (train_classifier.py) judges edited
and reconstructed Fashion-MNIST images, and the reconstructions are compared with the
originals (MAE on [0, 1] and SSIM, skimage's structural_similarity with a Gaussian window,
sigma 1.5, as the paper's measures).

usage: judge.py --classifier classifier.pt --originals X.npy --target CLASS
                [--edits DIR] [--reconstructions DIR] [--grids DIR] [--json OUT]
DIR holds the PNGs `diffclip edit -o DIR/` wrote for X.npy (X[i] -> <name>_<i>.png, in
index order); --grids DIR those of `diffclip edit --grid -o DIR/` (original | reconstruction |
edit side by side), from which both the reconstructions and the edits are read. Prints one
line per measure; --json also writes them."""
import argparse
import json
import os
import re
import sys

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import train_classifier  # noqa: E402


def read_dir(path, count):
    """The PNGs of `path` in the order of the number before their extension, as float32
    (N, 3, H, W) in [-1, 1]."""
    def index(name):
        numbers = re.findall(r"(\d+)", name)
        return int(numbers[-1]) if numbers else -1
    names = sorted((n for n in os.listdir(path) if n.endswith(".png")), key=index)
    if len(names) != count:
        raise SystemExit(f"judge.py: {path} holds {len(names)} PNGs, expected {count}")
    images = [np.asarray(Image.open(os.path.join(path, n)).convert("RGB"), dtype=np.float32)
              for n in names]
    return np.stack(images).transpose(0, 3, 1, 2) / 127.5 - 1.0


def split_grids(grids, originals):
    """(reconstructions, edits) from (N, 3, H, 3 W) grids whose first column must be the
    originals (a check that the grids are of these images, in this order)."""
    width = originals.shape[3]
    if grids.shape[3] != 3 * width or grids.shape[2] != originals.shape[2]:
        raise SystemExit(f"judge.py: grids of {grids.shape[2]} x {grids.shape[3]}, expected "
                         f"{originals.shape[2]} x {3 * width}")
    if np.abs(grids[..., :width] - originals).max() > 2.5 / 127.5:
        raise SystemExit("judge.py: the grids' first column is not the originals")
    return grids[..., width:2 * width], grids[..., 2 * width:]


def share_of(model, images, target):
    predicted = train_classifier.predict(model, images.astype(np.float32))
    return float((predicted == target).mean()), np.bincount(predicted, minlength=10)


def reconstruction_measures(originals, reconstructions):
    a = (originals[:, 0] + 1) / 2
    b = (reconstructions[:, 0] + 1) / 2
    mae = float(np.abs(a - b).mean())
    ssim = float(np.mean([structural_similarity(x, y, data_range=1.0, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False)
                          for x, y in zip(a, b)]))
    return mae, ssim


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--originals", required=True)
    ap.add_argument("--target", required=True, choices=common.CLASSES)
    ap.add_argument("--edits")
    ap.add_argument("--reconstructions")
    ap.add_argument("--grids")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = train_classifier.load(args.classifier)
    originals = np.load(args.originals)
    target = common.CLASSES.index(args.target)
    result = {"images": int(originals.shape[0]), "target": args.target}
    result["originals_as_target"] = share_of(model, originals, target)[0]
    found = {"edits": args.edits and read_dir(args.edits, originals.shape[0]),
             "reconstructions": args.reconstructions and read_dir(args.reconstructions,
                                                                  originals.shape[0])}
    if args.grids:
        grids = read_dir(args.grids, originals.shape[0])
        found["reconstructions"], found["edits"] = split_grids(grids, originals)
    for key, images in found.items():
        if images is not None:
            share, counts = share_of(model, images, target)
            result[f"{key}_as_target"] = share
            result[f"{key}_classes"] = {c: int(n) for c, n in zip(common.CLASSES, counts) if n}
            if key == "reconstructions":
                result["reconstruction_mae"], result["reconstruction_ssim"] = \
                    reconstruction_measures(originals, images)
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.json:
        common.write_report(args.json, result)


if __name__ == "__main__":
    main()
