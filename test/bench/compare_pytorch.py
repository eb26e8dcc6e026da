#!/usr/bin/python3
"""libdiffclip against PyTorch on the same network, machine and thread count
(`make bench-compare`; needs Debian's python3-torch, i.e. /usr/bin/python3, or any torch).

PyTorch runs as --variants says: eager (the default), channels_last (weights and input in
torch.channels_last) and compile (torch.compile, inductor; on the CPU with freezing), each
in its own server, all alternating with libdiffclip. --device cuda runs both sides on the GPU
(each call ends with a synchronize; the memory columns are then the CUDA caching
allocator's peak allocated MiB instead of the peak RSS).

Two servers stay loaded side by side: libdiffclip's benchmark (`bench --serve ddpm:DTYPE`)
and this script (`--serve DTYPE`), which runs the published DDPM UNet code (ddpm_torch.py),
each with random weights of the CelebA-HQ shapes at 256x256, batch 1, after one untimed
forward. The driver then alternates single calls between them (which goes first swaps every
time): --rounds forwards each, and --rounds DDIM inversions of --invert-steps steps, run in
lockstep one step at a time, each inversion's time being the sum of its steps. On a machine
shared with other work the load then changes under both alike; the load average is printed
at the start and the end. float32 first, then bfloat16 (model.bfloat16() for PyTorch: its CPU
autocast fails on this network's GroupNorm in 1.13); the bfloat16 rows are also compared with
PyTorch's float32. sgemm (OpenBLAS through at::mm, as both sides use it) is timed by the
libdiffclip server in every forward round. --peer adds servers of the same protocol to the
alternation, such as the same code built against another LibTorch
(tools/compare_libtorch.sh: LibTorch 1.13 on the host beside 2.6 in the Debian 13 root).
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_mib(device):
    if device == "cuda":
        import torch
        return torch.cuda.max_memory_allocated() / 1048576.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reply(ms, device, flops=0.0):
    print("bench-result %.3f %.6g %.1f" % (ms, flops, peak_mib(device)), flush=True)


def torch_server(dtype, variant, device, threads):
    """The PyTorch side of the protocol of `bench --serve` (forward, invert-begin S,
    invert-next)."""
    import numpy as np
    import torch
    sys.path.insert(0, HERE)
    import ddpm_torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    model = ddpm_torch.Model().eval().to(dt).to(device)
    x = torch.randn(1, 3, 256, 256).to(device)
    t = torch.full((1,), 500.0, device=device)
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float().to(device)
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    elif variant == "compile":
        if device == "cpu":
            import torch._inductor.config
            torch._inductor.config.freezing = True
        model = torch.compile(model)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.no_grad():
        model(x.to(dt), t)
        sync()
        print("ready", flush=True)
        pairs, lat = [], None
        for line in sys.stdin:
            cmd = line.split()
            start = time.perf_counter()
            if cmd == ["forward"]:
                model(x.to(dt), t)
            elif cmd[0] == "invert-begin":
                seq = [int(s) for s in np.linspace(0, 1, int(cmd[1])) * 500]
                pairs, lat = list(zip(seq[:-1], seq[1:])), x.clone()
            elif cmd == ["invert-next"] and pairs:
                i, j = pairs.pop(0)
                lat = ddpm_torch.ddim_step(model, betas, lat, torch.ones(1, device=device) * i,
                                           torch.ones(1, device=device) * j)
            else:
                break
            sync()
            reply((time.perf_counter() - start) * 1e3, device)


class Server:
    def __init__(self, cmd, env=None):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("compare: %s did not start" % " ".join(cmd))

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("bench-result "):
            raise SystemExit("compare: no answer to '%s'" % command)
        return tuple(float(v) for v in line.split()[1:4])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", default="build/bench/bench", help="libdiffclip's bench program")
    p.add_argument("--rounds", type=int, default=3, help="forwards and inversions per side")
    p.add_argument("--invert-steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--variants", default="eager", help="PyTorch's: eager,channels_last,compile")
    p.add_argument("--name", default="libdiffclip", help="the --bench side's column name")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=COMMAND",
                   help="another server of bench's protocol, started with sh -c COMMAND "
                   "({dtype} replaced), e.g. a build against another LibTorch")
    p.add_argument("--markdown", help="write the table between <!-- compare-table --> markers")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--variant", default="eager", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        torch_server(a.serve, a.variant, a.device, a.threads)
        return
    dtypes = a.dtypes.split(",")
    variants = a.variants.split(",")
    for v in variants:
        if v not in ("eager", "channels_last", "compile"):
            raise SystemExit("compare: unknown variant %s" % v)

    env = dict(os.environ, DIFFCLIP_NUM_THREADS=str(a.threads), DIFFCLIP_BENCH_DEVICE=a.device)
    load_start = loadavg()
    print("compare: CelebA-HQ DDPM UNet 256x256, batch 1, %s, %d threads; load average %s"
          % (a.device, a.threads, load_start), flush=True)
    times, peak, flops, sgemm = {}, {}, {}, []
    peers = [spec.split("=", 1) for spec in a.peer]
    if any(len(peer) != 2 or not peer[0] for peer in peers):
        raise SystemExit("compare: --peer takes NAME=COMMAND")
    names = [a.name] + [name for name, _ in peers] + ["PyTorch " + v for v in variants]

    def record(key, side, server, command):
        ms, fl, mib = server.ask(command)
        peak[(key, side)] = max(peak.get((key, side), 0), mib)
        if fl > 0 and side == a.name:
            flops[key] = fl
        return ms

    for dtype in dtypes:
        sides = [(a.name, Server([a.bench, "--serve", "ddpm:" + dtype], env))]
        for name, command in peers:
            sides.append((name, Server(["sh", "-c", command.replace("{dtype}", dtype)], env)))
        for v in variants:
            sides.append(("PyTorch " + v, Server(
                [sys.executable, os.path.abspath(__file__), "--serve", dtype, "--variant", v,
                 "--device", a.device, "--threads", str(a.threads)])))
        ours = sides[0][1]
        fwd, inv = ("forward", dtype), ("invert", dtype)

        def rotated(k):
            k %= len(sides)
            return sides[k:] + sides[:k]

        for r in range(a.rounds):
            sgemm.append(ours.ask("sgemm")[0])
            for side, server in rotated(r):
                times.setdefault((fwd, side), []).append(record(fwd, side, server, "forward"))
            print("  forward %s round %d: %s (load %s)" % (
                dtype, r + 1, ", ".join("%s %.1f ms" % (s, times[(fwd, s)][-1])
                                        for s, _ in sides), loadavg()), flush=True)
        for r in range(a.rounds):
            total = {side: 0.0 for side, _ in sides}
            for side, server in sides:
                server.ask("invert-begin %d" % a.invert_steps)
            for k in range(a.invert_steps - 1):
                for side, server in rotated(k):
                    total[side] += record(inv, side, server, "invert-next")
            for side, _ in sides:
                times.setdefault((inv, side), []).append(total[side])
            print("  %d-step inversion %s round %d: %s (load %s)" % (
                a.invert_steps, dtype, r + 1,
                ", ".join("%s %.1f ms" % (s, total[s]) for s, _ in sides), loadavg()),
                flush=True)
        flops[inv] = flops[fwd] * (a.invert_steps - 1)
        for _, server in sides:
            server.close()
    load_end = loadavg()

    def med(key, side):
        return statistics.median(times[(key, side)])

    sgemm_ms = statistics.median(sgemm)
    sgemm_gflops = 2.0 * 1024 ** 3 / (sgemm_ms * 1e6)
    what_names = {"forward": "UNet forward", "invert": "%d-step DDIM inversion" % a.invert_steps}
    memory = "peak CUDA MiB" if a.device == "cuda" else "peak RSS MiB"
    lines = ["| | " + " | ".join("%s ms" % n for n in names) + " | " +
             " | ".join("%s / %s" % (n, a.name) for n in names[1:]) +
             " | %s GFLOP/s (of sgemm) | " % a.name +
             " | ".join("%s %s" % (n, memory) for n in names) + " |",
             "|---" * (3 * len(names) + 1) + "|",
             "| sgemm 1024x1024x1024 (at::mm) | %.2f |" % sgemm_ms + " |" * (2 * len(names) - 2)
             + " %.0f (100%%) |" % sgemm_gflops + " |" * len(names)]
    for dtype in dtypes:
        for what in ("forward", "invert"):
            key = (what, dtype)
            ms = [med(key, n) for n in names]
            g = flops[key] / (ms[0] * 1e6)
            lines.append("| %s, %s | " % (what_names[what], dtype) +
                         " | ".join("%.1f" % m for m in ms) + " | " +
                         " | ".join("%.2fx" % (m / ms[0]) for m in ms[1:]) +
                         " | %.0f (%.0f%%) | " % (g, 100 * g / sgemm_gflops) +
                         " | ".join("%.0f" % peak[(key, n)] for n in names) + " |")
    header = ("CelebA-HQ DDPM UNet at 256x256, batch 1, on %s, %d threads each; medians of %d "
              "forwards and of %d lockstep inversions per side, alternating call by call; %s "
              "of each side's process; load average %s at the start, %s at the end."
              % (a.device, a.threads, a.rounds, a.rounds, memory, load_start, load_end))
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
