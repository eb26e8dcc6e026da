# Sourced by the serve tests (after test/bindings/lib.sh).
# serve_inputs: sets cli, base, tuned, clip and vocab from DC_CLI, DC_GOLDEN and DC_CLIP_DATA
# (make test sets them); 1 after a skip when a file is missing.
serve_inputs() {   # test name for the skip
    cli=${DC_CLI:-build/bin/diffclip}
    golden=${DC_GOLDEN:-../shared/golden}
    vocab=${DC_CLIP_DATA:-../shared/clip}/bpe_simple_vocab_16e6.txt.gz
    base=$golden/ddpm_unet/model.pt
    tuned=$golden/noise_combination/model_b.pt
    clip=$golden/clip_vit/clip_state_dict.pt
    for f in "$base" "$tuned" "$clip" "$vocab"; do
        if [ ! -f "$f" ]; then
            skip "$1" "golden data missing ($f)"
            return 1
        fi
    done
}

# serve_fixture CLI BASE TUNED CLIP VOCAB TMP makes TMP/models (b.pt,
# a full state dict; angry.delta, fine-tuned here on a 40x30 photo; evil.pt, a link to
# /etc/passwd; outside.pt, a link to a model outside the directory) and TMP/photo.png.
serve_fixture() {
    mkdir -p "$6/models" "$6/outside" &&
    cp "$3" "$6/models/b.pt" &&
    cp "$3" "$6/outside/model.pt" &&
    ln -s /etc/passwd "$6/models/evil.pt" &&
    ln -s ../outside/model.pt "$6/models/outside.pt" &&
    base64 -d >"$6/photo.png" <<'PNG' &&
iVBORw0KGgoAAAANSUhEUgAAACgAAAAeCAIAAADRv8uKAAAAoUlEQVR42sXNsQqCUABA0ecSjo2N
jY6OjY2NjY6NjY6NjY6NjY2OjY4uoiFREZEiUSJhESEiIiJif9GFsx9JiK4n2v+ThNxCcb+B4kEN
xcMKipUSitUCikc5FI8zKJ58oXj6gWLtDcWzFIrnTyjWEyhexFC8vEOxcYPiVQTF6xCKN1coNi9Q
vD1DsXWCYvsAxd4eio8+FAc7KH64UPxykPgHLfPIJS//0N4AAAAASUVORK5CYII=
PNG
    "$1" finetune --model "$2" --clip "$4" --vocab "$5" --images "$6/photo.png" \
        --src face --trg "angry face" --epochs 1 --t0 300 --inv-steps 8 --train-steps 2 \
        --lr 0.001 --cache "$6/angry.dclat" --out "$6/models/angry.delta" --threads 1
}
