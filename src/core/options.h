/* Versioned options structs (include/diffclip.h, "Options structs"): every version of a
 * struct has a size, through its last field, and a caller's struct is read and written only
 * up to the size of the version it says; the fields it lacks keep their defaults. Every
 * struct starts with its `unsigned version`. options.c lists each struct's versions. */
#ifndef DC_SRC_CORE_OPTIONS_H
#define DC_SRC_CORE_OPTIONS_H

#include <stddef.h>

#include "diffclip.h"

typedef struct api_options_layout {
    const char *name;            /* "dc_model_options", for messages */
    const size_t *sizes;         /* sizes[v - 1]: version v's */
    unsigned versions;           /* the current version: the count of sizes */
    const void *defaults;        /* a whole current struct (its DC_*_OPTIONS_INIT) */
    size_t size;                 /* sizeof the current struct */
} api_options_layout;

extern const api_options_layout api_model_options, api_diffusion_options_layout,
    api_edit_options, api_clip_options, api_idnet_options, api_finetune_options,
    api_face_descriptor_options, api_face_aligner_options, api_model_config_layout;

/* dc_*_options_init: the defaults of `version`'s fields, and its number. DC_EINVAL (nothing
 * written) for NULL or a version 0 or above the current one. */
int api_options_init(void *options, unsigned version, const api_options_layout *layout);
/* The options a call works with: `out` (a whole current struct) gets the defaults, then the
 * caller's fields up to its version's size (caller NULL: the defaults alone); out's version
 * is the current one. DC_EINVAL for an unknown version. */
int api_options_read(void *out, const void *caller, const api_options_layout *layout);
/* Writes `in` (a whole current struct) back to the caller's struct, only the fields of the
 * caller's version (which it keeps). DC_EINVAL for an unknown version. */
int api_options_write(void *caller, const void *in, const api_options_layout *layout);

#endif
