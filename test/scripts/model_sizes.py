"""Models whose image size is not the old guess 8 * 2^(levels - 1), run at their own size by
the CLI with and without their YAML config, against a re-implementation of the published
DDPM UNet (models/ddpm/diffusion.py) and DDIM maths (utils/diffusion_utils.py,
diffusionclip.py) written from REFERENCE.md §2.1, §3 with PyTorch:

- A: ch_mult 1,2,2,2 with attention at 16 x 16, trained at 32 (ermongroup/ddim's CIFAR-10
  layout; the old guess said 64);
- B: 3 levels with attention at 16 x 16, trained at 64 (the old guess said 32); its config
  has its own schedule (betas 2e-4 .. 0.03 over 900 steps) and an unknown beta_schedule;
- C: 3 levels without attention: the weights do not tell its size.

Inversion, generation, edit, transition and translate (photos and arrays, the arrays also at
another size the UNet takes) must match within the golden tolerance, 1e-4 * (1 + max|ref|);
fine-tuning must run from arrays and photos at the model's size. Prints one verdict per
check and the closing count. Needs torch and numpy (Debian's python3-torch); without them
the checks are SKIPPED, or FAIL under CI=true. Environment: DC_CLI, DC_GOLDEN, DC_CLIP_DATA.
"""
import os
import subprocess
import sys
import tempfile

results = {"passed": 0, "failed": 0, "skipped": 0}


def verdict(ok, name, why="", measured=""):
    if ok:
        print("PASS model_sizes/%s%s" % (name, measured))
        results["passed"] += 1
    else:
        print("FAIL model_sizes/%s: %s" % (name, why))
        results["failed"] += 1


def skip(name, why):
    if os.environ.get("CI") == "true":
        verdict(False, name, why + " (required under CI=true)")
    else:
        print("SKIP model_sizes/%s: SKIPPED, %s" % (name, why))
        results["skipped"] += 1


def finish():
    print("%d passed, %d failed, %d skipped" % (results["passed"], results["failed"],
                                                 results["skipped"]))
    sys.exit(1 if results["failed"] else 0)


try:
    import numpy as np
    import torch
    from PIL import Image
except ImportError as e:
    skip("all", "torch, numpy or PIL is absent (%s)" % e)
    finish()

torch.set_num_threads(1)

# ---- the published DDPM UNet (REFERENCE §2.1): the benchmark's eager copy of it ----

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from ddpm_torch import Model  # noqa: E402


def DDPM(ch, ch_mult, nrb, attn_resolutions, resolution):
    return Model(ch=ch, ch_mult=ch_mult, num_res_blocks=nrb, attn_resolutions=attn_resolutions,
                 resolution=resolution)


# ---- the published DDIM maths, from REFERENCE §3 ----


def alphas_cumprod(beta_start, beta_end, T):
    betas = torch.from_numpy(np.linspace(beta_start, beta_end, T, dtype=np.float64)).float()
    return (1.0 - betas).cumprod(dim=0)


def seq_of(t0, n):
    return [int(s) for s in np.linspace(0, 1, n) * t0]


def eps_mix(models, weights, x, t):
    tt = torch.ones(x.shape[0]) * t
    et = None
    for m, w in zip(models, weights):
        if w == 0:
            continue
        e = m(x, tt) * w
        et = e if et is None else et + e
    return et


def ddim_step(x, t, t_next, models, weights, abar):
    et = eps_mix(models, weights, x, t)
    at = abar[t]
    at_next = abar[t_next] if t_next >= 0 else torch.tensor(1.0)
    x0_t = (x - et * (1 - at).sqrt()) / at.sqrt()
    return at_next.sqrt() * x0_t + (1 - at_next).sqrt() * et


def invert(x, model, t0, n, abar):
    seq = seq_of(t0, n)
    for i, j in zip(([-1] + seq[:-1])[1:], seq[1:]):
        x = ddim_step(x, i, j, [model], [1.0], abar)
    return x


def generate(x, models, weights, t0, n, abar):
    seq = seq_of(t0, n)
    for i, j in zip(reversed(seq), reversed([-1] + seq[:-1])):
        x = ddim_step(x, i, j, models, weights, abar)
    return x


def translate(x, models, weights, t0, inv, gen, repeats, projection, seed, abar):
    torch.manual_seed(seed)
    at = abar[t0 - 1]
    for _ in range(repeats):
        x = at.sqrt() * x + (1 - at).sqrt() * torch.randn(x.shape)
        x = generate(x, models[:1], [1.0], t0, projection, abar)
    return generate(invert(x, models[0], t0, inv, abar), models, weights, t0, gen, abar)


# ---- the checks ----

CLI = os.environ.get("DC_CLI", "build/bin/diffclip")
GOLDEN = os.environ.get("DC_GOLDEN", "../shared/golden")
CLIP_DATA = os.environ.get("DC_CLIP_DATA", "../shared/clip")
T0, INV, GEN = 300, 5, 4


def cli(*args):
    p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True,
                       env=dict(os.environ, DIFFCLIP_NUM_THREADS="1"))
    return p.returncode, p.stdout + p.stderr


