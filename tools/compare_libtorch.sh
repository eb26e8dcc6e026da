#!/bin/sh
# The same libdiffclip code built against LibTorch 1.13 (this Debian 12 host, build/bench/bench)
# and 2.6 (the Debian 13 root of make test-libtorch2), beside PyTorch 2.6 eager, channels-last
# and torch.compile, all alternating call by call in one run of test/bench/compare_pytorch.py
# (`make bench-libtorch`; root only: it runs the driver in the root through tools/debian13.sh).
#
#   tools/compare_libtorch.sh ROOT GOLDEN CLIP_DATA FACEAPI [compare_pytorch.py ARGS...]
#
# The host's 1.13 bench servers cannot run inside the root (other libraries), so they run here
# and speak to the driver through FIFOs under ROOT/tmp, one pair per dtype, in the order the
# driver starts its servers (--dtypes, default float32,bfloat16).
set -eu

[ $# -ge 4 ] || { echo "usage: $0 ROOT GOLDEN CLIP_DATA FACEAPI [ARGS...]" >&2; exit 2; }
root=$1 golden=$2 clip=$3 faceapi=$4
shift 4
[ -x build/bench/bench ] || { echo "compare_libtorch.sh: build/bench/bench is not built (make bench)" >&2; exit 1; }

dtypes=float32,bfloat16
prev=""
for arg in "$@"; do
    [ "$prev" = --dtypes ] && dtypes=$arg
    case $arg in --dtypes=*) dtypes=${arg#--dtypes=} ;; esac
    prev=$arg
done

fifos=$root/tmp/compare-libtorch
host_pid=""
cleanup()
{
    status=$?
    # The host servers may be blocked opening a FIFO the driver never opened.
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
for d in $(echo "$dtypes" | tr ',' ' '); do
    rm -f "$fifos/$d.in" "$fifos/$d.out"
    mkfifo "$fifos/$d.in" "$fifos/$d.out"
done

# In its own process group, so that cleanup reaches a server still blocked on a FIFO.
# shellcheck disable=SC2016 # expanded by the inner shell
DIFFCLIP_NUM_THREADS=${DIFFCLIP_NUM_THREADS:-$(nproc)} setsid sh -c '
    fifos=$1 dtypes=$2
    for d in $(echo "$dtypes" | tr "," " "); do
        build/bench/bench --serve "ddpm:$d" < "$fifos/$d.in" > "$fifos/$d.out"
    done' host-servers "$fifos" "$dtypes" &
host_pid=$!

quoted=""
for arg in "$@"; do
    quoted="$quoted '$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'"
done
# fd 3 keeps the peer's stdin for its background cat (an asynchronous list's own stdin is
# /dev/null in a non-interactive shell).
peer='exec 3<&0; cat <&3 > /tmp/compare-libtorch/{dtype}.in & exec cat < /tmp/compare-libtorch/{dtype}.out'
sh tools/debian13.sh run "$root" . "$golden" "$clip" "$faceapi" \
    "make -j2 build/bench/bench >/dev/null && /usr/bin/python3 test/bench/compare_pytorch.py \
     --bench build/bench/bench --name 'libdiffclip on 2.6' --peer 'libdiffclip on 1.13=$peer' $quoted"
wait "$host_pid" || true
host_pid=""
