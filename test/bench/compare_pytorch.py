#!/usr/bin/python3
"""libdiffclip against PyTorch eager on the same network, machine and thread count
(`make bench-compare`; needs Debian's python3-torch, i.e. /usr/bin/python3).

Each measurement is a fresh process: libdiffclip's benchmark (`bench --row KEY:DTYPE`) or
this script (`--torch-row`), which runs the published DDPM UNet code (ddpm_torch.py) with
random weights of the CelebA-HQ shapes at 256x256, batch 1. The two alternate (the first
of each pair swaps every round) for several rounds, and the table gives per-round medians,
so that a machine shared with other work loads both sides alike. The load average is
printed at the start and the end.

Cases: UNet forward in float32 and in bfloat16 (model.bfloat16() for PyTorch: its CPU
autocast fails on this network's GroupNorm in 1.13), DDIM inversion of --invert-steps steps (the published loop under
torch.no_grad) in float32 and bfloat16. Timing: one untimed forward, then the median of
--runs forwards, or one timed inversion.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def result_line(ms, flops=0.0):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("bench-result %.3f %.6g %.1f" % (ms, flops, rss), flush=True)


def torch_row(case, dtype, runs, invert_steps, threads):
    """One PyTorch measurement in this process."""
    import torch
    sys.path.insert(0, HERE)
    import ddpm_torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    model = ddpm_torch.Model().eval().to(dt)
    x = torch.randn(1, 3, 256, 256, dtype=dt)
    t = torch.full((1,), 500.0)
    with torch.no_grad():
        model(x, t)
        if case == "forward":
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                model(x, t)
                times.append((time.perf_counter() - start) * 1e3)
            ms = statistics.median(times)
        else:
            start = time.perf_counter()
            ddpm_torch.ddim_invert(model, x.float(), 500, invert_steps)
            ms = (time.perf_counter() - start) * 1e3
    result_line(ms)


def run(cmd, env=None):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("bench-result "):
            ms, flops, rss = (float(v) for v in line.split()[1:4])
            return ms, flops, rss
    raise SystemExit("compare: %s failed (status %d)" % (" ".join(cmd), out.returncode))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", default="build/bench/bench", help="libdiffclip's bench program")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=3, help="timed forwards per measurement")
    p.add_argument("--invert-steps", type=int, default=6,
                   help="DDIM inversion steps (n - 1 UNet calls); 40 as published")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--cases", default="forward,invert",
                   help="comma-separated: forward, invert")
    p.add_argument("--markdown", help="write the table between <!-- compare-table --> markers")
    p.add_argument("--torch-row", help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_row:
        torch_row(a.torch_row, a.dtype, a.runs, a.invert_steps, a.threads)
        return

    env = dict(os.environ, DIFFCLIP_NUM_THREADS=str(a.threads))
    common = ["--runs", str(a.runs), "--invert-steps", str(a.invert_steps)]

    def ours(case, dtype):
        key = {"forward": "ddpm-forward", "invert": "ddpm-invert"}[case]
        return run([a.bench, "--row", "%s:%s" % (key, dtype)] + common, env)

    def theirs(case, dtype):
        return run([sys.executable, os.path.abspath(__file__), "--torch-row", case, "--dtype",
                    dtype, "--threads", str(a.threads)] + common)

    # (label, [(side, callable)]) in the order each round runs them.
    cells = []
    for case in a.cases.split(","):
        what = "UNet forward" if case == "forward" else "%d-step DDIM inversion" % a.invert_steps
        cells.append(("%s, float32" % what, [("libdiffclip", lambda c=case: ours(c, "float32")),
                                               ("PyTorch", lambda c=case: theirs(c, "float32"))]))
        cells.append(("%s, bfloat16" % what, [("libdiffclip", lambda c=case: ours(c, "bfloat16")),
                                                ("PyTorch", lambda c=case: theirs(c, "bfloat16"))]))
    load_start = loadavg()
    print("compare: CelebA-HQ DDPM UNet 256x256, batch 1, %d threads, %d rounds; load average %s"
          % (a.threads, a.rounds, load_start), flush=True)
    results = {}
    for r in range(a.rounds):
        for label, sides in cells:
            order = sides if r % 2 == 0 else list(reversed(sides))
            for side, fn in order:
                ms, _, rss = fn()
                results.setdefault((label, side), []).append((ms, rss))
                print("  round %d  %-34s %-11s %10.0f ms  %6.0f MiB  (load %s)"
                      % (r + 1, label, side, ms, rss, loadavg()), flush=True)
    load_end = loadavg()

    def med(label, side):
        return statistics.median(ms for ms, _ in results[(label, side)])

    f32_torch = {label.rsplit(",", 1)[0]: med(label, "PyTorch")
                 for label, _ in cells if label.endswith("float32")}
    lines = ["| | libdiffclip ms | PyTorch ms | PyTorch / libdiffclip | "
             "PyTorch float32 / libdiffclip | libdiffclip RSS MiB | PyTorch RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    for label, _ in cells:
        ours_ms, torch_ms = med(label, "libdiffclip"), med(label, "PyTorch")
        base = f32_torch[label.rsplit(",", 1)[0]]
        rss = [max(r for _, r in results[(label, s)]) for s in ("libdiffclip", "PyTorch")]
        lines.append("| %s | %.0f | %.0f | %.2fx | %.2fx | %.0f | %.0f |"
                     % (label, ours_ms, torch_ms, torch_ms / ours_ms, base / ours_ms, rss[0], rss[1]))
    header = ("CelebA-HQ DDPM UNet at 256x256, batch 1, %d threads; medians of %d alternating "
              "rounds (each measurement a fresh process: one warm-up forward, then the median "
              "of %d forwards or one inversion); load average %s at the start, %s at the end."
              % (a.threads, a.rounds, a.runs, load_start, load_end))
    print(header)
    print("\n".join(lines))
    if a.markdown:
        write_markdown(a.markdown, header + "\n\n" + "\n".join(lines) + "\n")


def write_markdown(path, table):
    begin, end = "<!-- compare-table -->\n", "<!-- /compare-table -->\n"
    text = open(path).read() if os.path.exists(path) else ""
    i = text.find(begin)
    j = text.find(end, i) if i >= 0 else -1
    if j >= 0:
        text = text[:i] + begin + table + end + text[j + len(end):]
    else:
        text += ("\n" if text else "") + begin + table + end
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
