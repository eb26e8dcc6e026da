#!/bin/sh
# The same libdiffclip code built against LibTorch 1.13 (this Debian 12 host, build/bench/bench)
# and 2.6 (the Debian 13 root of make test-libtorch2), beside PyTorch 2.6 eager, channels-last
# and torch.compile, all alternating call by call in one run of test/bench/compare_pytorch.py
# (`make bench-libtorch`; root only: it runs the driver in the root through tools/debian13.sh).
#
#   tools/compare_libtorch.sh BENCH ROOT GOLDEN CLIP_DATA FACEAPI [compare_pytorch.py ARGS...]
#
# The host's 1.13 bench servers (BENCH) cannot run inside the root (other libraries), so they
# run here and speak to the driver through FIFOs under ROOT/tmp, one pair per dtype: each
# server waits on its own pair and loads its model only when the driver opens it, so whichever
# --dtypes the driver is given, the servers it never asks for never start.
set -eu

[ $# -ge 5 ] || { echo "usage: $0 BENCH ROOT GOLDEN CLIP_DATA FACEAPI [ARGS...]" >&2; exit 2; }
bench=$1 root=$2 golden=$3 clip=$4 faceapi=$5
shift 5
[ -x "$bench" ] || { echo "compare_libtorch.sh: $bench is not built (make bench)" >&2; exit 1; }

dtypes="float32 bfloat16"   # what bench --serve runs on the CPU
fifo_dir=/tmp/compare-libtorch   # as the driver inside the root sees it
fifos=$root$fifo_dir
host_pid=""
cleanup()
{
    status=$?
    # The host servers of dtypes the driver did not ask for are still blocked on their FIFOs.
    if [ -n "$host_pid" ]; then
        kill -TERM "-$host_pid" 2>/dev/null || true
    fi
    rm -f "$fifos"/*.in "$fifos"/*.out
    rmdir "$fifos" 2>/dev/null || true
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$fifos"
for d in $dtypes; do
    rm -f "$fifos/$d.in" "$fifos/$d.out"
    mkfifo "$fifos/$d.in" "$fifos/$d.out"
done

# In its own process group, so that cleanup reaches the servers still blocked on a FIFO.
# shellcheck disable=SC2016,SC2086 # $1... expand in the inner shell; $dtypes is a list
DIFFCLIP_NUM_THREADS=${DIFFCLIP_NUM_THREADS:-$(nproc)} setsid sh -c '
    bench=$1 fifos=$2
    shift 2
    for d in "$@"; do
        "$bench" --serve "ddpm:$d" < "$fifos/$d.in" > "$fifos/$d.out" &
    done
    wait' host-servers "$bench" "$fifos" $dtypes &
host_pid=$!

quoted=""
for arg in "$@"; do
    quoted="$quoted '$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'"
done
# fd 3 keeps the peer's stdin for its background cat (an asynchronous list's own stdin is
# /dev/null in a non-interactive shell).
peer="exec 3<&0; cat <&3 > $fifo_dir/{dtype}.in & exec cat < $fifo_dir/{dtype}.out"
sh tools/debian13.sh run "$root" . "$golden" "$clip" "$faceapi" \
    "make -j2 build/bench/bench >/dev/null && /usr/bin/python3 test/bench/compare_pytorch.py \
     --bench build/bench/bench --name 'libdiffclip on 2.6' --peer 'libdiffclip on 1.13=$peer' $quoted"
