#!/bin/sh
# The layers of src/ call only downward. LAYERS is the one place that orders the modules,
# lowest first; modules in one group (a comma list) are siblings and do not reach each other.
# A module may include the headers of its own folder and of lower layers, and its objects may
# use only symbols that its own or lower layers define. A new folder under src/ must be placed
# here first. Environment: DC_BUILD (the build folder; without its objects the symbol check
# is skipped).
. "$(dirname "$0")/../bindings/lib.sh"
LAYERS="core io ctorch,cdlib nn diffusion,cache,face finetune api client serve cli"

rank_of() {
    rank=0
    for group in $LAYERS; do
        case ",$group," in *",$1,"*) echo "$rank"; return ;; esac
        rank=$((rank + 1))
    done
    echo ""
}

# "module included-module file" for every #include "../X/..." in src/.
includes=$(grep -rHo '^[[:space:]]*#[[:space:]]*include[[:space:]]*"\.\./[^/"]*/' src \
               --include='*.c' --include='*.h' --include='*.cpp' --include='*.hpp' |
           sed 's|^src/\([^/]*\)/\([^:]*\):.*"\.\./\([^/]*\)/$|\1 \3 src/\1/\2|')

unplaced=""
for module in $(ls src); do
    [ -d "src/$module" ] || continue
    [ -n "$(rank_of "$module")" ] || unplaced="$unplaced $module"
done
if [ -n "$unplaced" ]; then
    fail modules_are_placed "src/ folders missing from LAYERS in $0:$unplaced"
else
    pass modules_are_placed
fi

upward=$(printf '%s\n' "$includes" | while read -r module used file; do
    [ -n "$module" ] || continue
    [ "$module" = "$used" ] && continue
    from=$(rank_of "$module"); to=$(rank_of "$used")
    if [ -z "$to" ] || [ -z "$from" ] || [ "$to" -ge "$from" ]; then
        echo "$file includes ../$used/"
    fi
done | sort -u)
if [ -n "$upward" ]; then
    fail includes_go_downward "$(printf '%s\n' "$upward" | head -n 20 | tr '\n' ';')"
else
    pass "includes_go_downward ($(printf '%s\n' "$includes" | grep -c .) cross-module includes)"
fi

# The symbol check: each module's undefined symbols that another module's objects define.
objects=${DC_BUILD:-build}/obj/src
if ! command -v nm >/dev/null 2>&1 || [ ! -d "$objects" ]; then
    skip_rest calls_go_downward "no nm or no objects under $objects (build first)"
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
for dir in "$objects"/*/; do
    module=$(basename "$dir")
    [ -d "src/$module" ] || continue
    for obj in "$dir"*.o; do
        [ -f "$obj" ] || continue
        base=src/$module/$(basename "$obj" .o)
        [ -f "$base.c" ] || [ -f "$base.cpp" ] || continue   # a stale object
        nm -P --defined-only "$obj" | awk -v m="$module" '$2 ~ /^[TDBRVWu]$/ { print $1, m }' >>"$tmp/defs"
        nm -P --undefined-only "$obj" | awk -v m="$module" '{ print $1, m }' >>"$tmp/uses"
    done
done
touch "$tmp/defs" "$tmp/uses"
sort -u -o "$tmp/defs" "$tmp/defs"
sort -u -o "$tmp/uses" "$tmp/uses"
# "symbol owner user" for every symbol one module defines and another uses.
calls=$(join "$tmp/defs" "$tmp/uses" | while read -r symbol owner module; do
    [ "$owner" = "$module" ] && continue
    from=$(rank_of "$module"); to=$(rank_of "$owner")
    [ -n "$from" ] && [ -n "$to" ] && [ "$to" -lt "$from" ] && continue
    echo "$module uses $symbol of $owner"
done)
if [ -n "$calls" ]; then
    fail calls_go_downward "$(printf '%s\n' "$calls" | head -n 20 | tr '\n' ';')"
else
    pass calls_go_downward
fi
finish
