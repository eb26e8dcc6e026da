#!/usr/bin/python3
"""Trains the demo's small CLIP: OpenAI's architecture (clip/model.py: a ViT image tower with
ln_pre/ln_post and a class token, the causal text transformer over the real 49,408-token BPE
vocabulary, QuickGELU, fp32 LayerNorm), sized for 32 x 32 inputs (patch 4, grid 8).
A tiny CLIP is easy to fool: fine-tuning against an unconstrained one turned edits cyan, and
against a colour-blind one covered them in fine noise, while its directional similarity
climbed. So the patch embedding is constrained (constrain_patch_embedding): its three input
channels are tied (weight of channel c = std_c * u) and u is constant over 2 x 2 pixel
blocks, so the image tower sees only the grey 16 x 16 block means, exactly; and the
training images are shifted and noised, so that fine detail carries no class. Trained
contrastively on Fashion-MNIST training images and captions made from their class names with
the 79 ImageNet templates; an image's positives are all captions of its class. Writes a
TorchScript archive as the published ViT-B-16.pt is (float16 weights where CLIP's
convert_weights casts them), and a JSON report with the zero-shot accuracy on the test split.

The tokens come from the library's own tokenizer: `diffclip tokenize` (DIFFCLIP=path).
usage: train_clip.py OUT_DIR --diffclip BIN --vocab bpe_simple_vocab_16e6.txt.gz
                     --templates imagenet_templates.txt [--steps N] [--threads T]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

VISION = dict(width=128, layers=4, patch=4, resolution=32)
TEXT = dict(width=64, layers=3, context=77, vocab=49408)
EMBED_DIM = 64


class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, heads, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, d * 4)),
                                              ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d * 4, d))]))
        self.ln_2 = LayerNorm(d)
        self.attn_mask = attn_mask

    def forward(self, x):
        mask = self.attn_mask.to(x.dtype) if self.attn_mask is not None else None
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask)
                                         for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, resolution, patch, width, layers, heads, output_dim):
        super().__init__()
        self.input_resolution = resolution
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((resolution // patch) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1],
                                                             dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self):
        super().__init__()
        v, t = VISION, TEXT
        self.context_length = t["context"]
        self.visual = VisionTransformer(v["resolution"], v["patch"], v["width"], v["layers"],
                                        v["width"] // 64, EMBED_DIM)
        mask = torch.empty(t["context"], t["context"]).fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(t["width"], t["layers"], t["width"] // 64, mask)
        self.vocab_size = t["vocab"]
        self.token_embedding = nn.Embedding(t["vocab"], t["width"])
        self.positional_embedding = nn.Parameter(torch.empty(t["context"], t["width"]))
        self.ln_final = LayerNorm(t["width"])
        self.text_projection = nn.Parameter(torch.empty(t["width"], EMBED_DIM))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=t["width"] ** -0.5)

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def encode_image(self, image):
        return self.visual(image.type(self.dtype))

    def encode_text(self, text):
        x = self.token_embedding(text).type(self.dtype) + self.positional_embedding.type(self.dtype)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x).type(self.dtype)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        img = F.normalize(self.encode_image(image), dim=-1)
        txt = F.normalize(self.encode_text(text), dim=-1)
        scale = self.logit_scale.exp()
        return scale * img @ txt.t(), scale * txt @ img.t()


def convert_weights(model):
    """CLIP's convert_weights: float16 conv/linear weights, attention projections and the two
    projection matrices; LayerNorm, embeddings and logit_scale stay float32."""
    def cast(m):
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            m.weight.data = m.weight.data.half()
            if m.bias is not None:
                m.bias.data = m.bias.data.half()
        if isinstance(m, nn.MultiheadAttention):
            for name in ["in_proj_weight", "in_proj_bias", "bias_k", "bias_v"]:
                p = getattr(m, name)
                if p is not None:
                    p.data = p.data.half()
        for name in ["text_projection", "proj"]:
            if hasattr(m, name) and getattr(m, name) is not None:
                getattr(m, name).data = getattr(m, name).data.half()
    model.apply(cast)


# CLIP's image normalisation, applied to [0, 1] images (preprocess of DiffusionCLIP, 4.1).
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])[None, :, None, None]
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])[None, :, None, None]


def constrain_patch_embedding(conv1, block=2):
    """Projects the patch embedding (least squares) onto weights std_c * u with u constant
    over block x block pixels: after clip_input's per-channel normalisation,
    sum_c w_c (x_c - m_c) / std_c = u (sum_c x_c - const), so the embedding depends on the
    channels' sum averaged over blocks only, and its gradient is equal across channels and
    within a block."""
    with torch.no_grad():
        s = STD.view(1, 3, 1, 1)
        u = (conv1.weight * s).sum(1, keepdim=True) / (s * s).sum()
        o, _, h, w = u.shape
        u = u.reshape(o, 1, h // block, block, w // block, block).mean((3, 5), keepdim=True)
        u = u.expand(o, 1, h // block, block, w // block, block).reshape(o, 1, h, w)
        conv1.weight.copy_(u * s)


def augment(x, gen):
    """Random shifts of up to 2 pixels and, on half the images, Gaussian noise of standard
    deviation up to 0.3 (images in [-1, 1])."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
    sigma = torch.rand(n, generator=gen) * 0.3 * (torch.rand(n, generator=gen) < 0.5)
    return x + sigma[:, None, None, None] * torch.randn(x.shape, generator=gen)


