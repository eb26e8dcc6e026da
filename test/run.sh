#!/bin/sh
# Runs every test binary given, prints their output and one closing line with the totals.
# A binary that crashes or prints no closing line counts as one failure.
passed=0; failed=0; skipped=0
for bin in "$@"; do
    name=${bin##*/}
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out" | sed "s|^|[$name] |"
    summary=$(printf '%s\n' "$out" | tail -n 1)
    case "$summary" in
    *" passed, "*" failed, "*" skipped")
        set -- $summary
        passed=$((passed + $1)); failed=$((failed + $3)); skipped=$((skipped + $5))
        if [ "$rc" -ne 0 ] && [ "$3" -eq 0 ]; then
            echo "[$name] exited with status $rc"; failed=$((failed + 1))
        fi ;;
    *)
        echo "[$name] exited with status $rc without a summary"; failed=$((failed + 1)) ;;
    esac
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
