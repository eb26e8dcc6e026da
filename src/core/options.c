#include "options.h"

#include <string.h>

#include "../core/error.h"

/* The size of `type` through `field`: a version's size when `field` is its last. */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* `var` describes `type`, whose current version is `current`: its defaults are `init` (the
 * header's macro) and the sizes of versions 1..current follow. A field appended to a struct
 * bumps its version in the header and adds its size here. */
#define LAYOUT(var, type, current, init, ...)                                                 \
    static const type var##_defaults = init;                                                 \
    static const size_t var##_sizes[] = {__VA_ARGS__};                                        \
    _Static_assert(sizeof var##_sizes / sizeof var##_sizes[0] == (current),                   \
                   #type ": one size per version");                                          \
    _Static_assert(offsetof(type, version) == 0, #type ": the version comes first");        \
    const api_options_layout var = {#type, var##_sizes, (current), &var##_defaults,           \
                                    sizeof(type)}

LAYOUT(api_model_options, dc_model_options, DC_MODEL_OPTIONS_VERSION, DC_MODEL_OPTIONS_INIT,
       END_OF(dc_model_options, head_channels), END_OF(dc_model_options, config_path));
LAYOUT(api_diffusion_options_layout, dc_diffusion_options, DC_DIFFUSION_OPTIONS_VERSION,
       DC_DIFFUSION_OPTIONS_INIT, END_OF(dc_diffusion_options, progress_user));
LAYOUT(api_edit_options, dc_edit_options, DC_EDIT_OPTIONS_VERSION, DC_EDIT_OPTIONS_INIT,
       END_OF(dc_edit_options, progress_user));
LAYOUT(api_clip_options, dc_clip_options, DC_CLIP_OPTIONS_VERSION, DC_CLIP_OPTIONS_INIT,
       END_OF(dc_clip_options, loss_form));
LAYOUT(api_idnet_options, dc_idnet_options, DC_IDNET_OPTIONS_VERSION, DC_IDNET_OPTIONS_INIT,
       END_OF(dc_idnet_options, device));
LAYOUT(api_finetune_options, dc_finetune_options, DC_FINETUNE_OPTIONS_VERSION,
       DC_FINETUNE_OPTIONS_INIT, END_OF(dc_finetune_options, progress_user),
       END_OF(dc_finetune_options, test_steps),
       END_OF(dc_finetune_options, dist_timeout));
LAYOUT(api_face_descriptor_options, dc_face_descriptor_options,
       DC_FACE_DESCRIPTOR_OPTIONS_VERSION, DC_FACE_DESCRIPTOR_OPTIONS_INIT,
       END_OF(dc_face_descriptor_options, device));
/* Not options but filled in for the caller (dc_model_get_config): written only up to the
 * caller's version, like options. */
#define MODEL_CONFIG_EMPTY                                                                  \
    {DC_MODEL_CONFIG_VERSION, 0, DC_SIZE_UNKNOWN, NULL, DC_VAR_FIXEDSMALL, 0, 0.0, 0.0, NULL}
LAYOUT(api_model_config_layout, dc_model_config, DC_MODEL_CONFIG_VERSION, MODEL_CONFIG_EMPTY,
       END_OF(dc_model_config, warnings));
LAYOUT(api_face_aligner_options, dc_face_aligner_options, DC_FACE_ALIGNER_OPTIONS_VERSION,
       DC_FACE_ALIGNER_OPTIONS_INIT, END_OF(dc_face_aligner_options, max_detect_pixels));

static int check_version(const void *options, unsigned version, const api_options_layout *l)
{
    if (!options)
        return dci_err(DC_EINVAL, "%s: NULL options", l->name);
    if (version == 0 || version > l->versions)
        return dci_err(DC_EINVAL, "%s version %u is not supported (1..%u): initialise it with "
                       "its _init function or its _INIT macro", l->name, version, l->versions);
    return DC_OK;
}

static unsigned version_of(const void *options)
{
    unsigned version;
    memcpy(&version, options, sizeof version);
    return version;
}

int api_options_init(void *options, unsigned version, const api_options_layout *layout)
{
    DCI_TRY(check_version(options, version, layout));
    memcpy(options, layout->defaults, layout->sizes[version - 1]);
    memcpy(options, &version, sizeof version);
    return DC_OK;
}

int api_options_read(void *out, const void *caller, const api_options_layout *layout)
{
    memcpy(out, layout->defaults, layout->size);
    if (!caller)
        return DC_OK;
    unsigned version = version_of(caller);
    DCI_TRY(check_version(caller, version, layout));
    memcpy(out, caller, layout->sizes[version - 1]);
    memcpy(out, &layout->versions, sizeof layout->versions);
    return DC_OK;
}

int api_options_write(void *caller, const void *in, const api_options_layout *layout)
{
    unsigned version = caller ? version_of(caller) : 0;
    DCI_TRY(check_version(caller, version, layout));
    memcpy(caller, in, layout->sizes[version - 1]);
    memcpy(caller, &version, sizeof version);
    return DC_OK;
}
