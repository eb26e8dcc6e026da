#!/bin/sh
# tools/device_check.sh, the GPU check, where there is no GPU: ShellCheck finds nothing in the
# GPU-side scripts, and the check's --dry-run (every step on the CPU at tiny sizes: the build, a golden
# case, the half-precision report, the bench, the PyTorch comparison) passes and writes each
# result file. Run by `make test` from the repository root.
. "$(dirname "$0")/../bindings/lib.sh"

if command -v shellcheck >/dev/null 2>&1; then
    if report=$(shellcheck tools/device_check.sh tools/debian13.sh tools/check_cuda_build.sh 2>&1); then
        pass gpu_scripts_are_shellcheck_clean
    else
        fail gpu_scripts_are_shellcheck_clean "$report"
    fi
else
    echo "SKIP gpu_scripts_are_shellcheck_clean: shellcheck missing (make deps installs it)"
    skipped=$((skipped + 1))
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if GOLDEN=${DC_GOLDEN:-} CLIP_DATA=${DC_CLIP_DATA:-} PYTHON=${PYTHON:-/usr/bin/python3} \
    bash tools/device_check.sh --dry-run "$tmp/out" >"$tmp/log" 2>&1; then
    pass dry_run_passes
else
    fail dry_run_passes "$(cat "$tmp/log")"
fi
missing=""
for f in env.txt build.log golden-float32.txt golden-half.txt bench.md compare.md summary.txt; do
    [ -s "$tmp/out/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ] && [ "$(grep -c ' PASS ' "$tmp/out/summary.txt")" -eq 5 ]; then
    pass dry_run_writes_every_result
else
    fail dry_run_writes_every_result "missing:$missing; summary: $(cat "$tmp/out/summary.txt" 2>/dev/null)"
fi
if grep -q 'bfloat16:' "$tmp/out/golden-half.txt" 2>/dev/null &&
    grep -q 'max|ours - golden|' "$tmp/out/golden-half.txt"; then
    pass half_precision_differences_are_reported
else
    fail half_precision_differences_are_reported "$(cat "$tmp/out/golden-half.txt" 2>/dev/null)"
fi
if grep -q '| UNet forward, float32 |' "$tmp/out/compare.md" 2>/dev/null; then
    pass comparison_table_has_the_forward_row
else
    fail comparison_table_has_the_forward_row "$(tail -n 20 "$tmp/out/compare.log" 2>/dev/null)"
fi
finish
