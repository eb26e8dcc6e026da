/* Face alignment for the commands that read photos: --align / --no-align / --predictor, and
 * reading a photo aligned as the published edit_one_image does (--align_face 1). */
#ifndef DC_SRC_CLI_ALIGN_H
#define DC_SRC_CLI_ALIGN_H

#include "diffclip.h"

typedef struct cli_align {
    int on, off;               /* --align, --no-align */
    const char *predictor;     /* --predictor FILE (NULL: Debian's) */
    int enabled;               /* resolved by cli_align_resolve */
    dc_face_aligner *aligner;  /* loaded on first use */
} cli_align;

#define CLI_ALIGN_OPTIONS(al)                                                              \
    {"align", CLI_FLAG, &(al)->on, 0}, {"no-align", CLI_FLAG, &(al)->off, 0},              \
    {"predictor", CLI_STRING, &(al)->predictor, 0}
#define CLI_PREDICTOR_HELP                                                                 \
    "  --predictor FILE    dlib's 68-landmark shape predictor (default\n"                  \
    "                      /usr/share/dlib/shape_predictor_68_face_landmarks.dat, Debian's\n" \
    "                      libdlib-data)\n"
#define CLI_ALIGN_HELP                                                                     \
    "  --align             align each photo's face first, as the published edit_one_image\n" \
    "                      does (dlib's landmarks, FFHQ-style crop; 'diffclip help align');\n" \
    "                      a photo without a face is used as given, with a warning. Default\n" \
    "                      for the celeba presets; .npy inputs are never aligned\n"         \
    "  --no-align          use photos as given\n"                                          \
    CLI_PREDICTOR_HELP

/* The dataset preset `preset` names, or an edit preset's dataset (NULL: none or unknown). */
const dc_dataset_preset *cli_preset_dataset(const char *preset);
/* 1 if `preset` (a dataset or an edit preset, NULL: none) is of a face dataset whose
 * published models expect aligned faces (CelebA-HQ; FFHQ has no preset here). */
int cli_preset_is_face(const char *preset);
/* Resolves --align/--no-align against `default_on`; a usage error when both are given. */
int cli_align_resolve(const char *command, const char *usage, cli_align *al, int default_on);
/* As cli_read_image_or_array, the photo's face aligned first when al->enabled: the aligned
 * size x size face, or (no face: a warning on stderr) the photo as given. */
dc_status cli_read_photo(const char *path, int size, cli_align *al, dc_tensor *out);
void cli_align_free(cli_align *al);

#endif
