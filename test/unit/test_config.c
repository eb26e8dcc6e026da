/* YAML configs: the published files load unchanged; malformed, hostile and wrongly typed
 * files are refused naming what is wrong; a config checked against the weights, its image
 * size, var_type and schedule applied; the image size the weights tell without one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "harness.h"
#include "io/model_config.h"
#include "io/yaml.h"
#include "unet_fixtures.h"

static int parse(const char *text, io_model_config *c)
{
    return io_model_config_parse(text, strlen(text), "test.yml", c);
}

/* The call fails with DC_EFORMAT and a message holding `needle`. */
#define CHECK_REFUSED(text, needle)                                                        \
    do {                                                                                   \
        io_model_config c_;                                                                \
        CHECK_STATUS(parse(text, &c_), DC_EFORMAT);                                        \
        CHECKF(strstr(dc_last_error(), needle), "'%s' not in: %s", needle, dc_last_error()); \
    } while (0)

TEST(published_configs_load_unchanged)
{
    static const struct {
        const char *file;
        int size;
        int levels;
        const char *var_type;
        double dropout;
    } files[] = {
        {"celeba.yml", 256, 6, "fixedsmall", 0},  {"bedroom.yml", 256, 6, "fixedsmall", 0},
        {"church.yml", 256, 6, "fixedsmall", 0},  {"afhq.yml", 256, 6, "fixedsmall", 0},
        {"imagenet.yml", 512, 6, "fixedsmall", 0}, {"cifar10.yml", 32, 4, "fixedlarge", 0.1},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[256];
        snprintf(path, sizeof path, "test/configs/%s", files[i].file);
        io_model_config c;
        CHECK_OK(io_model_config_read_file(path, &c));
        CHECKF(c.image_size == files[i].size, "%s: image_size %d", path, c.image_size);
        CHECK(c.ch == 128 && c.in_channels == 3 && c.out_ch == 3 && c.num_res_blocks == 2);
        CHECK(c.ch_mult_count == files[i].levels && c.ch_mult[0] == 1);
        CHECK(c.attn_count == 1 && c.attn_resolutions[0] == 16);
        CHECK(c.resamp_with_conv == 1 && c.dropout == files[i].dropout);
        CHECK(strcmp(c.var_type, files[i].var_type) == 0);
        CHECK(strcmp(c.beta_schedule, "linear") == 0);
        CHECK(c.beta_start == 0.0001 && c.beta_end == 0.02 && c.num_timesteps == 1000);
        CHECK(c.present & IO_CONFIG_TIMESTEPS);
    }
}

TEST(yaml_subset)
{
    io_model_config c;
    /* comments, block sequences, single quotes, an empty document, extra sections */
    CHECK_OK(parse("# mine\ndata:\n  image_size: 64  # trained at 64\nmodel:\n  ch_mult:\n"
                   "    - 1\n    - 2\n    - 2\n  var_type: 'fixedlarge'\n  attn_resolutions: []\n"
                   "training: {lr: 2e-4}\n",
                   &c));
    CHECK(c.image_size == 64 && c.ch_mult_count == 3 && c.ch_mult[2] == 2);
    CHECK(strcmp(c.var_type, "fixedlarge") == 0);
    CHECK((c.present & IO_CONFIG_ATTN) && c.attn_count == 0);
    CHECK(!(c.present & IO_CONFIG_CH));
    CHECK_OK(parse("", &c));
    CHECK(c.present == 0);
    CHECK_OK(parse("# only a comment\n", &c));
    CHECK_OK(parse("model:\n    ch_mult: [0.5, 1, 1, 2]\ndiffusion:\n    beta_end: 1.2e-2\n", &c));
    CHECK(c.ch_mult[0] == 0.5 && c.beta_end == 0.012);
}

