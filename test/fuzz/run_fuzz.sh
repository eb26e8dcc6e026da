#!/bin/sh
# Runs the libFuzzer targets built under $DC_FUZZ_BUILD (the Makefile sets the environment).
#   make test:  replays test/corpus/<target>/* (inputs that once failed) and fuzzes each target
#               briefly from its seeds.
#   make fuzz:  DC_FUZZ_SECONDS=N: the same, fuzzing each target for N seconds into the
#               growing corpus $DC_FUZZ_BUILD/corpus/<target>.
# Seeds are written at each run by make_seeds and py_seeds.py and copied from the golden
# cases. A failure leaves its input in $DC_FUZZ_BUILD/artifacts/<target>/ (test/fuzz/README.md).
# Prints a PASS/FAIL/SKIPPED line per check and the closing "N passed, N failed, N skipped" line.
build=${DC_FUZZ_BUILD:-build/fuzz}
golden=${DC_GOLDEN:-../shared/golden}
clip=${DC_CLIP_DATA:-../shared/clip}
faceapi=${DC_FACEAPI:-third_party/face-api}
python=${PYTHON:-/usr/bin/python3}
targets=${DC_FUZZ_TARGETS:-}
seconds=${DC_FUZZ_SECONDS:-}
corpus_root=$(cd "$(dirname "$0")/../corpus" 2>/dev/null && pwd)
passed=0; failed=0; skipped=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
# Missing tools or data skip a check, except in CI, where `make deps` provides them.
skip() {
    if [ "${CI:-}" = true ]; then fail "$1 (required when CI=true)"
    else echo "SKIPPED $1"; skipped=$((skipped + 1)); fi
}
# A failure shows the end of its log (libFuzzer's report).
report() {   # log file
    tail -n 40 "$1" | sed 's/^/    /'
}

finish() { echo "$passed passed, $failed failed, $skipped skipped"; [ "$failed" -eq 0 ]; exit; }

if [ -n "${DC_FUZZ_MISSING:-}" ]; then
    for t in $targets; do skip "fuzz_$t: no $DC_FUZZ_MISSING"; done
    finish
fi

# Golden files become seeds when they are small enough to mutate quickly.
copy_golden() {   # target, file name pattern
    [ -d "$golden" ] || return 0
    find "$golden" -name "$2" -size -256k -type f | while read -r f; do
        rel=${f#"$golden"/}
        cp "$f" "$build/seeds/$1/golden_$(printf '%s' "$rel" | tr / _)"
    done
}

rm -rf "$build/seeds"
if ! "$build/make_seeds" "$build/seeds" "$clip" "$golden" "$faceapi" >"$build/seeds.log" 2>&1 ||
   ! "$python" test/fuzz/py_seeds.py "$build/seeds" >>"$build/seeds.log" 2>&1; then
    report "$build/seeds.log"; fail "fuzz seeds: make_seeds or py_seeds.py failed"; finish
fi
copy_golden npy '*.npy'
mkdir -p "$build/seeds/image_header"
cp "$build/seeds/png/"* "$build/seeds/jpeg/"* "$build/seeds/image_header/" 2>/dev/null || true
# The head of Debian's predictor (libdlib-data) seeds the predictor check.
if [ -f /usr/share/dlib/shape_predictor_68_face_landmarks.dat ]; then
    mkdir -p "$build/seeds/predictor"
    head -c 20000 /usr/share/dlib/shape_predictor_68_face_landmarks.dat >"$build/seeds/predictor/debian_head.dat"
fi
copy_golden tokenize 'strings.json'
mkdir -p "$build/seeds/yaml" && cp test/configs/*.yml "$build/seeds/yaml/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$build/logs"
for t in $targets; do
    bin=$build/fuzz_$t
    if [ "$t" = tokenize ] && [ ! -f "$clip/bpe_simple_vocab_16e6.txt.gz" ]; then
        skip "fuzz_$t: no CLIP vocabulary in $clip"; continue
    fi
    if [ ! -x "$bin" ]; then fail "fuzz_$t: $bin is not built"; continue; fi
    artifacts=$build/artifacts/$t
    mkdir -p "$artifacts" "$build/seeds/$t"
    # Bounds that make an unbounded allocation, a leak or a hang a failure.
    set -- -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20 -artifact_prefix="$artifacts/"
    [ -f "test/fuzz/$t.dict" ] && set -- "$@" -dict="test/fuzz/$t.dict"

    if [ -n "$corpus_root" ] && [ -d "$corpus_root/$t" ] && \
       [ -n "$(ls -A "$corpus_root/$t")" ]; then
        n=$(ls -A "$corpus_root/$t" | wc -l)
        if "$bin" "$@" "$corpus_root/$t"/* >"$build/logs/$t.replay.log" 2>&1; then
            pass "fuzz_${t}_regressions ($n inputs)"
        else
            fail "fuzz_${t}_regressions: an input of test/corpus/$t fails again"
            report "$build/logs/$t.replay.log"
        fi
    fi

    if [ -n "$seconds" ]; then
        work=$build/corpus/$t
        mkdir -p "$work"
        set -- "$@" -max_total_time="$seconds" -print_final_stats=1
    else
        work=$build/brief/$t   # starts empty: `make test` costs the same every time
        rm -rf "$work"; mkdir -p "$work"
        set -- "$@" -max_total_time=2
    fi
    log=$build/logs/$t.log
    if "$bin" "$@" "$work" "$build/seeds/$t" >"$log" 2>&1; then
        summary=$(grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$log" | tail -n 1)
        pass "fuzz_$t: ${summary:-done}"
    else
        fail "fuzz_$t: see $log; the failing input is in $artifacts/"
        report "$log"
    fi
done
finish
