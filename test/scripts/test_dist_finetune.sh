#!/bin/sh
# Data-parallel fine-tuning: two Gloo ranks on 127.0.0.1 against one process, and the faults
# (test/scripts/dist_finetune.py says what is checked). Environment: DC_CLI, DC_GOLDEN,
# DC_CLIP_DATA, PYTHON (with numpy).
. "$(dirname "$0")/../bindings/lib.sh"
python=${PYTHON:-python3}
out=$("$python" "$(dirname "$0")/dist_finetune.py" 2>&1)
status=$?
printf '%s\n' "$out" | grep -v '^\(PASS\|FAIL\|SKIP\) '
while IFS= read -r line; do
    case $line in
        "PASS "*) pass "${line#PASS }" ;;
        "FAIL "*) rest=${line#FAIL }; fail "${rest%%: *}" "${rest#*: }" ;;
        "SKIP "*) rest=${line#SKIP }; skip "${rest%%: *}" "${rest#*: }" ;;
    esac
done <<OUT
$out
OUT
[ "$status" -eq 0 ] || fail dist/driver "exit $status"
finish
