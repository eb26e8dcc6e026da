#!/usr/bin/env bash
# The GPU check, one prepared run for a machine with an NVIDIA GPU and pip's torch (no apt, no
# network), under 8 minutes; every result lands in OUTDIR:
#   env.txt            the commit, GPU, driver, torch and CUDA versions, the load
#   build.log          make LIBTORCH=<pip's torch> (libpng, libjpeg and zlib from the Debian
#                      packages `make device-debs` put in third_party/device-debs, when the
#                      machine has no libpng headers)
#   golden-float32.txt every golden case and the shim's tests on cuda, float32, TF32 off
#                      (DIFFCLIP_CUDA_TF32=0): they must meet the CPU tolerances
#   golden-half.txt    the golden UNet cases in float16 and bfloat16: their differences
#   bench.md, bench.log  make bench's table on cuda (the fine-tuning rows included); the
#                      memory column is the CUDA caching allocator's peak
#   compare.md, compare.log  the CelebA-HQ UNet beside PyTorch eager, channels-last and
#                      torch.compile on the same GPU, alternating call by call
#   summary.txt        one line per step: PASS/FAIL/TIMEOUT and seconds
#
#   tools/device_check.sh [--dry-run] [OUTDIR]      (OUTDIR: default $OUT, else build/device-check)
#
# --dry-run runs every step on the CPU against the Debian LibTorch, at tiny sizes, so that the
# script itself is tested where there is no GPU (test/scripts/test_device_check.sh).
# Environment: PYTHON (a python with torch; default python3), GOLDEN, CLIP_DATA (default
# ../shared/golden, ../shared/clip), JOBS (default: the cores).
#
# Each step has its own time limit, so that one that hangs cannot take the others' time:
# build 180 s, golden 120 s, half 60 s, bench 120 s, compare 150 s (with the start, < 8 min).
# shellcheck disable=SC2317,SC2054 # the step functions run through step(); a,b is one word
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

dry=0
if [ "${1:-}" = "--dry-run" ]; then
    dry=1
    shift
