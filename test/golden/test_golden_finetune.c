/* Conformance of one DiffusionCLIP fine-tuning step (clip_finetune: gradient through every
 * generation step, one Adam step) against ../shared/golden/finetune_step. Every parameter
 * (t_0, steps, texts, learning rate, loss weights, the model and CLIP files) is read from
 * the case's case.json, so another case of the same kind runs unchanged. Tolerances from
 * case.json: losses and gradient norm 1e-4 relative; gradient relative L2 <= 1e-4 over all
 * parameters; the Adam step |(ours - start) - (golden - start)| <= 1e-6 wherever
 * |golden gradient| > 1e-4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/generator.h"
#include "finetune/finetuner.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/npy.h"
#include "nn/clip.h"
#include "nn/idnet.h"
#include "nn/tokenizer.h"
#include "nn/unet.h"

/* ---- the few case.json values a test needs (flat keys, as the cases write them) ---- */

/* The text after `"key":` (whitespace skipped), or NULL. */
static const char *json_value(const char *json, const char *key)
{
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *p = strstr(json, quoted);
    if (!p)
        return NULL;
    p += strlen(quoted);
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ':')
        p++;
    return p;
}

static double json_number(const char *json, const char *key, double fallback)
{
    const char *p = json_value(json, key);
    return p && *p != '"' ? strtod(p, NULL) : fallback;
}

/* A string value (without escapes) copied into buf. */
static const char *json_string(const char *json, const char *key, char *buf, size_t size)
{
    const char *p = json_value(json, key);
    if (!p || *p != '"')
        return NULL;
    const char *end = strchr(p + 1, '"');
    if (!end || (size_t)(end - p - 1) >= size)
        return NULL;
    memcpy(buf, p + 1, (size_t)(end - p - 1));
    buf[end - p - 1] = '\0';
    return buf;
}

/* The key of the "files" entry (a checkpoint, not an .npy array) whose description contains
 * `needle`, else `fallback`. */
static const char *file_described(const char *json, const char *needle, const char *fallback,
                                  char *buf, size_t size)
{
    const char *p = json_value(json, "files");
    const char *end = p ? strchr(p, '}') : NULL;
    while (p && end && (p = strchr(p, '"')) && p < end) {
        const char *key_end = strchr(p + 1, '"');
        const char *value = key_end ? strchr(key_end + 1, '"') : NULL;
        const char *value_end = value ? strchr(value + 1, '"') : NULL;
        if (!value_end || value_end > end)
            break;
        size_t n = (size_t)(value_end - value - 1), key_length = (size_t)(key_end - p - 1);
        int is_array = key_length >= 4 && strncmp(key_end - 4, ".npy", 4) == 0;
        char description[512];
        if (!is_array && n < sizeof description && key_length < size) {
            memcpy(description, value + 1, n);
            description[n] = '\0';
            if (strstr(description, needle)) {
                memcpy(buf, p + 1, (size_t)(key_end - p - 1));
                buf[key_end - p - 1] = '\0';
                return buf;
            }
        }
        p = value_end + 1;
    }
    snprintf(buf, size, "%s", fallback);
    return buf;
}

/* ---- what the step hands the test ---- */

typedef struct captured {
    const nn_unet *model;
    float **grads;                   /* per tensor, NULL without a gradient */
    ft_step_report report;
    int reports, optimised;
} captured;

static int capture_gradients(void *user, const nn_unet *model)
{
    captured *c = user;
    size_t n = nn_unet_tensor_count(model);
    c->grads = calloc(n, sizeof *c->grads);
    for (size_t i = 0; c->grads && i < n; i++) {
        ct_tensor *g = NULL;
        if (ct_grad(&g, nn_unet_tensor(model, i)) != DC_OK || !g)
            continue;
        size_t count = (size_t)ct_numel(g);
        c->grads[i] = malloc(count * sizeof(float));
        if (c->grads[i])
            ct_to_host(g, c->grads[i], count * sizeof(float));
        ct_free(g);
    }
    return 0;
}

static int capture_report(void *user, const ft_step_report *r)
{
    captured *c = user;
    c->reports++;
    if (r->optimised) {
        c->optimised++;
        c->report = *r;
    }
    return 0;
}

static int load_unet(const char *path, int head_channels, nn_unet **out)
{
    io_state_dict sd = {0};
    nn_unet_options o = {.head_channels = head_channels};
    int st = io_checkpoint_read_file(path, &sd);
    if (st == DC_OK)
        st = nn_unet_load(out, &sd, path, test_device(), DC_FLOAT32, &o);
    io_state_dict_free(&sd);
    return st;
}

static int load_npy(const char *dir, const char *file, ct_tensor **out)
{
    char path[1200];
    dc_tensor t;
    int st = io_npy_read_file(path_join(path, sizeof path, dir, file), &t);
    if (st == DC_OK)
        st = ct_from_host(out, t.data, t.dtype, t.ndim, t.shape, test_device());
    dc_tensor_free(&t);
    return st;
}

static double relative(double ours, double golden)
{
    return fabs(ours - golden) / (fabs(golden) > 1e-12 ? fabs(golden) : 1.0);
}