def clip_input(x_pm1):
    return ((x_pm1 + 1) / 2 - MEAN) / STD


def tokenize(diffclip, vocab, texts):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "t.npy")
        subprocess.run([diffclip, "tokenize", "--vocab", vocab, "--out", out, "--"] + texts,
                       check=True)
        return torch.from_numpy(np.load(out))


def caption(template, name):
    return template.format(name)


def zero_shot_accuracy(model, text_tokens, images, labels, batch=500):
    """Class text features are the normalised mean over templates (CLIP's zero-shot recipe)."""
    model.eval()
    with torch.no_grad():
        txt = F.normalize(model.encode_text(text_tokens).float(), dim=-1)
        txt = F.normalize(txt.reshape(len(common.CLASSES), -1, txt.shape[-1]).mean(1), dim=-1)
        correct = 0
        for i in range(0, len(images), batch):
            x = clip_input(torch.from_numpy(common.to_model_images(images[i:i + batch])))
            img = F.normalize(model.encode_image(x).float(), dim=-1)
            correct += int((img @ txt.t()).argmax(1).eq(torch.from_numpy(labels[i:i + batch])).sum())
    model.train()
    return correct / len(images)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--diffclip", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--templates", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    common.seed_everything(args.seed)
    start = time.time()

    with open(args.templates) as f:
        templates = [line.rstrip("\n") for line in f if line.strip()]
    texts = [caption(t, c) for c in common.CLASSES for t in templates]
    tokens = tokenize(args.diffclip, args.vocab, texts).reshape(len(common.CLASSES), len(templates), -1)
    images, labels = common.load_split("train")
    test_images, test_labels = common.load_split("t10k")
    data = torch.from_numpy(common.to_model_images(images))
    lab = torch.from_numpy(labels)

    model = CLIP()
    constrain_patch_embedding(model.visual.conv1)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    losses = []
    for step in range(args.steps):
        idx = torch.randint(0, data.shape[0], (args.batch,), generator=gen)
        x = data[idx]
        flip = torch.rand(args.batch, generator=gen) < 0.5
        x = augment(torch.where(flip[:, None, None, None], x.flip(3), x), gen)
        y = lab[idx]
        tmpl = torch.randint(0, len(templates), (args.batch,), generator=gen)
        text = tokens[y, tmpl]
        logits_img, logits_txt = model(clip_input(x), text)
        # Every caption of an image's class is a positive: soft targets over the batch.
        same = (y[:, None] == y[None, :]).float()
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (torch.sum(-target * F.log_softmax(logits_img, 1), 1).mean() +
                      torch.sum(-target * F.log_softmax(logits_txt, 1), 1).mean())
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        constrain_patch_embedding(model.visual.conv1)
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        losses.append(float(loss))
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{args.steps} loss(last 50) {np.mean(losses[-50:]):.4f} "
                  f"{common.elapsed(start)} s", flush=True)

    flat = tokens.reshape(-1, tokens.shape[-1])
    accuracy = zero_shot_accuracy(model, flat, test_images, test_labels)
    print(f"zero-shot accuracy on the test split: {accuracy:.4f}", flush=True)
    model.eval()
    # Traced in float32 (CPU float16 kernels are incomplete in torch 1.13), then the weights
    # CLIP's convert_weights casts are stored as float16, as in the published archives.
    example_img = torch.zeros(1, 3, VISION["resolution"], VISION["resolution"])
    example_txt = flat[:1]
    with torch.no_grad():
        traced = torch.jit.trace_module(model, {"forward": (example_img, example_txt),
                                                "encode_image": example_img,
                                                "encode_text": example_txt}, check_trace=False)
    # Beyond convert_weights, the token embedding (most of the file) is stored as float16
    # too: the library reads any float16 tensor; LayerNorm and logit_scale stay float32.
    convert_weights(model)
    half = {name for name, p in model.named_parameters() if p.dtype == torch.float16}
    half.add("token_embedding.weight")
    for name, p in traced.named_parameters():
        if name in half:
            p.data = p.data.half()
    path = os.path.join(args.out, "clip.pt")
    traced.save(path + ".tmp")
    os.replace(path + ".tmp", path)
    common.write_report(os.path.join(args.out, "clip_report.json"), {
        "command": " ".join(sys.argv), "steps": args.steps, "batch": args.batch,
        "seconds": common.elapsed(start), "machine": common.machine_description(),
        "final_loss_mean_last_100": float(np.mean(losses[-100:])),
        "zero_shot_test_accuracy": accuracy,
        "parameters": sum(p.numel() for p in model.parameters())})


if __name__ == "__main__":
    main()
