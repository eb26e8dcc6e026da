#!/bin/sh
# make demo: the whole DiffusionCLIP pipeline end to end on the tiny golden models (random
# weights: the pictures show the plumbing, not a real edit) and real photographs from Debian
# packages: skimage's astronaut (PNG) and, when present, matplotlib's Grace Hopper (JPEG).
#   1. diffclip finetune: invert the photographs with the base model into a latent cache, then
#      fine-tune a copy of it from "face" to "angry face" (the published README settings:
#      t0 500, 40 inversion steps, 6 training steps, 5 epochs, lr 8e-6 growing x1.3);
#   2. diffclip edit: invert each photograph with the base model and generate it with the
#      fine-tuned one, writing original | reconstruction | edit side by side.
# usage: demo.sh DIFFCLIP GOLDEN_DIR CLIP_DATA_DIR OUT_DIR
# One thread: the tiny models gain nothing from more, and lose much on a busy machine.
set -eu
cli=$1 golden=$2 clip_data=$3 out=$4

find_file() { dpkg -L "$1" 2>/dev/null | grep "/$2\$" | head -n 1 || true; }
astronaut=$(find_file python3-skimage astronaut.png)
hopper=$(find_file python-matplotlib-data grace_hopper.jpg)
if [ -z "$astronaut" ]; then
    echo "make demo: skimage's astronaut.png not found: install python3-skimage (make deps)" >&2
    exit 1
fi
model=$golden/ddpm_unet/model.pt
clip=$golden/clip_vit/clip_state_dict.pt
vocab=$clip_data/bpe_simple_vocab_16e6.txt.gz
for f in "$model" "$clip" "$vocab"; do
    if [ ! -f "$f" ]; then
        echo "make demo: $f is missing (set GOLDEN=dir and CLIP_DATA=dir)" >&2
        exit 1
    fi
done
mkdir -p "$out"
rm -rf "$out/edits"

echo "== diffclip finetune ($astronaut${hopper:+, $hopper})"
"$cli" finetune --model "$model" --clip "$clip" --vocab "$vocab" \
    --images "$astronaut" ${hopper:+"$hopper"} --preset angry \
    --cache "$out/latents.dclat" --out "$out/angry.delta" --threads 1

echo "== diffclip edit"
"$cli" edit --model "$model" --finetuned "$out/angry.delta" \
    --image "$astronaut" ${hopper:+--image "$hopper"} --t0 500 --grid -o "$out/edits" --threads 1

echo "== done: $out/angry.delta (fine-tuned weights as a delta from $model)"
ls -l "$out/edits"
