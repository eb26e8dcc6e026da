#!/bin/sh
# The installed tree: `make install` gives a header, libraries, the CLI and diffclip.pc with
# which `cc prog.c $(pkg-config --cflags --libs diffclip)` builds a working program; DESTDIR
# staging; the shared library exports only dc_ symbols and carries its SONAME.
# Run by `make test` from the repository root (DC_MAKE_ARGS: the build's make variables).
passed=0; failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
lib=${DC_LIBOUT:-lib}

# shellcheck disable=SC2086
if make -s install PREFIX="$tmp/prefix" $DC_MAKE_ARGS >"$tmp/install.log" 2>&1; then
    pass install_into_prefix
else
    fail install_into_prefix "$(tail -n 5 "$tmp/install.log")"
fi

cat >"$tmp/prog.c" <<'PROG'
#include <diffclip.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    dc_model *model = NULL;
    dc_status s = dc_model_load(&model, "/nonexistent/celeba_hq.ckpt", NULL);
    if (s == DC_OK || model != NULL || !strstr(dc_last_error(), "/nonexistent/celeba_hq.ckpt")) {
        fprintf(stderr, "unexpected: status %d, message '%s'\n", (int)s, dc_last_error());
        return 1;
    }
    printf("%s %s\n", dc_version(), dc_status_name(s));
    return 0;
}
PROG
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
if cc "$tmp/prog.c" -o "$tmp/prog" $(pkg-config --cflags --libs diffclip) 2>"$tmp/cc.log"; then
    pass build_with_pkg_config
    if out=$(LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/prog" 2>&1) && [ "$out" = "$(pkg-config --modversion diffclip) DC_EIO" ]; then
        pass installed_program_reports_missing_file
    else
        fail installed_program_reports_missing_file "$out"
    fi
else
    fail build_with_pkg_config "$(cat "$tmp/cc.log")"
fi

if [ -x "$tmp/prefix/bin/diffclip" ] && LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/prefix/bin/diffclip" --version >/dev/null; then
    pass installed_cli_runs
else
    fail installed_cli_runs "$tmp/prefix/bin/diffclip does not run"
fi

# shellcheck disable=SC2086
if make -s install DESTDIR="$tmp/stage" PREFIX=/usr/local $DC_MAKE_ARGS >"$tmp/stage.log" 2>&1 &&
    [ -f "$tmp/stage/usr/local/include/diffclip.h" ] &&
    [ -f "$tmp/stage/usr/local/lib/libdiffclip.a" ] &&
    [ -L "$tmp/stage/usr/local/lib/libdiffclip.so.0" ] &&
    grep -q '^prefix=/usr/local$' "$tmp/stage/usr/local/lib/pkgconfig/diffclip.pc"; then
    pass destdir_staging
else
    fail destdir_staging "$(tail -n 5 "$tmp/stage.log")"
fi

so="$lib/libdiffclip.so.0"
others=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^dc_')
if [ -z "$others" ] && nm -D --defined-only "$so" | grep -q ' dc_version$'; then
    pass only_dc_symbols_exported
else
    fail only_dc_symbols_exported "$(echo "$others" | head -n 5 | tr '\n' ' ')"
fi
# The static library too (a partial link with every other name local): the global symbols
# it defines, weak ones included, are the API's; but for the static variables of inline
# functions of the headers we include (libstdc++, c10, dlib: GNU unique symbols, type u),
# which must stay one per process (c10's Dispatcher singleton) and which the linker merges
# with the program's and the libraries' own copy.
archive="$lib/libdiffclip.a"
others=$(nm -g --defined-only "$archive" | awk 'NF == 3 && $2 != "u" {print $3}' | grep -v '^dc_')
if [ -z "$others" ] && nm -g --defined-only "$archive" | grep -q ' T dc_version$'; then
    pass static_library_defines_only_dc_symbols
else
    fail static_library_defines_only_dc_symbols "$(echo "$others" | head -n 5 | tr '\n' ' ')"
fi
if readelf -d "$so" | grep -q 'SONAME.*\[libdiffclip\.so\.0\]'; then
    pass soname_is_libdiffclip_so_0
else
    fail soname_is_libdiffclip_so_0 "$(readelf -d "$so" | grep SONAME)"
fi

echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
