#!/bin/sh
# Builds the C++ examples (examples/cpp) with g++ -std=c++17 against include/ and the built
# library, and runs them on the golden ddpm_unet case. Environment (make test sets it):
# DIFFCLIP_LIB_DIR (absolute), DC_BUILD, CXX, DC_GOLDEN.
. "$(dirname "$0")/lib.sh"
lib_dir=${DIFFCLIP_LIB_DIR:-$PWD/lib}
out=${DC_BUILD:-build}/examples/cpp
golden=${DC_GOLDEN:-../shared/golden}/ddpm_unet
mkdir -p "$out"

for src in examples/cpp/*.cpp; do
    name=$(basename "$src" .cpp)
    if log=$(${CXX:-g++} -std=c++17 -Wall -Wextra -Werror -Iinclude "$src" -o "$out/$name" \
                 -L"$lib_dir" -ldiffclip -Wl,-rpath,"$lib_dir" 2>&1); then
        pass "cpp/build_$name"
    else
        fail "cpp/build_$name" "$log"
    fi
done

# A failing call becomes an exception that carries dc_last_error().
log=$("$out/inspect_checkpoint" "$out/missing.pt" 2>&1)
if [ $? -eq 1 ] && printf '%s' "$log" | grep -q "missing.pt: cannot open.*(DC_EIO)"; then
    pass "cpp/error_carries_last_error"
else
    fail "cpp/error_carries_last_error" "$log"
fi

if [ ! -d "$golden" ]; then
    skip_rest "cpp/golden" "golden data missing ($golden)"
fi

# Both containers of the case hold the same tensors: the listings agree line for line.
zip=$("$out/inspect_checkpoint" "$golden/model.pt" 2>&1) && \
    legacy=$("$out/inspect_checkpoint" "$golden/model_legacy.pt" 2>&1)
if [ $? -eq 0 ] && printf '%s\n' "$zip" | head -n 1 | grep -q "torch zip, 182 tensors" &&
   printf '%s\n' "$zip" | grep -qx "temb.dense.0.weight float32 \[128, 32\]" &&
   [ "$(printf '%s\n' "$zip" | sed 1d | sort)" = "$(printf '%s\n' "$legacy" | sed 1d | sort)" ]
then
    pass "cpp/inspect_checkpoint_golden"
else
    fail "cpp/inspect_checkpoint_golden" "$zip"
fi

if log=$("$out/model_eps" "$golden/model.pt" "$golden/x.npy" "$golden/t.npy" "$out/eps.npy" \
             "$golden/eps.npy" 2>&1); then
    pass "cpp/model_eps_golden ($(printf '%s\n' "$log" | tail -n 1))"
else
    fail "cpp/model_eps_golden" "$log"
fi
finish
