#!/bin/sh
# The documentation keeps up with the code: docs/api.md mentions every DC_API function of
# include/diffclip.h, and docs/cli.md is what tools/gen_cli_md.sh makes of the built tool's
# help texts (`make cli-docs` regenerates it). Environment: DC_CLI (the built diffclip).
. "$(dirname "$0")/../bindings/lib.sh"
cli=${DC_CLI:-build/bin/diffclip}

# Every declaration starts "DC_API type name(" on one line.
functions=$(grep '^DC_API' include/diffclip.h | sed 's/(.*//; s/.*[ *]//')
count=$(printf '%s\n' "$functions" | grep -c .)
missing=$(for f in $functions; do grep -qw -- "$f" docs/api.md || echo "$f"; done)
if [ "$count" -lt 80 ]; then
    fail api_md_mentions_every_function "found only $count DC_API functions in include/diffclip.h"
elif [ -n "$missing" ]; then
    fail api_md_mentions_every_function "not in docs/api.md: $(echo $missing)"
else
    pass "api_md_mentions_every_function ($count functions)"
fi

tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT
if ! sh tools/gen_cli_md.sh "$cli" >"$tmp" 2>&1; then
    fail cli_md_matches_help "tools/gen_cli_md.sh $cli failed: $(tail -n 3 "$tmp")"
elif ! diff -u docs/cli.md "$tmp" >"$tmp.diff"; then
    fail cli_md_matches_help "docs/cli.md differs from the help texts (run make cli-docs): \
$(head -n 20 "$tmp.diff")"
else
    pass cli_md_matches_help
fi
rm -f "$tmp.diff"
finish
