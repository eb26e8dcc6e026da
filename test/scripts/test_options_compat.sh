#!/bin/sh
# A program built against an older header works with this library: the header is copied with
# the fields of each options struct's latest version removed (from its "/* Version N" comment
# to the end of the struct) and that version number lowered, test/compat/old_options.c is
# compiled against the copy and run against the built library, each of its options structs
# at the end of a page followed by an inaccessible one (test/compat/old_options.c).
# Environment: DIFFCLIP_LIB_DIR (the built library's folder), DC_GOLDEN (optional: the
# sampler's options are exercised with its DDPM model), CC.
. "$(dirname "$0")/../bindings/lib.sh"
libdir=${DIFFCLIP_LIB_DIR:-lib}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

awk '
    match($0, /^#define DC_[A-Z_]*_OPTIONS_VERSION [0-9]+$/) {
        n = $3 + 0
        if (n >= 2) {
            name = tolower(substr($2, 4, length($2) - 11))   # DC_MODEL_OPTIONS_VERSION -> model_options
            latest["dc_" name] = n
            print "#define " $2 " " (n - 1)
            shrunk++
            next
        }
    }
    /^typedef struct dc_[a-z_]*_options \{/ { current = $3 }
    current != "" && latest[current] && $0 ~ ("/\\* Version " latest[current] "[^0-9]") { skipping = 1 }
    current != "" && $0 ~ ("^} " current ";") { skipping = 0; current = "" }
    !skipping { print }
    END { print shrunk + 0 > "/dev/stderr" }
' include/diffclip.h >"$tmp/diffclip.h" 2>"$tmp/shrunk"
shrunk=$(cat "$tmp/shrunk")

if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Werror -I"$tmp" -o "$tmp/old_options" test/compat/old_options.c \
        -L"$libdir" -ldiffclip -Wl,-rpath,"$(cd "$libdir" && pwd)" >"$tmp/log" 2>&1; then
    fail old_program_builds "$(head -n 20 "$tmp/log")"
    finish
    exit
fi
pass "old_program_builds ($shrunk options structs one version older)"
model=
[ -n "${DC_GOLDEN:-}" ] && [ -f "$DC_GOLDEN/ddpm_unet/model.pt" ] && model=$DC_GOLDEN/ddpm_unet/model.pt
[ -n "$model" ] || skip old_program_edits "no golden DDPM model (DC_GOLDEN)"
out=$("$tmp/old_options" $model 2>&1); status=$?
printf '%s\n' "$out" | grep -v ' passed, ' | sed 's/^/  /'
if [ "$status" -eq 0 ] && printf '%s\n' "$out" | tail -n 1 | grep -q ' 0 failed'; then
    pass old_program_runs_against_this_library
else
    fail old_program_runs_against_this_library "status $status: $(printf '%s\n' "$out" | tail -n 3)"
fi
finish