def close(name, ours_path, ref):
    try:
        ours = np.load(ours_path)
    except Exception as e:
        verdict(False, name, "no output: %s" % e)
        return
    ref = ref.detach().numpy()
    if ours.shape != ref.shape:
        verdict(False, name, "shape %s, expected %s" % (ours.shape, ref.shape))
        return
    err, tol = float(np.abs(ours - ref).max()), 1e-4 * (1 + float(np.abs(ref).max()))
    verdict(err <= tol, name, "max|ours - ref| %.3g > %.3g" % (err, tol),
            " (max|ours - ref| %.2g, tolerance %.2g)" % (err, tol))


def write_config(path, size, ch_mult, attn, schedule):
    with open(path, "w") as f:
        f.write("data:\n    dataset: \"mine\"\n    image_size: %d\n    channels: 3\n\n" % size)
        f.write("model:\n    type: \"simple\"\n    in_channels: 3\n    out_ch: 3\n    ch: 32\n")
        f.write("    ch_mult: [%s]\n    num_res_blocks: 1\n" % ", ".join(map(str, ch_mult)))
        f.write("    attn_resolutions: [%s]\n    dropout: 0.0\n" % "".join("%d, " % a for a in attn))
        f.write("    var_type: fixedlarge\n    ema_rate: 0.9999\n    ema: True\n")
        f.write("    resamp_with_conv: True\n\ndiffusion:\n")
        f.write("    beta_schedule: %s\n    beta_start: %r\n    beta_end: %r\n"
                "    num_diffusion_timesteps: %d\n" % schedule)


