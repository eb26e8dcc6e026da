/* diffclip align: a photo's face aligned as the published code aligns it. */
#include <stdio.h>

#include "align.h"
#include "args.h"
#include "cli.h"

#define USAGE "align --image IN -o OUT.png [--size N] [--landmarks-out L.npy] [--predictor FILE]"

static int run_align(int argc, char **argv)
{
    const char *image = NULL, *out = NULL, *landmarks_out = NULL, *predictor = NULL;
    int size = 256;
    const cli_option options[] = {
        {"image", CLI_STRING, &image, 0},
        {"out", CLI_STRING, &out, 'o'},
        {"size", CLI_INT, &size, 0},
        {"landmarks-out", CLI_STRING, &landmarks_out, 0},
        {"predictor", CLI_STRING, &predictor, 0},
    };
    static const char *const required[] = {"image", "out", NULL};
    int npos = 0;
    int status = cli_parse(argc, argv, options, sizeof options / sizeof options[0], NULL, 0,
                           &npos, USAGE);
    if (!status)
        status = cli_check_required(argv[0], USAGE, options, sizeof options / sizeof options[0],
                                    required);
    if (!status && (size < 1 || size > DC_FACE_MAX_ALIGN_SIZE))
        status = cli_command_usage_error(argv[0], USAGE, "--size must be 1..%d (got %d)",
                                         DC_FACE_MAX_ALIGN_SIZE, size);
    if (status)
        return status;
    dc_image img = {0}, aligned = {0};
    if (dc_image_read(image, &img) != DC_OK)
        return cli_file_error(image);
    dc_face_aligner_options o;
    dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
    o.predictor_path = predictor;
    dc_face_aligner *aligner = NULL;
    dc_face face;
    dc_status s = dc_face_aligner_new(&aligner, &o);
    if (s == DC_OK)
        s = dc_face_align(aligner, &img, size, &aligned, &face);
    dc_face_aligner_free(aligner);
    dc_image_free(&img);
    if (s == DC_ENOTFOUND) {
        fprintf(stderr, "diffclip: %s: no face was found\n", image);
        return CLI_EXIT_FAILURE;
    }
    if (s != DC_OK)
        return cli_library_error();
    s = dc_image_write(out, &aligned);
    dc_image_free(&aligned);
    if (s != DC_OK)
        return cli_file_error(out);
    if (landmarks_out) {
        dc_tensor t = {.dtype = DC_INT64, .ndim = 2, .shape = {DC_FACE_LANDMARK_COUNT, 2},
                       .data = face.points};
        if (dc_npy_write(landmarks_out, &t) != DC_OK)
            return cli_file_error(landmarks_out);
    }
    return CLI_EXIT_OK;
}

const cli_command cli_cmd_align = {
    "align", "a photo's face aligned as the CelebA-HQ and FFHQ models expect", USAGE,
    "Finds the faces in the photo IN with dlib's HOG frontal face detector, places dlib's 68\n"
    "landmarks on the last one found (as the published get_landmark does) and writes the\n"
    "face aligned the FFHQ way, as the published align_face does: eyes and mouth at fixed\n"
    "places, the face filling the N x N frame; parts outside the photo are filled by\n"
    "reflection with a blurred, median-toned border. A photo without a face is an error\n"
    "(exit status 1); edit, transition, translate and finetune --align then use the photo as\n"
    "given, with a warning, as the published code does.\n"
    "\n"
    "options:\n"
    "  --image IN          the photo (PNG or JPEG); required\n"
    "  -o, --out OUT       the aligned face (.png or .jpg); required\n"
    "  --size N            its side (default 256, the CelebA-HQ models' size)\n"
    "  --landmarks-out L   also the 68 landmarks, int64 [68, 2] (x, y), as the published\n"
    "                      get_landmark returns them\n"
    CLI_PREDICTOR_HELP
    "\n"
    "example:\n"
    "  diffclip align --image selfie.jpg -o face.png --landmarks-out face_landmarks.npy",
    run_align,
};
