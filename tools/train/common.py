"""Shared pieces of the Fashion-MNIST training scripts: the data, the published DDPM "simple"
UNet (DiffusionCLIP models/ddpm/diffusion.py, state-dict names as published) and the linear
schedule. Debian's python3-torch and numpy only."""
import gzip
import json
import math
import os
import platform
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

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


# ---- the DDPM "simple" UNet (REFERENCE 2.1) ----

def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) *
                      -(math.log(10000.0) / (half - 1)))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def norm(ch):
    return nn.GroupNorm(32, ch, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, temb_ch, dropout):
        super().__init__()
        self.norm1 = norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_ch, cout)
        self.norm2 = norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm = norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * (c ** -0.5), dim=2)
        v = v.reshape(b, c, hh * ww)
        h = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DDPM(nn.Module):
    """config: the `model:` section of a published YAML (ch, ch_mult, num_res_blocks,
    attn_resolutions, dropout, in_channels, out_ch) plus image_size."""

    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, dropout, image_size,
                 in_channels=3, out_ch=3):
        super().__init__()
        self.ch, self.temb_ch = ch, ch * 4
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, self.temb_ch),
                                         nn.Linear(self.temb_ch, self.temb_ch)])
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        curr_res = image_size
        in_ch_mult = (1,) + tuple(ch_mult)
        self.down = nn.ModuleList()
        block_in = ch
        for level in range(self.num_resolutions):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_in = ch * in_ch_mult[level]
            block_out = ch * ch_mult[level]
            for _ in range(num_res_blocks):
                block.append(ResnetBlock(block_in, block_out, self.temb_ch, dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            down = nn.Module()
            down.block, down.attn = block, attn
            if level != self.num_resolutions - 1:
                down.downsample = Downsample(block_in)
                curr_res //= 2
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, self.temb_ch, dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in, self.temb_ch, dropout)
        self.up = nn.ModuleList()
        for level in reversed(range(self.num_resolutions)):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * ch_mult[level]
            skip_in = ch * ch_mult[level]
            for i in range(num_res_blocks + 1):
                if i == num_res_blocks:
                    skip_in = ch * in_ch_mult[level]
                block.append(ResnetBlock(block_in + skip_in, block_out, self.temb_ch, dropout))
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            up = nn.Module()
            up.block, up.attn = block, attn
            if level != 0:
                up.upsample = Upsample(block_in)
                curr_res *= 2
            self.up.insert(0, up)
        self.norm_out = norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, x, t):
        temb = timestep_embedding(t, self.ch)
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](temb)))
        hs = [self.conv_in(x)]
        for level in range(self.num_resolutions):
            for b in range(self.num_res_blocks):
                h = self.down[level].block[b](hs[-1], temb)
                if len(self.down[level].attn) > 0:
                    h = self.down[level].attn[b](h)
                hs.append(h)
            if level != self.num_resolutions - 1:
                hs.append(self.down[level].downsample(hs[-1]))
        h = hs[-1]
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h, temb)), temb)
        for level in reversed(range(self.num_resolutions)):
            for b in range(self.num_res_blocks + 1):
                h = self.up[level].block[b](torch.cat([h, hs.pop()], dim=1), temb)
                if len(self.up[level].attn) > 0:
                    h = self.up[level].attn[b](h)
            if level != 0:
                h = self.up[level].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def linear_alphas_cumprod(beta_start=1e-4, beta_end=0.02, steps=1000):
    """The published schedule: float64 linspace cast to float32, float32 cumprod."""
    betas = torch.from_numpy(np.linspace(beta_start, beta_end, steps, dtype=np.float64)).float()
    return (1.0 - betas).cumprod(dim=0)


def elapsed(start):
    return round(time.time() - start, 1)
