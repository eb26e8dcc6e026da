#!/bin/sh
# diffclip serve's page in a real browser (test/browser/page_test.js): Debian's chromium
# driven by playwright-core (make deps installs it into test/browser/node_modules), against a
# server on an ephemeral loopback port over the fixture of test/serve/fixture.sh. Screenshots
# are kept in $DC_BUILD/serve/. Environment (make test sets it): DC_CLI, DC_GOLDEN,
# DC_CLIP_DATA, DC_BUILD.
. "$(dirname "$0")/../bindings/lib.sh"
. "$(dirname "$0")/../serve/fixture.sh"
shots=${DC_BUILD:-build}/serve
export DIFFCLIP_NUM_THREADS=1
serve_inputs page/browser || { finish; exit; }
if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null 2>&1 ||
   [ ! -d test/browser/node_modules/playwright-core ]; then
    skip_rest "page/browser" "needs /usr/bin/chromium, node and test/browser/node_modules (make deps)"
fi
tmp=$(mktemp -d) || exit 1
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
if ! serve_fixture "$cli" "$base" "$tuned" "$clip" "$vocab" "$tmp" >"$tmp/fixture.log" 2>&1; then
    fail "page/fixture" "$(tail -n 20 "$tmp/fixture.log")"
    finish
    exit
fi
rm "$tmp/models/evil.pt" "$tmp/models/outside.pt"
mkfifo "$tmp/ready"
"$cli" serve --model "$base" --finetuned-dir "$tmp/models" --port 0 --clip "$clip" \
    --vocab "$vocab" --threads 1 >"$tmp/ready" 2>"$tmp/server.log" &
pid=$!
# The first line is "listening on URL" once the server accepts connections (or EOF if it died).
url=$(timeout 120 head -n 1 "$tmp/ready" | sed -n 's/^listening on //p')
if [ -z "$url" ]; then
    fail "page/server" "no 'listening on' line: $(tail -n 20 "$tmp/server.log")"
    finish
    exit
fi
mkdir -p "$shots"
timeout 600 node test/browser/page_test.js "$url" "$tmp/photo.png" "$shots"
