"""Data-parallel fine-tuning over c10d/Gloo with `diffclip finetune`, two ranks on 127.0.0.1
(run by test_dist_finetune.sh, which counts the PASS/FAIL/SKIP lines printed here).

- equivalence: 2 ranks with --batch 1 against 1 process with --batch 2 on the same 3 images
  (the last whole batch has one image: rank 1 takes part with share 0). The per-step losses
  and gradient norms (the whole batch's, printed by rank 0) must match the one-process run's
  (relative 5e-4 for the losses, 2e-3 for the norm printed with 4 digits: a sum for a mean
  or another rank's images would be far off), and the weights must differ from it no more
  than the same one-process run does under another thread count: Adam turns the rounding
  noise of gradients that are zero in exact arithmetic (biases before GroupNorm, attention
  key biases) into steps of +-lr, whatever the reduction order, so that only the largest
  difference is compared (how many weights differ varies from run to run).
- faults: a rank that never comes, a port in use, a mismatch of texts, a rank killed mid-run
  (rank 1, then rank 0 which hosts the store): every surviving rank ends within
  --dist-timeout with a message naming what went wrong, and no weights file is half written.
Every process is bounded by a timeout; nothing waits on the clock."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    np = None

CLI = os.environ.get("DC_CLI", "build/bin/diffclip")
GOLDEN = os.environ.get("DC_GOLDEN", "../shared/golden")
VOCAB = os.path.join(os.environ.get("DC_CLIP_DATA", "../shared/clip"),
                     "bpe_simple_vocab_16e6.txt.gz")
BASE = os.path.join(GOLDEN, "ddpm_unet", "model.pt")
CLIP = os.path.join(GOLDEN, "clip_vit", "clip_state_dict.pt")
TIMEOUT = 20           # --dist-timeout of the fault runs, seconds
BOUND = 240            # no process of this test runs longer


def report(ok, name, why=""):
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why.replace("\n", " | ")[:800])),
          flush=True)


def skip(name, why):
    print("SKIP %s: %s" % (name, why), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finetune_cmd(tmp, out, extra=()):
    return [CLI, "finetune", "--model", BASE, "--clip", CLIP, "--vocab", VOCAB,
            "--images", os.path.join(tmp, "x.npy"), "--src", "face", "--trg", "angry face",
            "--t0", "300", "--inv-steps", "4", "--train-steps", "2", "--lr", "0.001",
            "--out", os.path.join(tmp, out)] + list(extra)


def group_env(port, rank, world=2):
    env = dict(os.environ)
    env.update(WORLD_SIZE=str(world), RANK=str(rank), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port))
    for k in ("SLURM_NTASKS", "SLURM_PROCID", "LOCAL_RANK", "SLURM_LOCALID"):
        env.pop(k, None)
    return env


def start(cmd, env, log):
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)


def finish(proc, bound=BOUND):
    try:
        return proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def run_group(tmp, out, extras, timeout_s, logs):
    port = free_port()
    procs = [start(finetune_cmd(tmp, out, list(extras[r]) + ["--dist-timeout", str(timeout_s)]),
                   group_env(port, r), logs[r]) for r in range(2)]
    return [finish(p) for p in procs]


def load_safetensors(path):
    """The tensors of a safetensors file, or raises when it is not whole."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    end = 0
    for name, v in header.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        end = max(end, b)
        out[name] = np.frombuffer(body[a:b], dtype=np.float32).reshape(v["shape"])
    if end != len(body):
        raise ValueError("%s: %d data bytes, the header says %d" % (path, len(body), end))
    return out


STEP = re.compile(r"^epoch (\d+)/\d+ image (\d+)/\d+: loss ([-0-9.e]+) \(clip ([-0-9.e]+), "
                  r"l1 ([-0-9.e]+), id [-0-9.e]+\) grad ([-0-9.e]+)", re.M)


def steps(log):
    return [tuple(float(x) for x in m.groups()) for m in STEP.finditer(log)]


