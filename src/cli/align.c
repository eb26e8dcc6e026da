#include "align.h"

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "inputs.h"

const dc_dataset_preset *cli_preset_dataset(const char *preset)
{
    if (!preset)
        return NULL;
    const dc_edit_preset *edit = dc_edit_preset_find(preset);
    return dc_dataset_preset_find(edit ? edit->dataset : preset);
}

int cli_preset_is_face(const char *preset)
{
    const dc_dataset_preset *dataset = cli_preset_dataset(preset);
    return dataset && strcmp(dataset->name, "celeba") == 0;
}

int cli_align_resolve(const char *command, const char *usage, cli_align *al, int default_on)
{
    if (al->on && al->off)
        return cli_command_usage_error(command, usage, "--align and --no-align exclude each other");
    al->enabled = al->on || (default_on && !al->off);
    return 0;
}

dc_status cli_read_photo(const char *path, int size, cli_align *al, dc_tensor *out)
{
    if (!al || !al->enabled || cli_has_extension(path, ".npy"))
        return cli_read_image_or_array(path, size, out);
    if (!al->aligner) {
        dc_face_aligner_options o;
        dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
        o.predictor_path = al->predictor;
        dc_status s = dc_face_aligner_new(&al->aligner, &o);
        if (s != DC_OK)
            return s;
    }
    dc_image img, aligned;
    dc_status s = dc_image_read(path, &img);
    if (s != DC_OK)
        return s;
    s = dc_face_align(al->aligner, &img, size, &aligned, NULL);
    if (s == DC_OK) {
        s = dc_image_to_tensor(&aligned, size, out);
        dc_image_free(&aligned);
    } else if (s == DC_ENOTFOUND) {
        /* the published fallback: the photo as given */
        fprintf(stderr, "diffclip: warning: %s: no face was found; using the photo as given\n",
                path);
        s = dc_image_to_tensor(&img, size, out);
    }
    dc_image_free(&img);
    return s;
}

void cli_align_free(cli_align *al)
{
    dc_face_aligner_free(al->aligner);
    al->aligner = NULL;
}