def png(path, x):
    """Writes x (1, 3, H, W) in [-1, 1] as a PNG; returns what the published loader reads."""
    pixels = ((x[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return (torch.from_numpy(img).permute(2, 0, 1)[None] - 0.5) * 2


def check_model(tmp, name, ch_mult, attn, size, schedule, other_size):
    torch.manual_seed(len(name) * 101 + size)
    base = DDPM(32, ch_mult, 1, attn, size).eval()
    tuned = DDPM(32, ch_mult, 1, attn, size).eval()
    base_path, tuned_path = (os.path.join(tmp, name + s) for s in ("_base.pt", "_ft.pt"))
    torch.save(base.state_dict(), base_path)
    torch.save(tuned.state_dict(), tuned_path)
    cfg = os.path.join(tmp, name + ".yml")
    write_config(cfg, size, ch_mult, attn, schedule)
    x = torch.rand(1, 3, size, size) * 2 - 1
    x_path = os.path.join(tmp, name + "_x.npy")
    np.save(x_path, x.numpy())
    photo = os.path.join(tmp, name + "_photo.png")
    x_photo = png(photo, x)
    big_photo = os.path.join(tmp, name + "_big.png")
    Image.fromarray(np.full((97, 130, 3), 90, np.uint8)).save(big_photo)
    x_other = torch.rand(1, 3, other_size, other_size) * 2 - 1
    other_path = os.path.join(tmp, name + "_other.npy")
    np.save(other_path, x_other.numpy())

    code, text = cli("inspect", "--model", base_path)
    verdict(code == 0 and ("image_size %d (from the weights" % size) in text,
            name + "/inspect_weights", text)
    code, text = cli("inspect", "--model", base_path, "--config", cfg)
    verdict(code == 0 and ("image_size %d (from the config" % size) in text and
            ("beta %g .. %g, %d timesteps" % schedule[1:]) in text, name + "/inspect_config",
            text)

    for with_config in (False, True):
        tag = name + ("/config" if with_config else "/weights")
        extra = ["--config", cfg] if with_config else []
        abar = alphas_cumprod(*(schedule[1:] if with_config else (1e-4, 0.02, 1000)))
        out = lambda what: os.path.join(tmp, "%s_%d_%s.npy" % (name, with_config, what))
        with torch.no_grad():
            lat = invert(x, base, T0, INV, abar)
            code, text = cli("invert", "--model", base_path, "--x", x_path, "--t0", T0,
                             "--steps", INV, "--out", out("lat"), *extra)
            close(tag + "/invert", out("lat"), lat) if code == 0 else verdict(False, tag + "/invert", text)
            np.save(out("lat_ref"), lat.numpy())
            code, text = cli("generate", "--model", base_path, "--latent", out("lat_ref"),
                             "--t0", T0, "--steps", GEN, "--out", out("gen"), *extra)
            ref = generate(lat, [base], [1.0], T0, GEN, abar)
            close(tag + "/generate", out("gen"), ref) if code == 0 else verdict(False, tag + "/generate", text)
            mix = ["--model", base_path, "--finetuned", tuned_path, "--t0", T0, "--inv-steps",
                   INV, "--gen-steps", GEN] + extra
            for what, source, ref_x in (("array", x_path, x), ("photo", photo, x_photo),
                                        ("other_size", other_path, x_other)):
                code, text = cli("edit", *mix, "--ratio", 0.6, "--image", source, "-o",
                                 out("edit_" + what))
                ref = generate(invert(ref_x, base, T0, INV, abar), [base, tuned], [0.4, 0.6],
                               T0, GEN, abar)
                close(tag + "/edit_" + what, out("edit_" + what), ref) if code == 0 else \
                    verdict(False, tag + "/edit_" + what, text)
            code, text = cli("transition", *mix, "--ratio", 1, "--count", 3, "--image", x_path,
                             "-o", out("transition"))
            lat = invert(x, base, T0, INV, abar)
            ref = torch.cat([generate(lat, [base, tuned], [1 - g, g], T0, GEN, abar)
                             for g in (0.0, 0.5, 1.0)])
            close(tag + "/transition", out("transition"), ref) if code == 0 else \
                verdict(False, tag + "/transition", text)
            code, text = cli("translate", *mix, "--ratio", 0.6, "--repeats", 2, "--image",
                             photo, "-o", out("translate"))
            ref = translate(x_photo, [base, tuned], [0.4, 0.6], T0, INV, GEN, 2, 6, 1234, abar)
            close(tag + "/translate", out("translate"), ref) if code == 0 else \
                verdict(False, tag + "/translate", text)
        # a photo of another size is resized to the model's
        code, text = cli("edit", *mix, "--image", big_photo, "-o", out("big"))
        shape = np.load(out("big")).shape if code == 0 else None
        verdict(shape == (1, 3, size, size), tag + "/photo_resized", "%s %s" % (shape, text))
        finetune(tmp, tag, base_path, extra, [x_path, photo], size)


def finetune(tmp, tag, base_path, extra, images, size):
    clip = os.path.join(GOLDEN, "clip_vit", "clip_state_dict.pt")
    vocab = os.path.join(CLIP_DATA, "bpe_simple_vocab_16e6.txt.gz")
    if not (os.path.exists(clip) and os.path.exists(vocab)):
        skip(tag + "/finetune", "golden CLIP or vocabulary missing (%s, %s)" % (clip, vocab))
        return
    out = os.path.join(tmp, tag.replace("/", "_") + "_ft.pt")
    code, text = cli("finetune", "--model", base_path, "--clip", clip, "--vocab", vocab,
                     "--images", images[0], "--images", images[1], "--src", "face", "--trg",
                     "angry face", "--t0", 200, "--inv-steps", 3, "--train-steps", 2,
                     "--epochs", 1, "--lr", 1e-4, "--out", out, *extra)
    ok = code == 0 and os.path.exists(out)
    verdict(ok, tag + "/finetune", text)
    if ok:
        code, text = cli("inspect", "--model", out, *extra)
        verdict(code == 0 and ("image_size %d" % size) in text, tag + "/finetune_output", text)


def check_unknown_size(tmp):
    torch.manual_seed(5)
    model = DDPM(32, (1, 2, 2), 1, (), 64).eval()
    path = os.path.join(tmp, "C.pt")
    torch.save(model.state_dict(), path)
    x = torch.rand(1, 3, 40, 40) * 2 - 1
    x_path, photo = os.path.join(tmp, "C_x.npy"), os.path.join(tmp, "C.png")
    np.save(x_path, x.numpy())
    png(photo, torch.rand(1, 3, 50, 50) * 2 - 1)
    code, text = cli("inspect", "--model", path)
    verdict(code == 0 and "image_size unknown" in text, "C/inspect_unknown", text)
    code, text = cli("invert", "--model", path, "--x", photo, "--t0", T0, "--steps", INV,
                     "--out", os.path.join(tmp, "C_lat.npy"))
    verdict(code == 2 and "--image-size N or --config FILE" in text, "C/photo_needs_size", text)
    code, text = cli("invert", "--model", path, "--x", photo, "--t0", T0, "--steps", INV,
                     "--image-size", 64, "--out", os.path.join(tmp, "C_lat.npy"))
    shape = np.load(os.path.join(tmp, "C_lat.npy")).shape if code == 0 else None
    verdict(shape == (1, 3, 64, 64), "C/photo_with_image_size", "%s %s" % (shape, text))
    with torch.no_grad():
        ref = invert(x, model, T0, INV, alphas_cumprod(1e-4, 0.02, 1000))
    code, text = cli("invert", "--model", path, "--x", x_path, "--t0", T0, "--steps", INV,
                     "--out", os.path.join(tmp, "C_lat40.npy"))
    close("C/array_any_size", os.path.join(tmp, "C_lat40.npy"), ref) if code == 0 else \
        verdict(False, "C/array_any_size", text)
    bad = os.path.join(tmp, "C_bad.yml")
    write_config(bad, 64, (1, 2, 2, 2), (16,), ("linear", 1e-4, 0.02, 1000))
    code, text = cli("inspect", "--model", path, "--config", bad)
    verdict(code == 1 and "model.ch_mult is [1, 2, 2, 2], but the weights have [1, 2, 2]" in text,
            "C/contradicting_config", text)


with tempfile.TemporaryDirectory() as tmp:
    check_model(tmp, "A", (1, 2, 2, 2), (16,), 32, ("linear", 1e-4, 0.02, 1000), 48)
    check_model(tmp, "B", (1, 2, 2), (16,), 64, ("quad", 0.0002, 0.03, 900), 40)
    check_unknown_size(tmp)
finish()