def close(a, b, rel, abs_=2e-6):
    return abs(a - b) <= abs_ + rel * max(abs(a), abs(b))


def same_step(x, y):
    """(epoch, image, loss, clip, l1, grad norm) of two runs' reports of one step."""
    return (x[:2] == y[:2] and all(close(p, q, 5e-4) for p, q in zip(x[2:5], y[2:5])) and
            close(x[5], y[5], 2e-3))


def equivalence(tmp):
    common = ["--epochs", "2", "--threads", "1"]
    one = subprocess.run(finetune_cmd(tmp, "one.safetensors", common + ["--batch", "2"]),
                         capture_output=True, text=True, timeout=BOUND)
    noise = subprocess.run(finetune_cmd(tmp, "noise.safetensors",
                                        ["--epochs", "2", "--threads", "2", "--batch", "2",
                                         "--cache", os.path.join(tmp, "one.dclat")]),
                           capture_output=True, text=True, timeout=BOUND)
    logs = [os.path.join(tmp, "eq%d.log" % r) for r in range(2)]
    rcs = run_group(tmp, "two.safetensors", [common + ["--batch", "1"]] * 2, 120, logs)
    if one.returncode or noise.returncode or rcs != [0, 0]:
        report(False, "dist/two_ranks_run", "exit %s %s %s: %s %s %s" % (
            one.returncode, noise.returncode, rcs, one.stderr[-400:], read(logs[0])[-400:],
            read(logs[1])[-400:]))
        return
    report(True, "dist/two_ranks_run")
    r0, r1 = read(logs[0]), read(logs[1])
    report("x.npy[1]: inverted" in r1 and "x.npy[0]" not in r1 and "x.npy[2]" not in r1 and
           "x.npy[0]: inverted" in r0 and "x.npy[2]: inverted" in r0 and
           os.path.exists(os.path.join(tmp, "two.rank0.dclat")) and
           os.path.exists(os.path.join(tmp, "two.rank1.dclat")),
           "dist/each_rank_inverts_its_share", r0[:300] + r1[:300])
    a, b = steps(one.stderr), steps(r0)
    same = len(a) == 4 and len(a) == len(b) and all(same_step(x, y) for x, y in zip(a, b))
    report(same, "dist/losses_and_grad_norms_equal_batch_2", "%s against %s" % (b, a))
    report(not STEP.search(r1), "dist/one_report_for_the_group", r1[-300:])
    w1 = load_safetensors(os.path.join(tmp, "one.safetensors"))
    wn = load_safetensors(os.path.join(tmp, "noise.safetensors"))
    w2 = load_safetensors(os.path.join(tmp, "two.safetensors"))
    d_two = np.concatenate([np.abs(w1[k] - w2[k]).ravel() for k in w1])
    d_noise = np.concatenate([np.abs(w1[k] - wn[k]).ravel() for k in w1])
    within = [k for k in w1 if np.abs(w1[k] - w2[k]).max() <= 1e-5]
    ok = set(w1) == set(w2) and d_two.max() <= 1.5 * d_noise.max() + 1e-6
    report(ok, "dist/weights_equal_batch_2 (max |diff| %.3g, thread-count noise %.3g; %d of %d "
           "elements > 1e-6, noise %d; %d of %d tensors within 1e-5)" % (
               d_two.max(), d_noise.max(), (d_two > 1e-6).sum(), d_two.size,
               (d_noise > 1e-6).sum(), len(within), len(w1)), "")


def never_comes(tmp):
    log = os.path.join(tmp, "alone.log")
    began = time.monotonic()
    rc = finish(start(finetune_cmd(tmp, "alone.safetensors",
                                   ["--epochs", "1", "--threads", "1", "--dist-timeout", "3"]),
                      group_env(free_port(), 0), log))
    took = time.monotonic() - began
    text = read(log)
    report(rc not in (0, None) and "cannot join the process group" in text and
           not os.path.exists(os.path.join(tmp, "alone.safetensors")),
           "dist/rank_never_comes (ended after %.1f s, timeout 3 s)" % took, text[-500:])


