"""Shared pieces of the Fashion-MNIST training scripts: the data, the published DDPM "simple"
UNet (test/bench/ddpm_torch.py's eager copy of DiffusionCLIP models/ddpm/diffusion.py, with
the published state-dict names) and the linear schedule. Debian's python3-torch and numpy
only."""
import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test",
                                "bench"))
from ddpm_torch import Model as DDPM  # noqa: E402,F401

DATASET_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def read_idx(path):
    """An IDX file (ubyte images or labels) as a numpy array; sizes checked against the file."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise ValueError(f"{path}: {len(body)} bytes for shape {dims}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load_split(split, dataset_dir=DATASET_DIR):
    """(images uint8 (N, 28, 28), labels int64 (N,)) of 'train' or 't10k'."""
    images = read_idx(os.path.join(dataset_dir, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(dataset_dir, f"{split}-labels-idx1-ubyte.gz"))
    return images, labels.astype(np.int64)


def to_model_images(images_u8):
    """The models' input: padded to 32 with 2 black pixels on each side, grey replicated to 3
    channels, scaled to [-1, 1]: float32 (N, 3, 32, 32)."""
    x = np.pad(images_u8, ((0, 0), (2, 2), (2, 2))).astype(np.float32) / 127.5 - 1.0
    return np.repeat(x[:, None], 3, axis=1)


def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"


def write_report(path, report):
    with open(path + ".tmp", "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def linear_alphas_cumprod(beta_start=1e-4, beta_end=0.02, steps=1000):
    """The published schedule: float64 linspace cast to float32, float32 cumprod."""
    betas = torch.from_numpy(np.linspace(beta_start, beta_end, steps, dtype=np.float64)).float()
    return (1.0 - betas).cumprod(dim=0)


def elapsed(start):
    return round(time.time() - start, 1)