TEST(malformed_yaml_is_refused)
{
    CHECK_REFUSED("data:\n    image_size: [256\n", "malformed YAML");
    CHECK_REFUSED("data:\n    dataset: \"CelebA\n", "malformed YAML");
    CHECK_REFUSED("data:\n  image_size: 1\n bad: 2\n", "malformed YAML");
    CHECK_REFUSED("data:\n\timage_size: 1\n", "malformed YAML");
    CHECK_REFUSED("- 1\n- 2\n", "not a mapping");
    CHECK_REFUSED("just text\n", "not a mapping");
    CHECK_REFUSED("data:\n  image_size: 1\n  image_size: 2\n", "appears twice");
    CHECK_REFUSED("data: {}\n---\ndata: {}\n", "more than one document");
    CHECK_REFUSED("? [a, b]\n: 1\n", "mapping key must be a scalar");
    io_model_config c;
    CHECK_STATUS(io_model_config_parse("data:\n\0  x: 1\n", 14, "nul.yml", &c), DC_EFORMAT);
    CHECK_STATUS(io_model_config_read_file("test/configs/no-such.yml", &c), DC_EIO);
}

TEST(hostile_yaml_is_refused)
{
    /* Billion laughs: aliases are never expanded, they are refused. */
    CHECK_REFUSED("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c]\n",
                  "aliases");
    CHECK_REFUSED("x: !!python/object/apply:os.system [\"rm -rf /\"]\n", "tags");
    CHECK_REFUSED("x: !!str 1\n", "tags");
    /* deep nesting, flow and block */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 8);
    CHECK(deep);
    strcpy(deep, "a: ");
    memset(deep + 3, '[', depth);
    memset(deep + 3 + depth, ']', depth);
    deep[3 + 2 * depth] = '\0';
    io_model_config c;
    int status = parse(deep, &c);
    free(deep);
    CHECK(status == DC_EFORMAT && strstr(dc_last_error(), "nested deeper"));
    char block[4096] = "";
    for (int i = 0; i < 40; i++) {
        size_t n = strlen(block);
        snprintf(block + n, sizeof block - n, "%*sk%d:\n", 2 * i, "", i);
    }
    CHECK_REFUSED(block, "nested deeper");
    /* a huge scalar, a huge file, too many nodes */
    char *big = malloc(IO_YAML_MAX_BYTES + 64);
    CHECK(big);
    strcpy(big, "data:\n    dataset: ");
    size_t n = strlen(big);
    memset(big + n, 'x', 5000);
    big[n + 5000] = '\0';
    status = parse(big, &c);
    int scalar_refused = status == DC_EFORMAT && strstr(dc_last_error(), "scalar of 5000 bytes");
    memset(big + n, 'x', IO_YAML_MAX_BYTES);
    big[n + IO_YAML_MAX_BYTES] = '\0';
    status = parse(big, &c);
    int file_refused = status == DC_EFORMAT && strstr(dc_last_error(), "at most");
    size_t pos = (size_t)sprintf(big, "a: [");
    for (int i = 0; i < 6000; i++)
        pos += (size_t)sprintf(big + pos, "1, ");
    sprintf(big + pos, "1]\n");
    status = parse(big, &c);
    int nodes_refused = status == DC_EFORMAT && strstr(dc_last_error(), "nodes");
    free(big);
    CHECK(scalar_refused);
    CHECK(file_refused);
    CHECK(nodes_refused);
}

TEST(wrong_types_name_the_key)
{
    CHECK_REFUSED("data:\n    image_size: \"256\"\n", "data.image_size must be an integer");
    CHECK_REFUSED("data:\n    image_size: 256.5\n", "data.image_size");
    CHECK_REFUSED("data:\n    image_size: 99999999999999999999999\n", "data.image_size");
    CHECK_REFUSED("data:\n    image_size: -3\n", "out of range");
    CHECK_REFUSED("data:\n    image_size: [256]\n", "not a list");
    CHECK_REFUSED("model:\n    ch_mult: 5\n", "model.ch_mult must be a list of numbers");
    CHECK_REFUSED("model:\n    ch_mult: [1, two]\n", "model.ch_mult");
    CHECK_REFUSED("model:\n    attn_resolutions: {a: 1}\n", "not a mapping");
    CHECK_REFUSED("model:\n    attn_resolutions: [16.5]\n", "model.attn_resolutions");
    CHECK_REFUSED("model:\n    resamp_with_conv: maybe\n", "true or false");
    CHECK_REFUSED("model:\n    var_type:\n", "model.var_type is empty");
    CHECK_REFUSED("model:\n    var_type: [a]\n", "model.var_type must be a string");
    CHECK_REFUSED("model: 7\n", "section 'model' must be a mapping");
    CHECK_REFUSED("diffusion:\n    beta_start: .inf\n", "diffusion.beta_start");
    CHECK_REFUSED("diffusion:\n    beta_end: nan\n", "diffusion.beta_end");
    CHECK_REFUSED("diffusion:\n    num_diffusion_timesteps: 1e3\n",
                  "diffusion.num_diffusion_timesteps must be an integer");
    CHECK_REFUSED("model:\n    ch_mult: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n",
                  "at most");
}

