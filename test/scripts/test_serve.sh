#!/bin/sh
# diffclip serve's API over real HTTP on loopback (test/serve/api_test.py): a fine-tuned
# directory with a full state dict (noise_combination's model_b.pt), a delta made here by
# `diffclip finetune` on the tiny golden model, and two links leading out of it. Environment
# (make test sets it): DC_CLI, DC_GOLDEN, DC_CLIP_DATA, PYTHON.
. "$(dirname "$0")/../bindings/lib.sh"
cli=${DC_CLI:-build/bin/diffclip}
golden=${DC_GOLDEN:-../shared/golden}
vocab=${DC_CLIP_DATA:-../shared/clip}/bpe_simple_vocab_16e6.txt.gz
base=$golden/ddpm_unet/model.pt
tuned=$golden/noise_combination/model_b.pt
clip=$golden/clip_vit/clip_state_dict.pt
export DIFFCLIP_NUM_THREADS=1
for f in "$base" "$tuned" "$clip" "$vocab"; do
    if [ ! -f "$f" ]; then
        skip "serve/api" "golden data missing ($f)"
        finish
        exit
    fi
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../serve/fixture.sh"
if ! serve_fixture "$cli" "$base" "$tuned" "$clip" "$vocab" "$tmp" >"$tmp/fixture.log" 2>&1; then
    fail "serve/fixture" "$(tail -n 20 "$tmp/fixture.log")"
    finish
    exit
fi
${PYTHON:-/usr/bin/python3} test/serve/api_test.py "$cli" "$base" "$tmp/models" "$tmp" "$clip" "$vocab"
