#!/bin/sh
# The ABI check (`make check-abi`, also run by `make test`): abidiff compares the built
# shared library's public interface (the types and functions of include/) with the committed
# baseline abi/libdiffclip.abi that `make abi-baseline` writes.
#   - added functions are compatible: PASS, and the additions are listed (refresh the
#     baseline at release time);
#   - a removed function (abidiff's INCOMPATIBLE bit, 8) or a changed one (a parameter, a
#     return type, or a public struct or enum it reaches: the ABI-change bit, 4, with changes
#     other than additions) FAILs: if the change is meant and compatible (a field appended to
#     a versioned options struct), refresh the baseline; if it breaks callers, also bump
#     DC_VERSION_MAJOR (the SONAME). README.md, "ABI".
# Environment: DIFFCLIP_LIBRARY (the built libdiffclip.so.MAJOR; default lib/libdiffclip.so.0).
. "$(dirname "$0")/../bindings/lib.sh"
library=${DIFFCLIP_LIBRARY:-lib/libdiffclip.so.0}
baseline=abi/libdiffclip.abi

if ! command -v abidiff >/dev/null 2>&1; then
    skip_rest abi_compatible_with_baseline "abidiff missing (make deps installs abigail-tools)"
fi
if ! readelf -S "$library" 2>/dev/null | grep -q '\.debug_info'; then
    skip_rest abi_compatible_with_baseline "$library has no debug information (build with -g)"
fi

report=$(abidiff --headers-dir2 include --drop-private-types --exported-interfaces-only \
             --no-show-locs "$baseline" "$library" 2>&1)
status=$?
# Every summary line ("Functions changes summary: 0 Removed, 0 Changed, 2 Added functions")
# without removals or changes: additions only.
only_additions() {
    printf '%s\n' "$report" | grep 'summary:' | grep -qv '0 Removed, 0 Changed' && return 1
    return 0
}
if [ "$status" -eq 0 ]; then
    pass abi_compatible_with_baseline
elif [ $((status & 8)) -ne 0 ] || [ $((status & 4)) -eq 0 ] || ! only_additions; then
    printf '%s\n' "$report"
    fail abi_compatible_with_baseline "the public ABI changed (abidiff status $status, report \
above): run 'make abi-baseline' if the change is meant, and bump DC_VERSION_MAJOR if it \
breaks callers"
else
    printf '%s\n' "$report" | grep '^  \[A\]'
    pass "abi_compatible_with_baseline (added functions: \
$(printf '%s\n' "$report" | grep -c '^  \[A\]'); 'make abi-baseline' at release)"
fi
finish