/* ---- configs applied to models ---- */

/* 4 levels, attention at level 1: the CIFAR-10 layout (ch_mult 1,2,2,2 at 32), small. */
static const ddpm_config cifar_like = {.ch = 32, .out_ch = 3, .levels = 4, .nrb = 1,
                                       .mult = {1, 2, 2, 2}, .attn = {0, 1, 0, 0}};
/* 3 levels, no attention: the weights do not tell the size. */
static const ddpm_config no_attn = {.ch = 32, .out_ch = 3, .levels = 3, .nrb = 1,
                                    .mult = {1, 2, 2}, .attn = {0, 0, 0}};

static const char *write_text(const char *name, const char *text)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return p;
}

static int load(dc_model **m, const char *path, const char *config, int size)
{
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = "cpu";
    o.config_path = config;
    o.image_size = size;
    return dc_model_load(m, path, &o);
}

#define CIFAR_SECTION                                                                      \
    "model:\n    type: \"simple\"\n    in_channels: 3\n    out_ch: 3\n    ch: 32\n"          \
    "    ch_mult: [1, 2, 2, 2]\n    num_res_blocks: 1\n    attn_resolutions: [16, ]\n"       \
    "    dropout: 0.0\n    var_type: fixedlarge\n    resamp_with_conv: True\n"

TEST(size_from_weights_config_or_option)
{
    char model[512], bare[512];
    snprintf(model, sizeof model, "%s/cifar_like.pt", test_tmpdir());
    snprintf(bare, sizeof bare, "%s/no_attn.pt", test_tmpdir());
    CHECK_OK(write_ddpm_checkpoint(model, &cifar_like, 7));
    CHECK_OK(write_ddpm_checkpoint(bare, &no_attn, 7));
    dc_model *m;
    dc_model_info info;
    dc_model_config c = {.version = DC_MODEL_CONFIG_VERSION};
    /* attention at level 1 of 4: 32 (the old guess 8 * 2^3 gave 64) */
    CHECK_OK(load(&m, model, NULL, 0));
    CHECK_OK(dc_model_get_info(m, &info));
    CHECK_OK(dc_model_get_config(m, &c));
    CHECK(info.image_size == 32 && c.image_size == 32 && c.image_size_source == DC_SIZE_WEIGHTS);
    CHECK(c.config_path == NULL && c.num_timesteps == 1000 && c.var_type == DC_VAR_FIXEDSMALL);
    char text[4096];
    CHECK_OK(dc_model_describe(m, text, sizeof text));
    CHECK(strstr(text, "image_size 32 (from the weights"));
    dc_model_free(m);
    /* no attention: unknown, and said */
    CHECK_OK(load(&m, bare, NULL, 0));
    CHECK_OK(dc_model_get_config(m, &c));
    CHECK(c.image_size == 0 && c.image_size_source == DC_SIZE_UNKNOWN);
    CHECK_OK(dc_model_describe(m, text, sizeof text));
    CHECK(strstr(text, "image_size unknown"));
    /* arrays of any multiple of 4 are still taken */
    static float x[2 * 3 * 24 * 40], t[2] = {10, 500};
    dc_tensor xt = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 24, 40}, .data = x};
    dc_tensor tt = {.dtype = DC_FLOAT32, .ndim = 1, .shape = {2}, .data = t}, eps = {0};
    CHECK_OK(dc_model_eps(m, &xt, &tt, &eps));
    CHECK(eps.shape[2] == 24 && eps.shape[3] == 40);
    dc_tensor_free(&eps);
    dc_model_free(m);
    /* the option, which must suit the UNet */
    CHECK_OK(load(&m, bare, NULL, 64));
    CHECK_OK(dc_model_get_config(m, &c));
    CHECK(c.image_size == 64 && c.image_size_source == DC_SIZE_OPTION);
    dc_model_free(m);
    CHECK_STATUS(load(&m, bare, NULL, 30), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "multiple of 4"));
    /* a config: size, var_type, schedule */
    const char *cfg = write_text("cifar.yml", "data:\n    image_size: 32\n" CIFAR_SECTION
                                 "diffusion:\n    beta_schedule: linear\n    beta_start: 0.0002\n"
                                 "    beta_end: 0.03\n    num_diffusion_timesteps: 800\n");
    CHECK_OK(load(&m, model, cfg, 0));
    CHECK_OK(dc_model_get_config(m, &c));
    CHECK(c.image_size == 32 && c.image_size_source == DC_SIZE_CONFIG);
    CHECK(c.var_type == DC_VAR_FIXEDLARGE && c.num_timesteps == 800);
    CHECK(c.beta_start == 0.0002 && c.beta_end == 0.03 && strcmp(c.config_path, cfg) == 0);
    CHECK(strcmp(c.warnings, "") == 0);
    dc_model_free(m);
    /* a version-1 options struct (no config field) still loads */
    dc_model_options o1;
    dc_model_options_init(&o1, 1);
    o1.device = "cpu";
    CHECK_OK(dc_model_load(&m, model, &o1));
    dc_model_free(m);
}