/* The ADM head layout is not in a state dict: the model's own case says it. */
static int head_channels_of(const char *model_path)
{
    char dir[1300], path[1400];
    snprintf(dir, sizeof dir, "%s", model_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    char *json = (char *)test_read_file(path_join(path, sizeof path, dir, "case.json"), NULL);
    int h = json ? (int)json_number(json, "num_head_channels", 0) : 0;
    free(json);
    return h > 0 ? h : 0;
}

TEST(finetune_step_matches_the_published_step)
{
    char dir[1024], path[1200], buf[256], id_buf[256];
    if (!golden_case("finetune_step", dir, sizeof dir))
        return;
    char *json = (char *)test_read_file(path_join(path, sizeof path, dir, "case.json"), NULL);
    CHECKF(json != NULL, "cannot read %s", path);
    char source[256], target[256], model_path[1300], clip_path[1300], id_path[1300];
    ft_config config = {
        .t0 = (int)json_number(json, "t_0", 0),
        .steps = (int)json_number(json, "n_train_step", 0),
        .eta = json_number(json, "eta", 0),
        .clip_weight = json_number(json, "clip_loss_w", 0),
        .l1_weight = json_number(json, "l1_loss_w", 0),
        .id_weight = json_number(json, "id_loss_w", 0),
        .loss_form = FT_CLIP_LOSS_LOG,
        .grad_mode = FT_GRAD_FULL,
        .learning_rate = json_number(json, "lr", 0),
    };
    int have_texts = json_string(json, "src_txt", source, sizeof source) &&
                     json_string(json, "trg_txt", target, sizeof target);
    path_join(model_path, sizeof model_path, dir,
              file_described(json, "starting weights", "../ddpm_unet/model.pt", buf,
                             sizeof buf));
    path_join(clip_path, sizeof clip_path, dir,
              file_described(json, "CLIP", "../clip_vit/clip_state_dict.pt", buf, sizeof buf));
    path_join(id_path, sizeof id_path, dir,
              file_described(json, "identity",
                             file_described(json, "IR-SE", "../arcface_irse/irse_fp16.pt",
                                            id_buf, sizeof id_buf),
                             buf, sizeof buf));
    free(json);
    CHECK(have_texts);
    printf("  t_0 %d, %d steps, lr %g, weights clip %g l1 %g id %g, '%s' -> '%s'\n",
           config.t0, config.steps, config.learning_rate, config.clip_weight,
           config.l1_weight, config.id_weight, source, target);

    nn_unet *model = NULL;
    nn_clip *clip = NULL;
    nn_idnet *idnet = NULL;
    nn_tokenizer *tok = NULL;
    io_state_dict sd = {0};
    CHECK_OK(load_unet(model_path, head_channels_of(model_path), &model));
    CHECK_OK(io_checkpoint_read_file(clip_path, &sd));
    CHECK_OK(nn_clip_load(&clip, &sd, clip_path, test_device(), DC_FLOAT32));
    io_state_dict_free(&sd);
    if (config.id_weight > 0) {
        CHECK_OK(io_checkpoint_read_file(id_path, &sd));
        CHECK_OK(nn_idnet_load(&idnet, &sd, id_path, test_device()));
        io_state_dict_free(&sd);
    }
    char vocab[1024];
    CHECK(clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab));
    CHECK_OK(nn_tokenizer_load(&tok, vocab));
    df_schedule schedule;
    CHECK_OK(df_schedule_init_default(&schedule));

    /* The starting weights, and the generation before the step. */
    io_state_dict start = {0};
    CHECK_OK(nn_unet_export(model, &start));
    ct_tensor *x0 = NULL, *lat = NULL, *x_gen = NULL;
    CHECK_OK(load_npy(dir, "x0.npy", &x0));
    CHECK_OK(load_npy(dir, "lat.npy", &lat));
    df_generate_options g;
    df_generate_options_init(&g);
    g.t0 = config.t0;
    g.n_steps = config.steps;
    CHECK_OK(df_generate(&schedule, nn_unet_eps, model, lat, &g, &x_gen));
    dc_tensor golden_gen, golden_loss, golden_norm;
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "x_gen.npy"), &golden_gen));
    size_t n_gen = (size_t)dc_tensor_numel(&golden_gen);
    float *ours_gen = malloc(n_gen * sizeof *ours_gen);
    CHECK(ours_gen && ct_numel(x_gen) == (int64_t)n_gen);
    CHECK_OK(ct_to_host(x_gen, ours_gen, n_gen * sizeof *ours_gen));
    double gen_err = max_abs_diff(ours_gen, golden_gen.data, n_gen);
    double gen_tol = golden_tolerance(golden_gen.data, n_gen);
    printf("  x_gen: max error %.3g (tolerance %.3g)\n", gen_err, gen_tol);
    CHECK(gen_err <= gen_tol);

    ft_trainer t;
    captured cap = {.model = model};
    CHECK_OK(ft_trainer_init(&t, model, clip, tok, idnet, &schedule, &config));
    t.on_grad = capture_gradients;
    t.on_step = capture_report;
    t.user = &cap;
    CHECK_OK(ft_trainer_begin(&t, source, target));
    CHECK_OK(ft_trainer_step(&t, x0, lat));
    CHECK(cap.optimised == 1 && cap.reports == config.steps);
    CHECK(cap.grads != NULL);

    /* Losses: [clip, L1, total], or [clip, L1, id, total] with an identity term. */
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "loss.npy"), &golden_loss));
    const float *gl = golden_loss.data;
    int64_t nl = dc_tensor_numel(&golden_loss);
    CHECK(nl == 3 || nl == 4);
    double ours_l[4] = {cap.report.loss_clip, cap.report.loss_l1,
                        nl == 4 ? cap.report.loss_id : cap.report.loss_total,
                        cap.report.loss_total};
    for (int64_t i = 0; i < nl; i++) {
        printf("  loss[%lld]: ours %.9g golden %.9g relative error %.3g\n", (long long)i,
               ours_l[i], gl[i], relative(ours_l[i], gl[i]));
        CHECK(relative(ours_l[i], gl[i]) <= 1e-4);
    }
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, dir, "grad_norm.npy"), &golden_norm));
    double norm = ((const float *)golden_norm.data)[0];
    printf("  grad norm: ours %.9g golden %.9g relative error %.3g\n", cap.report.grad_norm,
           norm, relative(cap.report.grad_norm, norm));
    CHECK(relative(cap.report.grad_norm, norm) <= 1e-4);

    /* Gradient of every parameter, and the step where the gradient is clearly non-zero. */
    io_state_dict grad_sd = {0}, after_sd = {0};
    CHECK_OK(io_checkpoint_read_file(path_join(path, sizeof path, dir, "grad.pt"), &grad_sd));
    CHECK_OK(io_checkpoint_read_file(path_join(path, sizeof path, dir, "model_after_step.pt"),
                                     &after_sd));
    CHECK(grad_sd.count == nn_unet_tensor_count(model));
    CHECK(after_sd.count == nn_unet_tensor_count(model));
    double diff2 = 0, golden2 = 0, step_err = 0;
    size_t stepped = 0, matched = 0;
    for (size_t i = 0; i < nn_unet_tensor_count(model); i++) {
        const char *name = nn_unet_tensor_name(model, i);
        const dc_tensor *gg = NULL, *ga = NULL;
        for (size_t j = 0; j < grad_sd.count; j++)
            if (strcmp(grad_sd.tensors[j].name, name) == 0)
                gg = &grad_sd.tensors[j].value;
        for (size_t j = 0; j < after_sd.count; j++)
            if (strcmp(after_sd.tensors[j].name, name) == 0)
                ga = &after_sd.tensors[j].value;
        CHECKF(gg && ga && gg->dtype == DC_FLOAT32 && ga->dtype == DC_FLOAT32, "%s", name);
        size_t n = (size_t)ct_numel(nn_unet_tensor(model, i));
        CHECK(dc_tensor_numel(gg) == (int64_t)n && dc_tensor_numel(ga) == (int64_t)n);
        float *now = malloc(n * sizeof *now);
        CHECK(now);
        CHECK_OK(ct_to_host(nn_unet_tensor(model, i), now, n * sizeof *now));
        const float *golden_grad = gg->data, *golden_after = ga->data;
        const float *before = start.tensors[i].value.data, *ours_grad = cap.grads[i];
        for (size_t k = 0; k < n; k++) {
            double og = ours_grad ? ours_grad[k] : 0.0;
            diff2 += (og - golden_grad[k]) * (og - golden_grad[k]);
            golden2 += (double)golden_grad[k] * golden_grad[k];
            if (fabsf(golden_grad[k]) > 1e-4f) {
                double e = fabs(((double)now[k] - before[k]) - ((double)golden_after[k] - before[k]));
                step_err = e > step_err ? e : step_err;
                stepped++;
                matched += e <= 1e-6;
            }
        }
        free(now);
    }
    double grad_rel = sqrt(diff2) / sqrt(golden2);
    printf("  gradient: relative L2 %.3g (tolerance 1e-4)\n", grad_rel);
    printf("  Adam step: max error %.3g over %zu weights with |gradient| > 1e-4 "
           "(tolerance 1e-6)\n", step_err, stepped);
    CHECK(grad_rel <= 1e-4);
    CHECK(stepped > 0 && matched == stepped);

    for (size_t i = 0; i < nn_unet_tensor_count(model); i++)
        free(cap.grads[i]);
    free(cap.grads);
    free(ours_gen);
    dc_tensor_free(&golden_gen);
    dc_tensor_free(&golden_loss);
    dc_tensor_free(&golden_norm);
    io_state_dict_free(&grad_sd);
    io_state_dict_free(&after_sd);
    io_state_dict_free(&start);
    ct_free(x0), ct_free(lat), ct_free(x_gen);
    ft_trainer_free(&t);
    df_schedule_free(&schedule);
    nn_tokenizer_free(tok);
    nn_idnet_free(idnet);
    nn_clip_free(clip);
    nn_unet_free(model);
}
