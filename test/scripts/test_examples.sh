#!/bin/sh
# The C examples (examples/c/*.c): each builds against include/diffclip.h and the built
# library alone, prints its usage line when called without arguments, and does its task on
# the tiny golden models (ddpm_unet's model.pt as the base, noise_combination's model_b.pt as
# a "fine-tuned" model, clip_vit's CLIP): the images it writes are PNGs of the model's
# resolution, checked in the files' own headers. Environment (make test sets it):
# DIFFCLIP_LIB_DIR (absolute), DC_BUILD, DC_GOLDEN, DC_CLIP_DATA, CC.
. "$(dirname "$0")/../bindings/lib.sh"
lib_dir=${DIFFCLIP_LIB_DIR:-$PWD/lib}
bin=${DC_BUILD:-build}/examples/c
golden=${DC_GOLDEN:-../shared/golden}
vocab=${DC_CLIP_DATA:-../shared/clip}/bpe_simple_vocab_16e6.txt.gz
# One thread: the tiny models gain nothing from more on a shared machine.
export DIFFCLIP_NUM_THREADS=1
mkdir -p "$bin"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

examples="edit_image finetune multi_attribute transition translate latent_cache align_edit"
for name in $examples; do
    if log=$(${CC:-cc} -std=c11 -Wall -Wextra -Werror -Iinclude "examples/c/$name.c" \
                 -o "$bin/$name" -L"$lib_dir" -ldiffclip -Wl,-rpath,"$lib_dir" 2>&1); then
        pass "examples/build_$name"
    else
        fail "examples/build_$name" "$log"
    fi
    log=$("$bin/$name" 2>&1)
    if [ $? -eq 2 ] && printf '%s\n' "$log" | grep -q "^usage: .*$name "; then
        pass "examples/${name}_usage"
    else
        fail "examples/${name}_usage" "$log"
    fi
done

base=$golden/ddpm_unet/model.pt
tuned=$golden/noise_combination/model_b.pt
clip=$golden/clip_vit/clip_state_dict.pt
for f in "$base" "$tuned" "$clip" "$vocab"; do
    if [ ! -f "$f" ]; then
        skip_rest "examples/golden" "golden data missing ($f)"
    fi
done

# A 40x30 RGB gradient: not square, so the examples centre-crop it before resizing.
base64 -d >"$tmp/photo.png" <<'PNG'
iVBORw0KGgoAAAANSUhEUgAAACgAAAAeCAIAAADRv8uKAAAAoUlEQVR42sXNsQqCUABA0ecSjo2N
jY6OjY2NjY6NjY6NjY6NjY2OjY4uoiFREZEiUSJhESEiIiJif9GFsx9JiK4n2v+ThNxCcb+B4kEN
xcMKipUSitUCikc5FI8zKJ58oXj6gWLtDcWzFIrnTyjWEyhexFC8vEOxcYPiVQTF6xCKN1coNi9Q
vD1DsXWCYvsAxd4eio8+FAc7KH64UPxykPgHLfPIJS//0N4AAAAASUVORK5CYII=
PNG

# "WxH" of a PNG, from its IHDR chunk (big-endian width and height at bytes 16..23).
png_size() {
    od -An -tu1 -j16 -N8 "$1" | {
        read -r w0 w1 w2 w3 h0 h1 h2 h3 &&
            echo "$(((w0 << 24) | (w1 << 16) | (w2 << 8) | w3))x$(((h0 << 24) | (h1 << 16) | (h2 << 8) | h3))"
    }
}

# run NAME SIZE OUT.png ARGS...: the example succeeds, says it wrote OUT.png (SIZE), and the
# file is a PNG of that size.
run() {
    name=$1 size=$2 out=$3
    shift 3
    if ! log=$("$bin/${name%%:*}" "$@" 2>&1); then
        fail "examples/$name" "$log"
    elif ! printf '%s\n' "$log" | grep -qxF "wrote $out ($size)"; then
        fail "examples/$name" "no 'wrote $out ($size)' line: $log"
    elif [ "$(png_size "$out")" != "$size" ]; then
        fail "examples/$name" "$out is $(png_size "$out"), not $size"
    else
        pass "examples/$name"
    fi
}

