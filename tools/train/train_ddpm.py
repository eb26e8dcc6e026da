#!/usr/bin/python3
"""Trains the demo's DDPM "simple" UNet (the published CelebA-HQ architecture, scaled down:
ch 32, ch_mult 1,2,2, one res block, attention at 16) on the Fashion-MNIST training split at
32 x 32, with the published linear schedule and the epsilon loss of Ho et al. Seeded and
resumable (a checkpoint every --save-every steps); writes the EMA weights as a published-style
state dict (plain names, float32), its YAML config and a JSON report (time, machine, loss).

usage: train_ddpm.py OUT_DIR [--steps N] [--batch B] [--threads T]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = dict(ch=32, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[16], resolution=32)

YAML = """data:
    dataset: "FashionMNIST"
    category: "FashionMNIST"
    image_size: 32
    channels: 3
    rescaled: true

model:
    type: "simple"
    in_channels: 3
    out_ch: 3
    ch: 32
    ch_mult: [1, 2, 2]
    num_res_blocks: 1
    attn_resolutions: [16, ]
    dropout: 0.0
    var_type: fixedsmall
    ema_rate: {ema}
    ema: True
    resamp_with_conv: True

diffusion:
    beta_schedule: linear
    beta_start: 0.0001
    beta_end: 0.02
    num_diffusion_timesteps: 1000
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--save-every", type=int, default=250)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    state_path = os.path.join(args.out, "ddpm_train_state.pt")

    common.seed_everything(args.seed)
    images, _ = common.load_split("train")
    data = torch.from_numpy(common.to_model_images(images))
    model = common.DDPM(**CONFIG)
    ema = common.DDPM(**CONFIG)
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    abar = common.linear_alphas_cumprod()
    gen = torch.Generator().manual_seed(args.seed)
    step, spent, losses = 0, 0.0, []
    if os.path.exists(state_path):
        st = torch.load(state_path)
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        step, spent, losses = st["step"], st["spent"], st["losses"]
        print(f"resumed at step {step}", flush=True)

    model.train()
    start = time.time() - spent
    while step < args.steps:
        idx = torch.randint(0, data.shape[0], (args.batch,), generator=gen)
        x0 = data[idx]
        flip = torch.rand(args.batch, generator=gen) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = (model(xt, t.float()) - noise).pow(2).mean()
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        losses.append(float(loss))
        step += 1
        if step % 50 == 0:
            print(f"step {step}/{args.steps} loss(last 50) {np.mean(losses[-50:]):.4f} "
                  f"{common.elapsed(start)} s", flush=True)
        if step % args.save_every == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(),
                        "opt": opt.state_dict(), "gen": gen.get_state(), "step": step,
                        "spent": time.time() - start, "losses": losses}, state_path + ".tmp")
            os.replace(state_path + ".tmp", state_path)

    # Published-style: torch.save of a plain state dict of float32 tensors.
    torch.save(ema.state_dict(), os.path.join(args.out, "ddpm.pt"))
    with open(os.path.join(args.out, "ddpm.yml"), "w") as f:
        f.write(YAML.format(ema=args.ema))
    common.write_report(os.path.join(args.out, "ddpm_report.json"), {
        "command": " ".join(sys.argv), "steps": step, "batch": args.batch,
        "seconds": common.elapsed(start), "machine": common.machine_description(),
        "final_loss_mean_last_500": float(np.mean(losses[-500:])),
        "parameters": sum(p.numel() for p in model.parameters())})
    print(f"done: {step} steps in {common.elapsed(start)} s", flush=True)


if __name__ == "__main__":
    main()
