#!/bin/sh
# The alternating comparison driver (test/bench/compare_pytorch.py) with a peer of bench's
# protocol, as tools/compare_libtorch.sh uses it for the LibTorch 1.13 build beside 2.6: the
# peer's column and ratio appear beside ours and PyTorch's; a malformed --peer is refused.
# Run by `make test` from the repository root.
. "$(dirname "$0")/../bindings/lib.sh"

if command -v shellcheck >/dev/null 2>&1; then
    if report=$(shellcheck tools/compare_libtorch.sh 2>&1); then
        pass compare_script_is_shellcheck_clean
    else
        fail compare_script_is_shellcheck_clean "$report"
    fi
else
    skip compare_script_is_shellcheck_clean "shellcheck missing (make deps installs it)"
fi

python=${PYTHON:-/usr/bin/python3}
"$python" -c 'import torch, numpy' 2>/dev/null ||
    skip_rest peer_column_beside_ours "$python has no torch and numpy (make deps installs them)"
bench=${DC_BUILD:-build}/bench/bench
[ -x "$bench" ] || skip_rest peer_column_beside_ours "$bench is not built (make test builds it)"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if DIFFCLIP_NUM_THREADS=2 "$python" test/bench/compare_pytorch.py --bench "$bench" --name ours \
    --peer "again=$bench --serve ddpm:{dtype}" --rounds 1 --invert-steps 2 --dtypes float32 \
    --variants eager --threads 2 >"$tmp/log" 2>&1 &&
    grep -q '^| | ours ms | again ms | PyTorch eager ms | again / ours | PyTorch eager / ours |' "$tmp/log" &&
    grep -Eq '^\| UNet forward, float32 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \| [0-9.]+x \|' "$tmp/log"; then
    pass peer_column_beside_ours
else
    fail peer_column_beside_ours "$(tail -n 20 "$tmp/log")"
fi

if "$python" test/bench/compare_pytorch.py --bench "$bench" --peer "no-equals-sign" >"$tmp/bad" 2>&1; then
    fail malformed_peer_is_refused "it ran: $(tail -n 3 "$tmp/bad")"
elif grep -q -- '--peer takes NAME=COMMAND' "$tmp/bad"; then
    pass malformed_peer_is_refused
else
    fail malformed_peer_is_refused "$(tail -n 3 "$tmp/bad")"
fi
finish