run edit_image 32x32 "$tmp/edit.png" "$base" "$tuned" "$tmp/photo.png" "$tmp/edit.png" 300
run multi_attribute:schedule 32x32 "$tmp/multi.png" \
    "$base" "$tuned" "$tuned" "$tmp/photo.png" "$tmp/multi.png"
run multi_attribute:weights 32x32 "$tmp/multi2.png" \
    "$base" "$tuned" "$tuned" "$tmp/photo.png" "$tmp/multi2.png" 0.4 0.6
run transition 128x32 "$tmp/strip.png" "$base" "$tuned" "$tmp/photo.png" 4 "$tmp/strip.png"
run translate 32x32 "$tmp/translated.png" \
    "$base" "$tuned" "$tmp/photo.png" "$tmp/translated.png" "$tmp/projected.png"
if [ "$(png_size "$tmp/projected.png")" = 32x32 ]; then
    pass "examples/translate_projection"
else
    fail "examples/translate_projection" "no 32x32 $tmp/projected.png"
fi

# Align a real portrait, then edit the aligned face (Debian's predictor and photo); a photo
# without a face is edited as given, with a warning.
astronaut=/usr/lib/python3/dist-packages/skimage/data/astronaut.png
if [ -f /usr/share/dlib/shape_predictor_68_face_landmarks.dat ] && [ -f "$astronaut" ]; then
    run align_edit 32x32 "$tmp/aligned_edit.png" \
        "$base" "$tuned" "$astronaut" "$tmp/aligned_edit.png" "$tmp/aligned.png"
    if [ "$(png_size "$tmp/aligned.png")" = 32x32 ]; then
        pass "examples/align_edit_aligned_face"
    else
        fail "examples/align_edit_aligned_face" "no 32x32 $tmp/aligned.png"
    fi
    log=$("$bin/align_edit" "$base" "$tuned" "$tmp/photo.png" "$tmp/noface.png" 2>&1)
    if [ $? -eq 0 ] && printf '%s\n' "$log" | grep -q "warning: no face was found"; then
        pass "examples/align_edit_without_a_face"
    else
        fail "examples/align_edit_without_a_face" "$log"
    fi
else
    skip "examples/align_edit" "Debian's predictor or skimage's astronaut.png missing (make deps)"
fi

# Fine-tuning writes a delta that loads on top of its base model: edit with it.
if log=$("$bin/finetune" "$base" "$clip" "$vocab" "$tmp/photo.png" "$tmp/ft.dclat" \
             "$tmp/angry.delta" 2>&1) &&
    printf '%s\n' "$log" | grep -q "^epoch 1/1 image 1/1: loss [0-9]" &&
    printf '%s\n' "$log" | grep -qxF "wrote $tmp/angry.delta" && [ -s "$tmp/angry.delta" ]; then
    pass "examples/finetune"
    run edit_image:with_finetuned_delta 32x32 "$tmp/edit2.png" \
        "$base" "$tmp/angry.delta" "$tmp/photo.png" "$tmp/edit2.png"
else
    fail "examples/finetune" "$log"
fi

# The first run inverts both images; the second, a new process, finds them in the cache.
cache=$tmp/photos.dclat
first=$("$bin/latent_cache" "$base" "$cache" "$tmp/photo.png" "$tmp/strip.png" 2>&1)
second=$("$bin/latent_cache" "$base" "$cache" "$tmp/strip.png" "$tmp/photo.png" 2>&1)
if [ "$(printf '%s\n' "$first" | grep -c ', inverted; latent 3x32x32')" = 2 ] &&
    printf '%s\n' "$second" | grep -qx "$cache: 2 entries" &&
    printf '%s\n' "$second" | grep -q "^$tmp/strip.png: entry 1, found in the cache" &&
    printf '%s\n' "$second" | grep -q "^$tmp/photo.png: entry 0, found in the cache"; then
    pass "examples/latent_cache_reused"
else
    fail "examples/latent_cache_reused" "$first / $second"
fi
# A cache is bound to its model: another model's is refused, naming the difference.
log=$("$bin/latent_cache" "$tuned" "$cache" "$tmp/photo.png" 2>&1)
if [ $? -eq 1 ] && printf '%s\n' "$log" | grep -q "made with another model"; then
    pass "examples/latent_cache_refuses_other_model"
else
    fail "examples/latent_cache_refuses_other_model" "$log"
fi
finish
