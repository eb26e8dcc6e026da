/* Conformance of one DiffusionCLIP fine-tuning step (clip_finetune: gradient through every
 * generation step, one Adam step) against ../shared/golden/finetune_step. Every parameter
 * (t_0, steps, texts, learning rate, loss weights, the model and CLIP files) is read from
 * the case's case.json, so another case of the same kind runs unchanged. Tolerances from
 * case.json: losses and gradient norm 1e-4 relative; gradient relative L2 <= 1e-4 over all
 * parameters; the Adam step |(ours - start) - (golden - start)| <= 1e-6 wherever
 * |golden gradient| > 1e-4. The same holds with activation recomputation, whose gradient
 * equals the stored-graph one within 1e-6 (relative L2). bfloat16 fine-tuning (float32
 * master weights) is reported against the golden step: the share of clearly stepped weights
 * (|golden gradient| > 1e-4) whose Adam step has the golden sign, which must be at least
 * 0.9, and its gradient's relative L2. */
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

/* A case's settings and inputs, loaded once. */
typedef struct golden_step {
    char dir[1024], source[256], target[256], model_path[1300];
    ft_config config;
    nn_clip *clip;
    nn_idnet *idnet;
    nn_tokenizer *tok;
    df_schedule schedule;
    ct_tensor *x0, *lat;
    io_state_dict start, grad, after;    /* the starting weights, golden gradient and step */
    int loaded;                          /* every part above is there */
} golden_step;

/* g->loaded stays 0 when the case is absent (skipped) or a check failed. */
static void load_case(golden_step *g)
{
    char path[1200], buf[256], id_buf[256], clip_path[1300], id_path[1300];
    if (!golden_case("finetune_step", g->dir, sizeof g->dir))
        return;
    const char *dir = g->dir;
    char *json = (char *)test_read_file(path_join(path, sizeof path, dir, "case.json"), NULL);
    CHECKF(json != NULL, "cannot read %s", path);
    g->config = (ft_config){
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
    int have_texts = json_string(json, "src_txt", g->source, sizeof g->source) &&
                     json_string(json, "trg_txt", g->target, sizeof g->target);
    path_join(g->model_path, sizeof g->model_path, dir,
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
    const ft_config *c = &g->config;
    printf("  t_0 %d, %d steps, lr %g, weights clip %g l1 %g id %g, '%s' -> '%s'\n", c->t0,
           c->steps, c->learning_rate, c->clip_weight, c->l1_weight, c->id_weight, g->source,
           g->target);
    io_state_dict sd = {0};
    CHECK_OK(io_checkpoint_read_file(clip_path, &sd));
    CHECK_OK(nn_clip_load(&g->clip, &sd, clip_path, test_device(), DC_FLOAT32));
    io_state_dict_free(&sd);
    if (c->id_weight > 0) {
        CHECK_OK(io_checkpoint_read_file(id_path, &sd));
        CHECK_OK(nn_idnet_load(&g->idnet, &sd, id_path, test_device()));
        io_state_dict_free(&sd);
    }
    char vocab[1024];
    CHECK(clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab));
    CHECK_OK(nn_tokenizer_load(&g->tok, vocab));
    CHECK_OK(df_schedule_init_default(&g->schedule));
    CHECK_OK(load_npy(dir, "x0.npy", &g->x0));
    CHECK_OK(load_npy(dir, "lat.npy", &g->lat));
    CHECK_OK(io_checkpoint_read_file(path_join(path, sizeof path, dir, "grad.pt"), &g->grad));
    CHECK_OK(io_checkpoint_read_file(path_join(path, sizeof path, dir, "model_after_step.pt"),
                                     &g->after));
    g->loaded = 1;
}

static void free_case(golden_step *g)
{
    io_state_dict_free(&g->start);
    io_state_dict_free(&g->grad);
    io_state_dict_free(&g->after);
    ct_free(g->x0), ct_free(g->lat);
    df_schedule_free(&g->schedule);
    nn_tokenizer_free(g->tok);
    nn_idnet_free(g->idnet);
    nn_clip_free(g->clip);
}

/* One step from the starting weights with `config`: the captured gradients and report, and
 * each tensor's weights after the step (host copies, freed by free_step). */
typedef struct step_result {
    captured cap;
    size_t count;
    float **after;
    int done;                        /* the step ran and everything was captured */
} step_result;

static void free_step(step_result *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->cap.grads ? r->cap.grads[i] : NULL);
        free(r->after ? r->after[i] : NULL);
    }
    free(r->cap.grads);
    free(r->after);
}