def port_in_use(tmp):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        log = os.path.join(tmp, "port.log")
        rc = finish(start(finetune_cmd(tmp, "port.safetensors",
                                       ["--epochs", "1", "--threads", "1", "--dist-timeout",
                                        str(TIMEOUT)]),
                          group_env(port, 0), log))
    text = read(log)
    report(rc not in (0, None) and "cannot join the process group at 127.0.0.1:%d" % port in text,
           "dist/port_in_use", text[-500:])


def mismatch(tmp):
    logs = [os.path.join(tmp, "mismatch%d.log" % r) for r in range(2)]
    extra = [["--epochs", "1", "--threads", "1"],
             ["--epochs", "1", "--threads", "1", "--trg", "happy face", "--src", "face"]]
    # rank 1's --src/--trg come after rank 0's: the second pair makes its texts differ
    rcs = run_group(tmp, "mismatch.safetensors", extra, TIMEOUT, logs)
    texts = [read(p) for p in logs]
    report(all(rc not in (0, None) for rc in rcs) and
           all("do not start the same fine-tuning" in t and "rank 1 has other texts" in t
               for t in texts) and
           not os.path.exists(os.path.join(tmp, "mismatch.safetensors")),
           "dist/options_mismatch_named", " || ".join(t[-300:] for t in texts))


def killed(tmp, victim):
    out = "killed%d.safetensors" % victim
    port = free_port()
    logs = [os.path.join(tmp, "killed%d_%d.log" % (victim, r)) for r in range(2)]
    cmd = finetune_cmd(tmp, out, ["--epochs", "500", "--threads", "1", "--dist-timeout",
                                  str(TIMEOUT)])
    procs = [subprocess.Popen(cmd, env=group_env(port, r), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE if r == 0 else open(logs[r], "w"),
                              text=True, start_new_session=True) for r in range(2)]
    survivor = procs[1 - victim]
    seen = ""
    deadline = time.monotonic() + BOUND
    # rank 0 reports the group's steps: the run is under way once it has reported a step
    for line in procs[0].stderr:
        seen += line
        if (STEP.search(line) and "epoch 2/" in line) or time.monotonic() > deadline:
            break
    os.killpg(procs[victim].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    if victim == 0:
        procs[0].stderr.close()
        rc = finish(survivor, TIMEOUT + 60)
        took = time.monotonic() - killed_at
        text = read(logs[1])
    else:
        try:
            rest = procs[0].communicate(timeout=TIMEOUT + 60)[1]
        except subprocess.TimeoutExpired:
            procs[0].kill()
            rest = procs[0].communicate()[1]
        rc = procs[0].returncode
        took = time.monotonic() - killed_at
        text = seen + rest
    procs[victim].wait()
    whole = True
    for name in os.listdir(tmp):
        if name.startswith("killed%d" % victim) and name.endswith(".safetensors"):
            try:
                load_safetensors(os.path.join(tmp, name))
            except Exception as e:  # a half-written file
                whole = False
                text += " %s: %s" % (name, e)
    report(rc not in (0, None) and took <= TIMEOUT + 10 and
           ("lost rank %d" % victim) in text and whole and
           not os.path.exists(os.path.join(tmp, out)),
           "dist/rank_%d_killed_ends_rank_%d (in %.1f s, timeout %d s)" % (
               victim, 1 - victim, took, TIMEOUT), text[-600:])


def main():
    for f in (CLI, BASE, CLIP, VOCAB):
        if not os.path.exists(f):
            skip("dist", "missing %s" % f)
            return
    if np is None:
        skip("dist", "numpy is missing for %s" % sys.executable)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.RandomState(0)
        np.save(os.path.join(tmp, "x.npy"), (rng.rand(3, 3, 32, 32) * 2 - 1).astype(np.float32))
        equivalence(tmp)
        never_comes(tmp)
        port_in_use(tmp)
        mismatch(tmp)
        killed(tmp, 1)
        killed(tmp, 0)


if __name__ == "__main__":
    main()
