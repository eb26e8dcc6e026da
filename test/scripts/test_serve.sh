#!/bin/sh
# diffclip serve's API over real HTTP on loopback (test/serve/api_test.py): a fine-tuned
# directory with a full state dict (noise_combination's model_b.pt), a delta made here by
# `diffclip finetune` on the tiny golden model, and two links leading out of it. Environment
# (make test sets it): DC_CLI, DC_GOLDEN, DC_CLIP_DATA, PYTHON.
. "$(dirname "$0")/../bindings/lib.sh"
. "$(dirname "$0")/../serve/fixture.sh"
export DIFFCLIP_NUM_THREADS=1
serve_inputs serve/api || { finish; exit; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if ! serve_fixture "$cli" "$base" "$tuned" "$clip" "$vocab" "$tmp" >"$tmp/fixture.log" 2>&1; then
    fail "serve/fixture" "$(tail -n 20 "$tmp/fixture.log")"
    finish
    exit
fi
timeout 900 ${PYTHON:-/usr/bin/python3} test/serve/api_test.py "$cli" "$base" "$tmp/models" "$tmp" "$clip" "$vocab"