static void run_step(golden_step *g, const ft_config *config, step_result *r)
{
    nn_unet *model = NULL;
    CHECK_OK(load_unet(g->model_path, head_channels_of(g->model_path), &model));
    if (!g->start.count)
        CHECK_OK(nn_unet_export(model, &g->start));
    ft_trainer t;
    r->cap = (captured){.model = model};
    r->count = nn_unet_tensor_count(model);
    CHECK_OK(ft_trainer_init(&t, model, g->clip, g->tok, g->idnet, &g->schedule, config));
    t.on_grad = capture_gradients;
    t.on_step = capture_report;
    t.user = &r->cap;
    CHECK_OK(ft_trainer_begin(&t, g->source, g->target));
    CHECK_OK(ct_manual_seed(1234));          /* the same noise draws when eta > 0 */
    CHECK_OK(ft_trainer_step(&t, g->x0, g->lat));
    CHECK(r->cap.optimised == 1 && r->cap.reports == config->steps);
    CHECK(r->cap.grads != NULL);
    r->after = calloc(r->count, sizeof *r->after);
    CHECK(r->after != NULL);
    for (size_t i = 0; i < r->count; i++) {
        size_t n = (size_t)ct_numel(nn_unet_tensor(model, i));
        CHECK((r->after[i] = malloc(n * sizeof(float))) != NULL);
        CHECK_OK(ct_to_host(nn_unet_tensor(model, i), r->after[i], n * sizeof(float)));
    }
    ft_trainer_free(&t);
    nn_unet_free(model);
    r->done = 1;
}

static const dc_tensor *named(const io_state_dict *sd, const char *name)
{
    for (size_t j = 0; j < sd->count; j++)
        if (strcmp(sd->tensors[j].name, name) == 0)
            return &sd->tensors[j].value;
    return NULL;
}

/* How a step compares with the golden one. */
typedef struct step_comparison {
    double grad_rel, step_err, sign_share;
    size_t stepped, matched;
} step_comparison;

static void compare_step(const golden_step *g, const step_result *r, step_comparison *out)
{
    double diff2 = 0, golden2 = 0;
    size_t same_sign = 0;
    *out = (step_comparison){0};
    CHECK(g->grad.count == r->count && g->after.count == r->count &&
          g->start.count == r->count);
    for (size_t i = 0; i < r->count; i++) {
        const char *name = g->start.tensors[i].name;
        const dc_tensor *gg = named(&g->grad, name), *ga = named(&g->after, name);
        CHECKF(gg && ga && gg->dtype == DC_FLOAT32 && ga->dtype == DC_FLOAT32, "%s", name);
        size_t n = (size_t)dc_tensor_numel(&g->start.tensors[i].value);
        CHECK(dc_tensor_numel(gg) == (int64_t)n && dc_tensor_numel(ga) == (int64_t)n);
        const float *golden_grad = gg->data, *golden_after = ga->data;
        const float *before = g->start.tensors[i].value.data, *ours_grad = r->cap.grads[i];
        const float *now = r->after[i];
        for (size_t k = 0; k < n; k++) {
            double og = ours_grad ? ours_grad[k] : 0.0;
            diff2 += (og - golden_grad[k]) * (og - golden_grad[k]);
            golden2 += (double)golden_grad[k] * golden_grad[k];
            if (fabsf(golden_grad[k]) > 1e-4f) {
                double ours_step = (double)now[k] - before[k];
                double golden_step = (double)golden_after[k] - before[k];
                double e = fabs(ours_step - golden_step);
                out->step_err = e > out->step_err ? e : out->step_err;
                out->stepped++;
                out->matched += e <= 1e-6;
                same_sign += (ours_step > 0) == (golden_step > 0) && ours_step != 0;
            }
        }
    }
    out->grad_rel = sqrt(diff2) / sqrt(golden2);
    out->sign_share = out->stepped ? (double)same_sign / (double)out->stepped : 0;
}

