# Sourced by the binding test scripts: verdict lines and the closing count test/run.sh reads.
passed=0 failed=0 skipped=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
}
# A missing prerequisite: SKIP, or FAIL under CI=true (where everything must run).
skip() {
    if [ "${CI:-}" = true ]; then
        fail "$1" "$2 (required under CI=true)"
    else
        echo "SKIP $1: $2"
        skipped=$((skipped + 1))
    fi
}
finish() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
}
# A prerequisite of the rest of the script is missing: skip NAME WHY, then finish and exit.
skip_rest() {
    skip "$1" "$2"
    finish
    exit
}
