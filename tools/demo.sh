#!/bin/sh
# make demo: a real text-guided edit end to end, with the models the project trained
# (examples/fashion-mnist: a DDPM of the published architecture and a small CLIP, both
# trained on the Fashion-MNIST training split by tools/train/) and Debian's Fashion-MNIST.
#   1. diffclip finetune --preset fashion_ankle_boot: invert 50 training-split sneakers into a
#      latent cache, then fine-tune a copy of the DDPM from "a photo of a sneaker" to "a photo
#      of an ankle boot"; the same for "... a sandal";
#   2. diffclip edit --grid: edit held-out test-split sneakers with each fine-tuned model
#      (original | reconstruction | edit), then with a mix of both, and a transition strip;
#   3. tools/train/judge.py: an independent classifier (its own training, tools/train/)
#      says which share of the edits are ankle boots (sandals), against the share of plain
#      reconstructions; the reconstructions' MAE and SSIM against the originals.
# usage: demo.sh DIFFCLIP PYTHON EXAMPLE_DIR OUT_DIR [TRAIN_IMAGES TEST_IMAGES EPOCHS]
# The reduced run of make test (test/scripts/test_demo.sh) passes fewer images (and 2 epochs).
# One thread: the small models gain little from more, and lose much on a busy machine.
set -eu
cli=$1 python=$2 example=$3 out=$4
train_count=${5:-50} test_count=${6:-100} epochs=${7:-}
tools=$(dirname "$0")/train

for f in ddpm.pt ddpm.yml clip.pt classifier.pt bpe_simple_vocab_16e6.txt.gz; do
    if [ ! -f "$example/$f" ]; then
        echo "make demo: $example/$f is missing" >&2
        exit 1
    fi
done
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    echo "make demo: /usr/share/datasets/fashion-mnist is missing: install dataset-fashion-mnist (make deps)" >&2
    exit 1
fi
mkdir -p "$out"
rm -rf "$out/ankle_boot" "$out/sandal" "$out/mix" "$out/transition"
model="--model $example/ddpm.pt --config $example/ddpm.yml"

echo "== Fashion-MNIST: $train_count training-split sneakers, $test_count held-out test-split sneakers"
"$python" "$tools/fashion_images.py" "$out/train_sneakers.npy" --split train --class sneaker --count "$train_count"
"$python" "$tools/fashion_images.py" "$out/test_sneakers.npy" --split t10k --class sneaker --count "$test_count"
"$python" "$tools/fashion_images.py" "$out/transition_sneakers.npy" --split t10k --class sneaker --count 4

# Both fine-tunings invert the same training images: one latent cache serves them.
for edit in ankle_boot sandal; do
    echo "== diffclip finetune --preset fashion_$edit"
    # shellcheck disable=SC2086 # $model is two options
    "$cli" finetune $model --clip "$example/clip.pt" --vocab "$example/bpe_simple_vocab_16e6.txt.gz" \
        --images "$out/train_sneakers.npy" --preset "fashion_$edit" \
        ${epochs:+--epochs "$epochs"} \
        --cache "$out/train.dclat" --out "$out/$edit.delta" --threads 1
    echo "== diffclip edit: $test_count held-out sneakers -> $edit"
    # shellcheck disable=SC2086
    "$cli" edit $model --finetuned "$out/$edit.delta" --preset fashion \
        --image "$out/test_sneakers.npy" --grid -o "$out/$edit/" --threads 1
    "$python" "$tools/sheet.py" "$out/$edit" "$out/$edit.png" --rows 12
done

echo "== diffclip edit: the mix 0.5 ankle boot + 0.5 sandal"
# shellcheck disable=SC2086
"$cli" edit $model --finetuned "$out/ankle_boot.delta:0.5" --finetuned "$out/sandal.delta:0.5" \
    --preset fashion --image "$out/test_sneakers.npy" --grid -o "$out/mix/" --threads 1
"$python" "$tools/sheet.py" "$out/mix" "$out/mix.png" --rows 12

echo "== diffclip transition: sneaker -> ankle boot in 6 steps"
# shellcheck disable=SC2086
"$cli" transition $model --finetuned "$out/ankle_boot.delta" --preset fashion \
    --image "$out/transition_sneakers.npy" --count 6 -o "$out/transition/" --threads 1
"$python" "$tools/sheet.py" "$out/transition" "$out/transition.png"

echo "== the independent classifier's judgement (test accuracy in $example/README.md)"
for pair in "ankle_boot:ankle boot" "sandal:sandal" "mix:ankle boot"; do
    dir=${pair%%:*} target=${pair#*:}
    echo "-- $dir (target: $target)"
    "$python" "$tools/judge.py" --classifier "$example/classifier.pt" \
        --originals "$out/test_sneakers.npy" --target "$target" --grids "$out/$dir" \
        --json "$out/$dir.json"
done

echo "== done: look at $out/ankle_boot.png, $out/sandal.png, $out/mix.png (rows: original | reconstruction | edit) and $out/transition.png"
