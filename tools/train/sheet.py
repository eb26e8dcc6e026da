#!/usr/bin/python3
"""One picture a person can look at from the PNGs `diffclip edit|transition -o DIR/` wrote:
the first ROWS of them (in the order of the number in their names) stacked, enlarged SCALE
times with square pixels (the demo's images are 32 x 32).

usage: sheet.py DIR OUT.png [--rows K] [--scale S]
"""
import argparse
import os
import re

import numpy as np
from PIL import Image


def index(name):
    numbers = re.findall(r"(\d+)", name)
    return int(numbers[-1]) if numbers else -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args()
    names = sorted((n for n in os.listdir(args.folder) if n.endswith(".png")), key=index)
    rows = [np.asarray(Image.open(os.path.join(args.folder, n)).convert("RGB"))
            for n in names[:args.rows]]
    if not rows or any(r.shape != rows[0].shape for r in rows):
        raise SystemExit(f"sheet.py: {args.folder}: no PNGs, or PNGs of different sizes")
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    sheet.resize((sheet.width * args.scale, sheet.height * args.scale), Image.NEAREST).save(args.out)


if __name__ == "__main__":
    main()