static double gradient_difference(const step_result *a, const step_result *b, const io_state_dict *start)
{
    double diff2 = 0, ref2 = 0;
    for (size_t i = 0; i < a->count; i++) {
        size_t n = (size_t)dc_tensor_numel(&start->tensors[i].value);
        const float *x = a->cap.grads[i], *y = b->cap.grads[i];
        for (size_t k = 0; k < n; k++) {
            double u = x ? x[k] : 0.0, v = y ? y[k] : 0.0;
            diff2 += (u - v) * (u - v);
            ref2 += v * v;
        }
    }
    return sqrt(diff2) / sqrt(ref2);
}

static void check_conformance(const golden_step *g, const step_result *r, const char *label)
{
    char path[1200];
    dc_tensor golden_loss, golden_norm;
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, g->dir, "loss.npy"), &golden_loss));
    const float *gl = golden_loss.data;
    int64_t nl = dc_tensor_numel(&golden_loss);
    CHECK(nl == 3 || nl == 4);
    /* Losses: [clip, L1, total], or [clip, L1, id, total] with an identity term. */
    const ft_step_report *rep = &r->cap.report;
    double ours_l[4] = {rep->loss_clip, rep->loss_l1, nl == 4 ? rep->loss_id : rep->loss_total,
                        rep->loss_total};
    for (int64_t i = 0; i < nl; i++) {
        printf("  %s loss[%lld]: ours %.9g golden %.9g relative error %.3g\n", label,
               (long long)i, ours_l[i], gl[i], relative(ours_l[i], gl[i]));
        CHECK(relative(ours_l[i], gl[i]) <= 1e-4);
    }
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, g->dir, "grad_norm.npy"),
                              &golden_norm));
    double norm = ((const float *)golden_norm.data)[0];
    printf("  %s grad norm: ours %.9g golden %.9g relative error %.3g\n", label, rep->grad_norm,
           norm, relative(rep->grad_norm, norm));
    CHECK(relative(rep->grad_norm, norm) <= 1e-4);
    step_comparison c;
    compare_step(g, r, &c);
    printf("  %s gradient: relative L2 %.3g (tolerance 1e-4)\n", label, c.grad_rel);
    printf("  %s Adam step: max error %.3g over %zu weights with |gradient| > 1e-4 "
           "(tolerance 1e-6)\n", label, c.step_err, c.stepped);
    CHECK(c.grad_rel <= 1e-4);
    CHECK(c.stepped > 0 && c.matched == c.stepped);
    dc_tensor_free(&golden_loss);
    dc_tensor_free(&golden_norm);
}

