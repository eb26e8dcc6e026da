/* The table of commands and the shared error printers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"

#define CLIP_HELP                                                                          \
    "  --clip C          CLIP weights: the published TorchScript .pt (ViT-B/16.pt) or a\n" \
    "                    state dict; required\n"                                           \
    "  --half            compute in float16 as CLIP does on a GPU (CUDA only; default\n"   \
    "                    float32)\n"

const cli_command cli_cmd_tokenize = {
    "tokenize", "CLIP tokens of texts", "tokenize --vocab V [--truncate] --out T.npy [--] TEXT...",
     "Tokenizes each TEXT as clip.tokenize does (context 77) and writes T.npy, int64 [N, 77]:\n"
     "row i is 49406 (start), the BPE ids of TEXT i, 49407 (end), then zeros. Text is cleaned\n"
     "as CLIP does (HTML entities, whitespace, lower case) except for ftfy.fix_text.\n"
     "\n"
     "options:\n"
     "  --vocab V         CLIP's vocabulary, bpe_simple_vocab_16e6.txt.gz; required\n"
     "  --out T.npy       the tokens; required\n"
     "  --truncate        cut a text over 77 tokens to 77, the last one 49407 (default: such\n"
     "                    a text is an error)\n"
     "  --                ends the options: TEXTs after it may start with '-'\n"
     "\n"
     "example:\n"
     "  diffclip tokenize --vocab bpe_simple_vocab_16e6.txt.gz --out t.npy 'a face' 'an angry face'",
     cli_run_tokenize};

const cli_command cli_cmd_clip_image = {
    "clip-image", "CLIP image features", "clip-image --clip C --x X.npy --out F.npy [OPTIONS]",
     "Writes F.npy, float32 [N, D]: CLIP's image features (encode_image, not normalised) of\n"
     "X.npy, float32 [N, 3, S, S] images already CLIP-normalised (S is the model's input size,\n"
     "224 for ViT-B/16; D its embedding size, 512).\n"
     "\n"
     "options:\n"
     CLIP_HELP
     "  --x X.npy         the images; required\n"
     "  --out F.npy       the features; required\n"
     CLI_COMPUTE_HELP
     "\n"
     "example:\n"
     "  diffclip clip-image --clip ViT-B-16.pt --x x.npy --out f.npy --device cpu",
     cli_run_clip_image};

const cli_command cli_cmd_clip_text = {
    "clip-text", "CLIP text features", "clip-text --clip C --tokens T.npy --out F.npy [OPTIONS]",
     "Writes F.npy, float32 [N, D]: CLIP's text features (encode_text, not normalised) of\n"
     "T.npy, int64 or int32 [N, 77] tokens as 'diffclip tokenize' writes them.\n"
     "\n"
     "options:\n"
     CLIP_HELP
     "  --tokens T.npy    the tokens; required\n"
     "  --out F.npy       the features; required\n"
     CLI_COMPUTE_HELP
     "\n"
     "example:\n"
     "  diffclip clip-text --clip ViT-B-16.pt --tokens t.npy --out f.npy",
     cli_run_clip_text};

const cli_command cli_cmd_clip_loss = {
    "clip-loss", "DiffusionCLIP's directional CLIP loss",
     "clip-loss --clip C --vocab V --src TEXT --trg TEXT --x-src A.npy --x-trg B.npy "
     "--out L.npy [--grad-out G.npy] [OPTIONS]",
     "The directional CLIP loss of editing the images A (described by --src) into B (described\n"
     "by --trg), as DiffusionCLIP computes it: the text direction is the normalised mean over\n"
     "CLIP's 79 ImageNet prompt templates of norm(E_T(trg)) - norm(E_T(src)); the images in\n"
     "[-1, 1] are preprocessed as DiffusionCLIP does (bicubic resize to 224, no antialias).\n"
     "Writes L.npy, float32 [2] = [L_direction, -log((2 - L_direction) / 2)]. For a batch of\n"
     "N pairs L_direction is the batch mean of 1 - cos (the published loss is that mean, and\n"
     "the second entry, what DiffusionCLIP's fine-tuning minimises, is taken of the mean).\n"
     "\n"
     "options:\n"
     CLIP_HELP
     "  --vocab V         CLIP's vocabulary, bpe_simple_vocab_16e6.txt.gz; required\n"
     "  --src TEXT        the source text, e.g. 'face'; required\n"
     "  --trg TEXT        the target text, e.g. 'angry face'; required\n"
     "  --x-src A.npy     the source images, float32 [N, 3, H, W] in [-1, 1], or a PNG/JPEG\n"
     "                    file; required\n"
     "  --x-trg B.npy     the edited images, same shape; required\n"
     "  --size N          side an image file is centre-cropped and resized to (Lanczos, as\n"
     "                    DiffusionCLIP loads images; default 256)\n"
     "  --out L.npy       the losses; required\n"
     "  --grad-out G.npy  also the gradient of the loss w.r.t. B, float32 of B's shape\n"
     "  --loss-form F     the loss G is the gradient of: log, -log((2 - L_direction) / 2)\n"
     "                    (default, as DiffusionCLIP), or direction, L_direction (the paper)\n"
     CLI_COMPUTE_HELP
     "\n"
     "example:\n"
     "  diffclip clip-loss --clip ViT-B-16.pt --vocab bpe_simple_vocab_16e6.txt.gz \\\n"
     "      --src face --trg 'angry face' --x-src x0.npy --x-trg x.npy --out l.npy --grad-out g.npy",
     cli_run_clip_loss};

const cli_command cli_cmd_clip_score = {
    "clip-score", "cosine similarity of a photo to texts",
     "clip-score --clip C --vocab V --image IMG [OPTIONS] [--] TEXT...",
     "Prints one line per TEXT: SCORE<TAB>TEXT, SCORE the cosine similarity of CLIP's features\n"
     "of the photo IMG and of TEXT (CLIP's logits are 100 x SCORE). IMG (PNG or JPEG) is\n"
     "preprocessed as CLIP's own transform does it: shorter side resized to 224 with Pillow's\n"
     "bicubic filter, centre crop, CLIP's mean and std.\n"
     "\n"
     "options:\n"
     CLIP_HELP
     "  --vocab V         CLIP's vocabulary, bpe_simple_vocab_16e6.txt.gz; required\n"
     "  --image IMG       the photo; required\n"
     "  --truncate        cut a text over 77 tokens (default: such a text is an error)\n"
     CLI_COMPUTE_HELP
     "\n"
     "example:\n"
     "  diffclip clip-score --clip ViT-B-16.pt --vocab bpe_simple_vocab_16e6.txt.gz \\\n"
     "      --image cat.jpg 'a photo of a cat' 'a photo of a dog'",
     cli_run_clip_score};

const cli_command cli_cmd_id_loss = {
    "id-loss", "DiffusionCLIP's identity loss",
     "id-loss --arcface A --x X.npy --x-hat Y.npy --out L.npy [--features-out F.npy] [OPTIONS]",
     "The identity loss between faces X and their edits Y (aligned, [-1, 1], 256 x 256 as in\n"
     "DiffusionCLIP): the crop [35:223, 32:220] pooled to 112 x 112 through the IR-SE network.\n"
     "Writes L.npy, float32 [N]: per pair 1 - <f(Y), f(X)>, f the L2-normalised features; the\n"
     "published loss of a batch is their mean.\n"
     "\n"
     "options:\n"
     "  --arcface A       the IR-SE50 weights (model_ir_se50.pth); required\n"
     "  --x X.npy         the faces, float32 [N, 3, H, W] in [-1, 1], or a PNG/JPEG file;\n"
     "                    required\n"
     "  --x-hat Y.npy     the edited faces, same shape; required\n"
     "  --size N          side an image file is centre-cropped and resized to (Lanczos, as\n"
     "                    DiffusionCLIP loads images; default 256)\n"
     "  --out L.npy       the per-pair losses; required\n"
     "  --features-out F.npy      also f(X), float32 [N, 512]\n"
     "  --hat-features-out F.npy  also f(Y), float32 [N, 512]\n"
     CLI_COMPUTE_HELP
     "\n"
     "example:\n"
     "  diffclip id-loss --arcface model_ir_se50.pth --x x0.npy --x-hat x.npy --out l.npy",
     cli_run_id_loss};

const cli_command *const cli_commands[] = {
    &cli_cmd_inspect,    &cli_cmd_eps,        &cli_cmd_invert,     &cli_cmd_generate,
    &cli_cmd_noise,      &cli_cmd_reconstruct, &cli_cmd_finetune,  &cli_cmd_edit,
    &cli_cmd_transition, &cli_cmd_translate,  &cli_cmd_tokenize,   &cli_cmd_clip_image,
    &cli_cmd_clip_text,  &cli_cmd_clip_loss,  &cli_cmd_clip_score, &cli_cmd_id_loss,
    &cli_cmd_align,      NULL,
};

const cli_command *cli_find_command(const char *name)
{
    for (const cli_command *const *c = cli_commands; *c; c++)
        if (strcmp((*c)->name, name) == 0)
            return *c;
    return NULL;
}



int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("diffclip: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_library_error(void)
{
    fprintf(stderr, "diffclip: %s\n", dc_last_error());
    return CLI_EXIT_FAILURE;
}

int cli_file_error(const char *path)
{
    const char *message = dc_last_error();
    size_t n = strlen(path);
    if (strncmp(message, path, n) == 0 && message[n] == ':')
        return cli_library_error();
    fprintf(stderr, "diffclip: %s: %s\n", path, message);
    return CLI_EXIT_FAILURE;
}
