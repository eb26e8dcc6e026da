#!/bin/sh
# The Rust binding's tests: `cargo test --offline` in bindings/rust (diffclip-sys's check of
# its declarations against include/diffclip.h, the safe API, golden cases), one verdict line
# per test. Environment (make test sets it): DIFFCLIP_LIB_DIR (absolute), CARGO_TARGET_DIR,
# DC_GOLDEN, DC_CLIP_DATA. Without cargo on PATH: SKIP (FAIL under CI=true).
. "$(dirname "$0")/lib.sh"
if ! command -v cargo >/dev/null 2>&1; then
    skip_rest "rust" "cargo is not on PATH (make deps installs Debian's)"
fi
log=$(cargo test --offline --manifest-path bindings/rust/Cargo.toml -- --nocapture 2>&1)
status=$?
# "test NAME ... ok|FAILED|ignored" per test; a test that printed
# "diffclip-test-skip: NAME: why" (missing golden data) counts as skipped.
verdicts=$(printf '%s\n' "$log" | awk '
    /^ *Running / { suite = ($2 == "unittests") ? $3 : $2; sub(/^tests\//, "", suite); sub(/\.rs$/, "", suite) }
    /^ *Doc-tests / { suite = "doc-" $2 }
    /^diffclip-test-skip: / {
        line = substr($0, 21); name = line; sub(/: .*/, "", name); why = line; sub(/^[^:]*: /, "", why)
        skipped[name] = why
    }
    /^test .* \.\.\. (ok|FAILED|ignored)/ {
        name = $0; sub(/^test /, "", name); sub(/ \.\.\. .*/, "", name); result = $NF
        label = "rust/" suite "/" name
        if (result == "FAILED") print "FAIL " label
        else if (result == "ignored") print "SKIP " label ": ignored"
        else if (name in skipped) print "SKIP " label ": " skipped[name]
        else print "PASS " label
    }')
if [ "$status" -ne 0 ] || printf '%s\n' "$verdicts" | grep -q '^FAIL'; then
    printf '%s\n' "$log" | tail -n 60 | sed 's/^/    /'
fi
while IFS= read -r line; do
    case "$line" in
    "PASS "*) pass "${line#PASS }" ;;
    "FAIL "*) fail "${line#FAIL }" "see the cargo output above" ;;
    "SKIP "*) name=${line#SKIP }; skip "${name%%: *}" "${name#*: }" ;;
    esac
done <<EOF_VERDICTS
$verdicts
EOF_VERDICTS
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    fail "rust/cargo" "cargo test exited with status $status"
fi
finish