TEST(finetune_step_matches_the_published_step)
{
    golden_step g = {0};
    load_case(&g);
    if (!g.loaded)
        return;
    /* The generation before the step. */
    char path[1200];
    nn_unet *model = NULL;
    ct_tensor *x_gen = NULL;
    CHECK_OK(load_unet(g.model_path, head_channels_of(g.model_path), &model));
    df_generate_options o;
    df_generate_options_init(&o);
    o.t0 = g.config.t0;
    o.n_steps = g.config.steps;
    CHECK_OK(df_generate(&g.schedule, nn_unet_eps, model, g.lat, &o, &x_gen));
    dc_tensor golden_gen;
    CHECK_OK(io_npy_read_file(path_join(path, sizeof path, g.dir, "x_gen.npy"), &golden_gen));
    size_t n_gen = (size_t)dc_tensor_numel(&golden_gen);
    float *ours_gen = malloc(n_gen * sizeof *ours_gen);
    CHECK(ours_gen && ct_numel(x_gen) == (int64_t)n_gen);
    CHECK_OK(ct_to_host(x_gen, ours_gen, n_gen * sizeof *ours_gen));
    double gen_err = max_abs_diff(ours_gen, golden_gen.data, n_gen);
    double gen_tol = golden_tolerance(golden_gen.data, n_gen);
    printf("  x_gen: max error %.3g (tolerance %.3g)\n", gen_err, gen_tol);
    CHECK(gen_err <= gen_tol);
    free(ours_gen);
    dc_tensor_free(&golden_gen);
    ct_free(x_gen);
    nn_unet_free(model);

    step_result stored = {0};
    run_step(&g, &g.config, &stored);
    CHECK(stored.done);
    check_conformance(&g, &stored, "stored graph");
    free_step(&stored);
    free_case(&g);
}

TEST(finetune_step_recomputed_equals_the_stored_graph_step)
{
    golden_step g = {0};
    load_case(&g);
    if (!g.loaded)
        return;
    step_result stored = {0}, recomputed = {0};
    run_step(&g, &g.config, &stored);
    ft_config c = g.config;
    c.recompute = 1;
    run_step(&g, &c, &recomputed);
    CHECK(stored.done && recomputed.done);
    check_conformance(&g, &recomputed, "recomputed");
    double rel = gradient_difference(&recomputed, &stored, &g.start);
    printf("  recomputed vs stored-graph gradient: relative L2 %.3g (tolerance 1e-6)\n", rel);
    CHECK(rel <= 1e-6);
    free_step(&stored);
    free_step(&recomputed);
    free_case(&g);
}

/* With eta > 0 every generation step draws noise: the recomputed steps replay it. */
TEST(recomputation_replays_the_noise_of_stochastic_steps)
{
    golden_step g = {0};
    load_case(&g);
    if (!g.loaded)
        return;
    step_result stored = {0}, recomputed = {0};
    ft_config c = g.config;
    c.eta = 0.5;
    run_step(&g, &c, &stored);
    c.recompute = 1;
    run_step(&g, &c, &recomputed);
    CHECK(stored.done && recomputed.done);
    double rel = gradient_difference(&recomputed, &stored, &g.start);
    printf("  eta 0.5: recomputed vs stored-graph gradient: relative L2 %.3g (tolerance 1e-6); "
           "losses %.9g and %.9g\n", rel, recomputed.cap.report.loss_total,
           stored.cap.report.loss_total);
    CHECK(rel <= 1e-6);
    CHECK(recomputed.cap.report.loss_total == stored.cap.report.loss_total);
    free_step(&stored);
    free_step(&recomputed);
    free_case(&g);
}

TEST(finetune_step_in_bfloat16_follows_the_float32_step)
{
    golden_step g = {0};
    load_case(&g);
    if (!g.loaded)
        return;
    ft_config c = g.config;
    c.dtype = DC_BFLOAT16;
    step_result half = {0};
    run_step(&g, &c, &half);
    CHECK(half.done);
    step_comparison cmp;
    compare_step(&g, &half, &cmp);
    printf("  bfloat16: gradient relative L2 %.3g against the golden float32 one; Adam steps "
           "with the golden sign: %.4f of %zu clearly stepped weights (at least 0.9); within "
           "1e-6 of the golden step: %.4f\n", cmp.grad_rel, cmp.sign_share, cmp.stepped,
           cmp.stepped ? (double)cmp.matched / (double)cmp.stepped : 0.0);
    CHECK(cmp.stepped > 0 && cmp.sign_share >= 0.9);
    free_step(&half);
    free_case(&g);
}
