#!/bin/sh
# Batch edits on a cluster: `edit --shard K/N` (and Slurm's array environment) does only its
# inputs; the shards' outputs together are exactly one unsharded run's files, and a rerun of
# a shard skips what it wrote. Environment: DC_CLI, DC_GOLDEN, PYTHON (with numpy).
. "$(dirname "$0")/../bindings/lib.sh"
cli=${DC_CLI:-build/bin/diffclip}
golden=${DC_GOLDEN:-../shared/golden}
base=$golden/ddpm_unet/model.pt
tuned=$golden/noise_combination/model_b.pt
python=${PYTHON:-python3}
for f in "$cli" "$base" "$tuned"; do
    if [ ! -f "$f" ]; then
        skip_rest edit_shard "missing $f"
    fi
done
if ! "$python" -c 'import numpy' 2>/dev/null; then
    skip_rest edit_shard "numpy missing for $python"
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
"$python" - "$tmp" <<'PY'
import sys, numpy as np
rng = np.random.RandomState(1)
for name in "abcde":
    np.save("%s/%s.npy" % (sys.argv[1], name),
            (rng.rand(1, 3, 32, 32) * 2 - 1).astype(np.float32))
PY
inputs="$tmp/a.npy $tmp/b.npy $tmp/c.npy $tmp/d.npy $tmp/e.npy"
# edit OUTDIR LOG [ENV=VALUE...] -- [OPTION...]: one edit run of the five inputs.
edit() {
    out=$1 log=$2
    shift 2
    vars=""
    while [ "$1" != -- ]; do vars="$vars $1"; shift; done
    shift
    # shellcheck disable=SC2086
    env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN $vars \
        "$cli" edit --model "$base" --finetuned "$tuned" --t0 300 --inv-steps 4 \
        --gen-steps 4 --threads 1 -o "$out" "$@" $inputs >"$log" 2>&1
}

if edit "$tmp/whole" "$tmp/whole.log" -- &&
    edit "$tmp/shards" "$tmp/s1.log" -- --shard 1/2 &&
    edit "$tmp/shards" "$tmp/s2.log" -- --shard 2/2; then
    pass edit_shard/runs
else
    fail edit_shard/runs "$(tail -n 3 "$tmp"/*.log | tr '\n' ' ')"
fi
same=yes
for f in "$tmp"/whole/*.png; do cmp -s "$f" "$tmp/shards/${f##*/}" || same=no; done
if [ "$(ls "$tmp/whole" | tr '\n' ' ')" = "a.png b.png c.png d.png e.png " ] &&
    [ "$(ls "$tmp/shards")" = "$(ls "$tmp/whole")" ] && [ $same = yes ]; then
    pass edit_shard/shards_equal_one_run
else
    fail edit_shard/shards_equal_one_run "$(ls "$tmp/whole" "$tmp/shards" | tr '\n' ' ')"
fi
before=$(ls -l --time-style=full-iso "$tmp/shards")
if edit "$tmp/shards" "$tmp/again.log" -- --shard 1/2 &&
    [ "$(grep -c 'already written, skipped' "$tmp/again.log")" = 3 ] &&
    [ "$(ls -l --time-style=full-iso "$tmp/shards")" = "$before" ]; then
    pass edit_shard/rerun_skips_written_outputs
else
    fail edit_shard/rerun_skips_written_outputs "$(tr '\n' ' ' <"$tmp/again.log")"
fi
# Slurm's array task 1 of 0..1 is shard 2/2: b and d.
if edit "$tmp/slurm" "$tmp/slurm.log" SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0 \
        SLURM_ARRAY_TASK_COUNT=2 -- && [ "$(ls "$tmp/slurm" | tr '\n' ' ')" = "b.png d.png " ] &&
    cmp -s "$tmp/slurm/b.png" "$tmp/whole/b.png"; then
    pass edit_shard/slurm_array_environment
else
    fail edit_shard/slurm_array_environment "$(ls "$tmp/slurm" 2>&1 | tr '\n' ' ')"
fi
for bad in 0/2 3/2 1/0 x 1/2x; do
    if edit "$tmp/bad" "$tmp/bad.log" -- --shard "$bad"; then
        fail "edit_shard/rejects_$bad" "exit 0"
    elif grep -q -- "--shard is K/N" "$tmp/bad.log"; then
        pass "edit_shard/rejects_$bad"
    else
        fail "edit_shard/rejects_$bad" "$(tr '\n' ' ' <"$tmp/bad.log")"
    fi
done
finish
