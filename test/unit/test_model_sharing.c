/* dc_model_load shares the weights of one unchanged file loaded with the same options, and
 * keeps them apart otherwise; the handles stay independent to use and to free. */
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "harness.h"
#include "unet_fixtures.h"

static const ddpm_config tiny = {.ch = 32, .out_ch = 3, .levels = 2, .nrb = 1,
                                 .mult = {1, 2}, .attn = {0, 1}};

static int load(dc_model **m, const char *path, dc_dtype dtype)
{
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = "cpu";
    o.dtype = dtype;
    return dc_model_load(m, path, &o);
}

/* eps of a fixed input, into out (1 x 3 x 16 x 16 floats). */
static int eps_of(dc_model *m, float *out)
{
    static float x[3 * 16 * 16];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    float t = 250;
    dc_tensor xt = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, 16, 16}, .data = x};
    dc_tensor tt = {.dtype = DC_FLOAT32, .ndim = 1, .shape = {1}, .data = &t};
    dc_tensor e = {0};
    int st = dc_model_eps(m, &xt, &tt, &e);
    if (st == DC_OK)
        memcpy(out, e.data, sizeof x);
    dc_tensor_free(&e);
    return st;
}

TEST(same_file_and_options_share_weights)
{
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "shared.pt");
    CHECK_OK(write_ddpm_checkpoint(path, &tiny, 7));
    dc_model *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(load(&a, path, DC_FLOAT32));
    CHECK_OK(load(&b, path, DC_FLOAT32));
    CHECK(a != b);
    CHECK(a->net == b->net);
    CHECK(strcmp(a->fingerprint, b->fingerprint) == 0);
    /* Another dtype makes other weights. */
    CHECK_OK(load(&c, path, DC_BFLOAT16));
    CHECK(c->net != a->net);
    static float ea[768], eb[768];
    CHECK_OK(eps_of(a, ea));
    /* Freeing one handle leaves the other working. */
    dc_model_free(a);
    CHECK_OK(eps_of(b, eb));
    CHECK(memcmp(ea, eb, sizeof ea) == 0);
    dc_model_free(b);
    dc_model_free(c);
}

TEST(a_rewritten_file_is_loaded_again)
{
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "rewritten.pt");
    CHECK_OK(write_ddpm_checkpoint(path, &tiny, 7));
    dc_model *a = NULL, *b = NULL;
    CHECK_OK(load(&a, path, DC_FLOAT32));
    /* dc_checkpoint_write replaces the file (a new inode), so the key changes. */
    CHECK_OK(write_ddpm_checkpoint(path, &tiny, 8));
    CHECK_OK(load(&b, path, DC_FLOAT32));
    CHECK(a->net != b->net);
    CHECK(strcmp(a->fingerprint, b->fingerprint) != 0);
    static float ea[768], eb[768];
    CHECK_OK(eps_of(a, ea));
    CHECK_OK(eps_of(b, eb));
    CHECK(memcmp(ea, eb, sizeof ea) != 0);
    dc_model_free(b);
    dc_model_free(a);
}

TEST(float16_on_the_cpu_is_refused)
{
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "half.pt");
    CHECK_OK(write_ddpm_checkpoint(path, &tiny, 7));
    dc_model *m = NULL;
    CHECK_STATUS(load(&m, path, DC_FLOAT16), DC_EINVAL);
    CHECK(m == NULL);
    CHECK(strstr(dc_last_error(), "bfloat16") != NULL);
}
