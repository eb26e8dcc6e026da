/* Versioned options structs: _init and the DC_*_OPTIONS_INIT macros agree, unknown versions
 * are refused, and a caller's struct is read and written only up to its version's size
 * (test/scripts/test_options_compat.sh runs a program built against an older header). */
#include <string.h>

#include "core/options.h"
#include "harness.h"

/* _init's defaults are the macro's, byte for byte (static storage: padding is zero, and
 * _init leaves trailing padding alone) once the device names (equal strings, not one
 * literal) are the same pointer. */
#define CHECK_INIT_MATCHES_MACRO(type, init, VERSION, INIT, ...)                              \
    do {                                                                                      \
        static type by_macro = INIT, by_init;                                                 \
        memset(&by_init, 0, sizeof by_init);                                                      \
        CHECK_OK(init(&by_init, VERSION));                                                    \
        __VA_ARGS__                                                                           \
        CHECKF(memcmp(&by_macro, &by_init, sizeof by_init) == 0, "%s: _init differs from %s", \
               #type, #INIT);                                                                 \
        CHECK(init(&by_init, 0) == DC_EINVAL && init(&by_init, VERSION + 1) == DC_EINVAL);    \
        CHECK(init(NULL, VERSION) == DC_EINVAL);                                              \
    } while (0)

#define SAME_DEVICE                                                                    \
    CHECK(strcmp(by_init.device, by_macro.device) == 0);                               \
    by_init.device = by_macro.device;

TEST(init_functions_give_the_macros_defaults)
{
    CHECK_INIT_MATCHES_MACRO(dc_model_options, dc_model_options_init, DC_MODEL_OPTIONS_VERSION,
                             DC_MODEL_OPTIONS_INIT, SAME_DEVICE);
    CHECK_INIT_MATCHES_MACRO(dc_diffusion_options, dc_diffusion_options_init,
                             DC_DIFFUSION_OPTIONS_VERSION, DC_DIFFUSION_OPTIONS_INIT);
    CHECK_INIT_MATCHES_MACRO(dc_edit_options, dc_edit_options_init, DC_EDIT_OPTIONS_VERSION,
                             DC_EDIT_OPTIONS_INIT);
    CHECK_INIT_MATCHES_MACRO(dc_clip_options, dc_clip_options_init, DC_CLIP_OPTIONS_VERSION,
                             DC_CLIP_OPTIONS_INIT, SAME_DEVICE);
    CHECK_INIT_MATCHES_MACRO(dc_idnet_options, dc_idnet_options_init, DC_IDNET_OPTIONS_VERSION,
                             DC_IDNET_OPTIONS_INIT, SAME_DEVICE);
    CHECK_INIT_MATCHES_MACRO(dc_finetune_options, dc_finetune_options_init,
                             DC_FINETUNE_OPTIONS_VERSION, DC_FINETUNE_OPTIONS_INIT);
    CHECK_INIT_MATCHES_MACRO(dc_face_descriptor_options, dc_face_descriptor_options_init,
                             DC_FACE_DESCRIPTOR_OPTIONS_VERSION, DC_FACE_DESCRIPTOR_OPTIONS_INIT,
                             SAME_DEVICE);
}

TEST(version_number_matches_header)
{
    CHECK(dc_version_number() == DC_VERSION_NUMBER);
    CHECK(DC_VERSION_NUMBER ==
          DC_VERSION_MAJOR * 10000 + DC_VERSION_MINOR * 100 + DC_VERSION_PATCH);
}

/* A struct as it would be after a field was appended in version 2. */
typedef struct grown_options {
    unsigned version;
    int old_field;
    double new_field;            /* version 2 */
} grown_options;
typedef struct grown_options_v1 {
    unsigned version;
    int old_field;
} grown_options_v1;

static const grown_options grown_defaults = {2, 7, 2.5};
static const size_t grown_sizes[] = {offsetof(grown_options, old_field) + sizeof(int),
                                     sizeof(grown_options)};
static const api_options_layout grown = {"grown_options", grown_sizes, 2, &grown_defaults,
                                         sizeof(grown_options)};

TEST(an_older_struct_is_read_and_written_only_to_its_size)
{
    /* A version 1 caller's struct followed by bytes it does not own. */
    struct {
        grown_options_v1 v1;
        unsigned char beyond[sizeof(grown_options)];
    } caller;
    memset(&caller, 0x77, sizeof caller);
    CHECK_OK(api_options_init(&caller.v1, 1, &grown));
    CHECK(caller.v1.version == 1 && caller.v1.old_field == 7);
    for (size_t i = 0; i < sizeof caller.beyond; i++)
        CHECKF(caller.beyond[i] == 0x77, "_init wrote byte %zu past a version 1 struct", i);

    caller.v1.old_field = 3;
    grown_options seen;
    CHECK_OK(api_options_read(&seen, &caller.v1, &grown));
    CHECK(seen.version == 2 && seen.old_field == 3 && seen.new_field == 2.5);

    seen.old_field = 4;
    seen.new_field = -1;
    CHECK_OK(api_options_write(&caller.v1, &seen, &grown));
    CHECK(caller.v1.version == 1 && caller.v1.old_field == 4);
    for (size_t i = 0; i < sizeof caller.beyond; i++)
        CHECKF(caller.beyond[i] == 0x77, "a write went %zu bytes past a version 1 struct", i);

    grown_options current = {2, 5, 9.0};
    CHECK_OK(api_options_read(&seen, &current, &grown));
    CHECK(seen.old_field == 5 && seen.new_field == 9.0);
    current.version = 3;
    CHECK(api_options_read(&seen, &current, &grown) == DC_EINVAL);
    CHECK(strstr(dc_last_error(), "grown_options version 3") != NULL);
    CHECK_OK(api_options_read(&seen, NULL, &grown));
    CHECK(seen.old_field == 7 && seen.new_field == 2.5);
}