fi
out=${1:-${OUT:-build/device-check}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PYTHON=${PYTHON:-python3}
GOLDEN=$(realpath -m "${GOLDEN:-../shared/golden}")
CLIP_DATA=$(realpath -m "${CLIP_DATA:-../shared/clip}")
JOBS=${JOBS:-$(nproc)}
summary=$out/summary.txt
: > "$summary"

# The dry run reuses the CPU build (make only adds the benchmark) and runs one golden case.
if [ "$dry" = 1 ]; then
    device=cpu build=build libout=lib torch_dir="" limit_scale=3
    golden_tests=("$build/test/golden/test_golden_ddpm")
    half_tests=("$build/test/golden/test_golden_ddpm")
    bench_args=(--runs 1 --only sgemm)
    compare_args=(--rounds 1 --invert-steps 2 --dtypes float32 --variants eager)
else
    device=cuda build=build/device libout=build/device/lib limit_scale=1
    golden_tests=()
    for source in test/golden/test_golden_*.c; do         # the sources name the binaries
        name=${source##*/}
        golden_tests+=("$build/test/golden/${name%.c}")
    done
    half_tests=("$build/test/golden/test_golden_ddpm" "$build/test/golden/test_golden_adm")
    bench_args=(--runs 3)
    compare_args=(--rounds 3 --variants eager,channels_last,compile)
fi

# step NAME SECONDS FUNCTION: runs FUNCTION with SECONDS to spend (every command in it is
# limited to what is left), records PASS, FAIL or TIMEOUT and the time taken.
deadline=0
step()
{
    local name=$1 seconds=$(($2 * limit_scale)) start status verdict=PASS
    start=$(date +%s)
    deadline=$((start + seconds))
    "$3"
    status=$?
    [ "$status" -eq 0 ] || verdict=FAIL
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        verdict="TIMEOUT after ${seconds}s"
    fi
    printf '%-8s %s (%d s)\n' "$name" "$verdict" "$(($(date +%s) - start))" | tee -a "$summary"
    return "$status"
}

# limited COMMAND...: COMMAND within the current step's time.
limited()
{
    local left=$((deadline - $(date +%s)))
    [ "$left" -gt 0 ] || return 124
    timeout --kill-after=10 "$left" "$@"
}

environment()
{
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "date: $(date -u)"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available())'
}

# Headers and libraries of libpng, libjpeg and zlib: the machine's own, or unpacked from the
# Debian packages that travel with the tree (make device-debs).
dependency_flags()
{
    if [ -f /usr/include/png.h ] && [ -f /usr/include/jpeglib.h ] && [ -f /usr/include/zlib.h ]; then
        return
    fi
    local debs=third_party/device-debs root=$build/deps
    ls "$debs"/*.deb >/dev/null 2>&1 || { echo "no libpng headers and no $debs (make device-debs)"; return 1; }
    mkdir -p "$root"
    for deb in "$debs"/*.deb; do
        # No dpkg-deb outside Debian: a .deb is an ar archive around data.tar.xz.
        dpkg-deb -x "$deb" "$root" 2>/dev/null || (cd "$root" && ar p "$deb" data.tar.xz | tar -xJf -)
    done
    local top lib inc link
    top=$(cd "$root" && pwd)
    lib=$top/usr/lib/x86_64-linux-gnu
    inc=$top/usr/include
    # zlib1g-dev's libz.so points at /lib/x86_64-linux-gnu/libz.so.1...: into the unpacked tree.
    for link in "$lib"/*.so; do
        case $(readlink "$link") in
        /*) ln -sf "$top$(readlink "$link")" "$link" ;;
        esac
    done
    export CPPFLAGS="-I$inc -I$inc/x86_64-linux-gnu ${CPPFLAGS:-}"
    export LDFLAGS="-L$lib -L$top/lib/x86_64-linux-gnu -Wl,-rpath,$lib:$top/lib/x86_64-linux-gnu ${LDFLAGS:-}"
}

build_all()
{
    local torch_args=()
    if [ -n "$torch_dir" ]; then
        torch_args=(LIBTORCH="$torch_dir")
    fi
    dependency_flags || return 1
    limited make -j"$JOBS" "${torch_args[@]}" BUILD="$build" LIBOUT="$libout" \
        GOLDEN="$GOLDEN" CLIP_DATA="$CLIP_DATA" all "$build/bench/bench" \
        "${golden_tests[@]}" "$build/test/unit/test_ctorch"
}

# Runs the test binaries given, appending their output to FILE; fails when one fails.
run_tests()
{
    local file=$1 failed=0
    shift
    for t in "$@"; do
        echo "== $t (DC_TEST_DEVICE=$DC_TEST_DEVICE DC_TEST_DTYPE=${DC_TEST_DTYPE:-float32})" >> "$file"
        limited "$t" >> "$file" 2>&1 || failed=$?
    done
    return "$failed"
}

golden_float32()
{
    DC_TEST_DEVICE=$device DIFFCLIP_CUDA_TF32=0 CI=true DC_GOLDEN=$GOLDEN DC_CLIP_DATA=$CLIP_DATA \
        run_tests "$out/golden-float32.txt" "${golden_tests[@]}" "$build/test/unit/test_ctorch"
}

# The UNet cases in half precision: their differences from the golden float32 outputs, which
# no tolerance of float32 can hold (the tests FAIL by design; the numbers are the result).
golden_half()
{
    local file=$out/golden-half.txt
    : > "$file"
    for dtype in bfloat16 float16; do
        [ "$dry" = 1 ] && [ "$dtype" = float16 ] && continue   # float16 is CUDA only
        DC_TEST_DEVICE=$device DC_TEST_DTYPE=$dtype DC_GOLDEN=$GOLDEN DC_CLIP_DATA=$CLIP_DATA \
            run_tests "$file.raw" "${half_tests[@]}" || true
        { echo "$dtype:"; grep -E '^== |max\|ours - golden\|' "$file.raw"; } >> "$file"
        rm -f "$file.raw"
    done
    grep -q 'max|' "$file"
}

bench()
{
    DIFFCLIP_BENCH_DEVICE=$device DC_CLIP_DATA=$CLIP_DATA limited "$build/bench/bench" "${bench_args[@]}" \
        --markdown "$out/bench.md" > "$out/bench.log" 2>&1
}

compare()
{
    limited "$PYTHON" test/bench/compare_pytorch.py --bench "$build/bench/bench" --device "$device" \
        "${compare_args[@]}" --markdown "$out/compare.md" > "$out/compare.log" 2>&1
}

environment > "$out/env.txt" 2>&1
if [ "$dry" = 0 ]; then
    torch_dir=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))') || {
        echo "device_check: $PYTHON has no torch" | tee -a "$summary"
        exit 1
    }
fi
status=0
step build 180 build_all > "$out/build.log" 2>&1 || { cat "$summary"; exit 1; }
step golden 120 golden_float32 || status=1
step half 60 golden_half || status=1
step bench 120 bench || status=1
step compare 150 compare || status=1
cat "$summary"
exit "$status"