TEST(config_contradicting_the_weights_is_refused)
{
    char model[512];
    snprintf(model, sizeof model, "%s/cifar_like2.pt", test_tmpdir());
    CHECK_OK(write_ddpm_checkpoint(model, &cifar_like, 7));
    static const struct {
        const char *yaml, *needle;
    } cases[] = {
        {"model:\n    ch: 128\n", "model.ch is 128, but the weights have 32"},
        {"model:\n    ch_mult: [1, 2, 2]\n",
         "model.ch_mult is [1, 2, 2], but the weights have [1, 2, 2, 2]"},
        {"model:\n    num_res_blocks: 2\n", "model.num_res_blocks is 2, but the weights have 1"},
        {"model:\n    out_ch: 6\n", "model.out_ch is 6"},
        {"data:\n    image_size: 64\nmodel:\n    attn_resolutions: [16]\n",
         "model.attn_resolutions is [16], but the weights have [32] at image size 64"},
        {"model:\n    attn_resolutions: [8, 16]\n", "model.attn_resolutions"},
        {"model:\n    resamp_with_conv: false\n", "model.resamp_with_conv"},
        {"model:\n    var_type: learned\n", "model.var_type 'learned'"},
        {"diffusion:\n    beta_start: 0.5\n    beta_end: 0.1\n", "beta"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *cfg = write_text("bad.yml", cases[i].yaml);
        dc_model *m = NULL;
        int status = load(&m, model, cfg, 0);
        CHECKF(status != DC_OK && m == NULL, "case %zu loaded", i);
        CHECKF(strstr(dc_last_error(), cases[i].needle), "case %zu: %s", i, dc_last_error());
    }
    const char *cfg = write_text("sized.yml", "data:\n    image_size: 32\n");
    dc_model *m = NULL;
    CHECK_STATUS(load(&m, model, cfg, 64), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "contradicts the config's data.image_size 32"));
    cfg = write_text("hostile.yml", "a: &a [1]\nb: *a\n");
    CHECK_STATUS(load(&m, model, cfg, 0), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "aliases"));
}

