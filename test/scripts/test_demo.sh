#!/bin/sh
# The demo's real edit, reduced (tools/demo.sh with fewer images and epochs): the trained
# Fashion-MNIST models of examples/fashion-mnist fine-tuned from sneaker to ankle boot (and
# to sandal) must move the independent classifier's verdict on held-out edits toward the
# target by a margin that the untrained pipeline never reaches, keep plain reconstructions
# faithful, and write every picture. A regression in the inversion, the losses, the gradients
# or the sampler fails it. Environment: DC_CLI, PYTHON (Debian's, with torch, skimage, PIL).
. "$(dirname "$0")/../bindings/lib.sh"
cli=${DC_CLI:-build/bin/diffclip}
python=${PYTHON:-/usr/bin/python3}
example=examples/fashion-mnist
# The reduced run: fewer training and held-out images (16 and 20 for 50 and 100), and two
# passes over them for the demo's one over 50; the bounds its edits must reach (measured: 0.9
# of its edits are ankle boots, 0 of the reconstructions; with 1 epoch only 0.45; an untrained
# DDPM of the same architecture, 12 images and 2 epochs, gives 0 and 0).
train=${DEMO_TRAIN:-16} held_out=${DEMO_TEST:-20} epochs=${DEMO_EPOCHS:-2}
edit_share=${DEMO_EDIT_SHARE:-0.4} margin=${DEMO_MARGIN:-0.3}
if (cd "$example" && sha256sum --quiet -c SHA256SUMS); then
    pass demo_models_are_the_committed_ones
else
    fail demo_models_are_the_committed_ones "sha256 mismatch in $example"
fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    skip_rest demo "dataset-fashion-mnist is not installed"
fi
if ! "$python" -c 'import torch, skimage, PIL' 2>/dev/null; then
    skip_rest demo "$python lacks torch, skimage or PIL"
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if ! sh tools/demo.sh "$cli" "$python" "$example" "$tmp" "$train" "$held_out" "$epochs" \
        >"$tmp/log" 2>&1; then
    sed 's/^/    /' "$tmp/log" | tail -n 20
    fail demo_runs "tools/demo.sh failed"
    finish
    exit
fi
pass demo_runs
for f in ankle_boot.png sandal.png mix.png transition.png ankle_boot.delta; do
    if [ -s "$tmp/$f" ]; then pass "demo_writes_$f"; else fail "demo_writes_$f" "missing"; fi
done
# measure NAME KEY: a number of the judge's JSON for NAME.
measure() {
    "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$tmp/$1.json" "$2"
}
# at_least NAME VALUE BOUND: VALUE >= BOUND, else FAIL NAME.
at_least() {
    if "$python" -c 'import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]))' "$2" "$3"; then
        pass "$1"
    else
        fail "$1" "$2 < $3"
    fi
}
# The main pair only: sneaker -> sandal is weaker with these models (examples/fashion-mnist).
edits=$(measure ankle_boot edits_as_target)
recon=$(measure ankle_boot reconstructions_as_target)
echo "  ankle boot: edits classified as the target $edits, reconstructions $recon"
at_least edits_become_ankle_boots "$edits" "$edit_share"
at_least edits_move_toward_ankle_boots \
    "$("$python" -c 'import sys; print(float(sys.argv[1]) - float(sys.argv[2]))' "$edits" "$recon")" \
    "$margin"
ssim=$(measure ankle_boot reconstruction_ssim)
echo "  reconstruction SSIM $ssim"
at_least reconstructions_are_faithful "$ssim" 0.7
finish