TEST(beta_schedule_is_linear_with_a_warning)
{
    char model[512];
    snprintf(model, sizeof model, "%s/cifar_like3.pt", test_tmpdir());
    CHECK_OK(write_ddpm_checkpoint(model, &cifar_like, 7));
    const char *cfg = write_text("cosine.yml", "model:\n    dropout: 0.1\ndiffusion:\n"
                                 "    beta_schedule: cosine\n    beta_end: 0.015\n");
    dc_model *m;
    CHECK_OK(load(&m, model, cfg, 0));
    dc_model_config c = {.version = DC_MODEL_CONFIG_VERSION};
    CHECK_OK(dc_model_get_config(m, &c));
    CHECK(strstr(c.warnings, "beta_schedule is 'cosine'; the betas are linear"));
    CHECK(strstr(c.warnings, "model.dropout 0.1 is not applied"));
    CHECK(c.beta_end == 0.015 && c.beta_start == 1e-4 && c.image_size_source == DC_SIZE_WEIGHTS);
    /* the config's schedule drives inversion: the same as giving it explicitly, not the
     * default's */
    static float x[3 * 32 * 32];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)((i * 29) % 61) / 30.0f - 1.0f;
    dc_tensor x0 = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, 32, 32}, .data = x};
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    CHECK(o.num_timesteps == 0 && o.beta_start == 0 && o.beta_end == 0);
    o.t0 = 300;
    o.steps = 3;
    dc_tensor a = {0}, b = {0}, d = {0};
    CHECK_OK(dc_invert(m, &x0, &o, &a));
    o.beta_start = 1e-4, o.beta_end = 0.015, o.num_timesteps = 1000;
    CHECK_OK(dc_invert(m, &x0, &o, &b));
    o.beta_end = 0.02;
    CHECK_OK(dc_invert(m, &x0, &o, &d));
    size_t n = 3 * 32 * 32;
    CHECK(memcmp(a.data, b.data, n * sizeof(float)) == 0);
    CHECK(max_abs_diff(a.data, d.data, n) > 1e-3);
    dc_tensor_free(&a), dc_tensor_free(&b), dc_tensor_free(&d);
    /* a fine-tuned model of it has its config */
    char ft[512];
    snprintf(ft, sizeof ft, "%s/ft.pt", test_tmpdir());
    CHECK_OK(write_ddpm_checkpoint(ft, &cifar_like, 7));
    dc_model *f;
    CHECK_OK(dc_model_load_finetuned(&f, m, ft, NULL));
    dc_model_config fc = {.version = DC_MODEL_CONFIG_VERSION};
    CHECK_OK(dc_model_get_config(f, &fc));
    CHECK(fc.beta_end == 0.015 && strcmp(fc.config_path, cfg) == 0 && fc.image_size == 32);
    dc_model_free(f);
    dc_model_free(m);
}

TEST(latent_cache_takes_arrays_of_any_size)
{
    char model[512], cache_path[512];
    snprintf(model, sizeof model, "%s/cifar_like4.pt", test_tmpdir());
    snprintf(cache_path, sizeof cache_path, "%s/any.dclat", test_tmpdir());
    CHECK_OK(write_ddpm_checkpoint(model, &cifar_like, 7));
    dc_model *m;
    CHECK_OK(load(&m, model, NULL, 0));
    static float x[3 * 64 * 48], y[3 * 32 * 32];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)((i * 13) % 37) / 18.0f - 1.0f;
    dc_tensor big = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, 64, 48}, .data = x};
    dc_tensor small = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, 32, 32}, .data = y};
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = 200;
    o.steps = 2;
    dc_latent_cache *c;
    CHECK_OK(dc_latent_cache_open(&c, cache_path, m, &o, 2));
    size_t index;
    CHECK_OK(dc_latent_cache_add(c, &big, &index));
    CHECK_STATUS(dc_latent_cache_add(c, &small, &index), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "holds 64x48 images"));
    dc_latent_cache_free(c);
    CHECK_OK(dc_latent_cache_open(&c, cache_path, m, &o, 2));
    dc_tensor lat = {0};
    CHECK_OK(dc_latent_cache_get(c, 0, NULL, NULL, &lat));
    CHECK(lat.shape[2] == 64 && lat.shape[3] == 48);
    dc_tensor_free(&lat);
    CHECK_OK(dc_latent_cache_add(c, &big, &index));
    CHECK(index == 0 && dc_latent_cache_count(c) == 1);
    dc_latent_cache_free(c);
    dc_model_free(m);
}
