/* Threads and cancellation.
 *
 * Threads: four threads, each with its own handles (a diffusion model; CLIP and a
 * tokenizer), run the golden inputs at once and must give what one thread gives alone; each
 * thread's dc_last_error() holds its own failure only, untouched by other threads' failures
 * and by its own successful calls. `make test-tsan` runs this file under ThreadSanitizer.
 *
 * Cancellation: a progress callback returning non-zero at step k, for several k, stops
 * dc_invert, dc_generate, dc_latent_cache_add, dc_sampler_generate, dc_sampler_edit,
 * dc_sampler_transition and dc_sampler_translate with DC_ECANCELLED and no result; the same
 * handle then gives exactly the result of an uncancelled run, and a latent cache file is
 * unchanged by a cancelled add. (Fine-tuning cancellation: test_finetuner.c.) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "harness.h"

enum { THREADS = 4, MAX_OUTPUTS = 3, MESSAGE = 1024 };

static void copy_text(char *dst, const char *src)
{
    snprintf(dst, MESSAGE, "%s", src);
}

static int read_npy(const char *dir, const char *file, dc_tensor *out)
{
    char path[1300];
    return dc_npy_read(path_join(path, sizeof path, dir, file), out);
}

/* max |a - b| over two float32 or float64 arrays of one shape; -1 when they differ in
 * dtype or shape. */
static double tensor_diff(const dc_tensor *a, const dc_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim ||
        memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) != 0 ||
        (a->dtype != DC_FLOAT32 && a->dtype != DC_FLOAT64))
        return -1;
    size_t n = (size_t)dc_tensor_numel(a);
    if (a->dtype == DC_FLOAT32)
        return max_abs_diff(a->data, b->data, n);
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = ((const double *)a->data)[i] - ((const double *)b->data)[i];
        m = d > m ? d : -d > m ? -d : m;
    }
    return m;
}

static int same_bytes(const dc_tensor *a, const dc_tensor *b)
{
    size_t bytes = (size_t)dc_tensor_numel(a) * dc_dtype_size(a->dtype);
    return tensor_diff(a, b) == 0 && memcmp(a->data, b->data, bytes) == 0;
}

static void free_outputs(dc_tensor *out)
{
    for (int i = 0; i < MAX_OUTPUTS; i++)
        dc_tensor_free(&out[i]);
}

/* ---- jobs: what each thread computes ---- */

typedef int (*job_fn)(const void *inputs, dc_tensor out[MAX_OUTPUTS]);

typedef struct diffusion_inputs {
    char model[1300];
    dc_tensor x, t, x0;
} diffusion_inputs;

/* eps of the golden x and t, the inversion of x0 (t0 300, 8 steps), its generation (4). */
static int diffusion_job(const void *arg, dc_tensor out[MAX_OUTPUTS])
{
    const diffusion_inputs *in = arg;
    dc_model_options mo;
    dc_model_options_init(&mo, DC_MODEL_OPTIONS_VERSION);
    mo.device = "cpu";
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = 300;
    o.steps = 8;
    dc_model *m;
    DCI_TRY(dc_model_load(&m, in->model, &mo));
    int status = dc_model_eps(m, &in->x, &in->t, &out[0]);
    if (status == DC_OK)
        status = dc_invert(m, &in->x0, &o, &out[1]);
    o.steps = 4;
    if (status == DC_OK)
        status = dc_generate(m, &out[1], &o, &out[2]);
    dc_model_free(m);
    return status;
}

typedef struct clip_inputs {
    char clip[1300], vocab[1024];
    dc_tensor x_src, x_trg;
} clip_inputs;

/* Text features of three texts, the directional loss of x_src -> x_trg and its gradient. */
static int clip_job(const void *arg, dc_tensor out[MAX_OUTPUTS])
{
    const clip_inputs *in = arg;
    static const char *const texts[] = {"face", "angry face", "a photo of a dog"};
    dc_clip *clip = NULL;
    dc_tokenizer *tok = NULL;
    dc_tensor tokens = {0};
    double *losses = malloc(2 * sizeof *losses);
    int status = losses ? DC_OK : dci_err(DC_ENOMEM, "out of memory");
    if (status == DC_OK)
        status = dc_clip_load(&clip, in->clip, NULL);
    if (status == DC_OK)
        status = dc_tokenizer_new(&tok, in->vocab);
    if (status == DC_OK)
        status = dc_tokenize(tok, texts, 3, 77, 0, &tokens);
    if (status == DC_OK)
        status = dc_clip_encode_text(clip, &tokens, &out[0]);
    if (status == DC_OK)
        status = dc_clip_loss(clip, tok, "face", "angry face", &in->x_src, &in->x_trg, losses,
                              &out[1]);
    if (status == DC_OK) {
        out[2] = (dc_tensor){.dtype = DC_FLOAT64, .ndim = 1, .shape = {2}, .data = losses};
        losses = NULL;
    }
    free(losses);
    dc_tensor_free(&tokens);
    dc_tokenizer_free(tok);
    dc_clip_free(clip);
    return status;
}

/* ---- running a job on several threads ---- */

typedef struct worker {
    int id;
    job_fn job;
    const void *inputs;
    pthread_barrier_t *barrier;
    int started_clean;               /* dc_last_error() was "" in the new thread */
    int own_status;                  /* the failure the thread causes first */
    char own_error[MESSAGE];         /* its message once every thread has failed */
    int status;                      /* of the job */
    char job_error[MESSAGE];
    char final_error[MESSAGE];       /* dc_last_error() at the end */
    dc_tensor out[MAX_OUTPUTS];
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    char path[128];
    w->started_clean = dc_last_error()[0] == '\0';
    snprintf(path, sizeof path, "/nonexistent/thread-%d.pt", w->id);
    dc_checkpoint *none = NULL;
    w->own_status = dc_checkpoint_open(&none, path);
    pthread_barrier_wait(w->barrier);
    copy_text(w->own_error, dc_last_error());
    /* Odd threads fail again and again, with other messages, while even ones compute. */
    for (int i = 0; w->id % 2 && i < 200; i++) {
        dc_tensor t;
        snprintf(path, sizeof path, "/nonexistent/odd-%d-%d.npy", w->id, i);
        dc_npy_read(path, &t);
    }
    w->status = w->job(w->inputs, w->out);
    copy_text(w->job_error, w->status == DC_OK ? "" : dc_last_error());
    copy_text(w->final_error, dc_last_error());
    return NULL;
}

/* Runs `job` once on this thread, then on THREADS threads at once, and compares. */
static void check_threads_match_one(job_fn job, const void *inputs, int outputs)
{
    dc_tensor reference[MAX_OUTPUTS] = {{0}};
    CHECK_OK(job(inputs, reference));
    /* This thread's message must survive the others' failures. */
    dci_err(DC_EIO, "main thread's own failure");

    worker workers[THREADS];
    pthread_t threads[THREADS];
    pthread_barrier_t barrier;
    CHECK(pthread_barrier_init(&barrier, NULL, THREADS) == 0);
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].id = i;
        workers[i].job = job;
        workers[i].inputs = inputs;
        workers[i].barrier = &barrier;
        CHECK(pthread_create(&threads[i], NULL, run_worker, &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(strcmp(dc_last_error(), "main thread's own failure") == 0);

    for (int i = 0; i < THREADS; i++) {
        worker *w = &workers[i];
        char own[64], expected_final[64];
        snprintf(own, sizeof own, "thread-%d.pt", i);
        snprintf(expected_final, sizeof expected_final, "odd-%d-199.npy", i);
        CHECKF(w->status == DC_OK, "thread %d: %s", i, w->job_error);
        CHECKF(w->started_clean, "thread %d started with an error message", i);
        CHECKF(w->own_status == DC_EIO && strstr(w->own_error, own), "thread %d: %d '%s'", i,
               w->own_status, w->own_error);
        for (int j = 0; j < THREADS; j++) {
            char other[64];
            snprintf(other, sizeof other, "thread-%d.pt", j);
            CHECKF(j == i || !strstr(w->own_error, other), "thread %d has %d's message", i, j);
        }
        if (i % 2)
            CHECKF(strstr(w->final_error, expected_final), "thread %d ends with '%s'", i,
                   w->final_error);
        else    /* successful calls leave the last failure's message */
            CHECKF(strcmp(w->final_error, w->own_error) == 0, "thread %d: '%s' became '%s'",
                   i, w->own_error, w->final_error);
        for (int k = 0; k < outputs; k++) {
            double d = tensor_diff(&w->out[k], &reference[k]);
            /* Bit-identical here (Debian's LibTorch 1.13, OpenBLAS): every thread splits
             * its work by the same thread count. The bound leaves room for backends that
             * split by the load. */
            CHECKF(d >= 0 && d <= 1e-6, "thread %d output %d differs by %g", i, k, d);
        }
        free_outputs(w->out);
    }
    free_outputs(reference);
}

TEST(threads_with_their_own_models_match_one_thread)
{
    char dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    diffusion_inputs in;
    path_join(in.model, sizeof in.model, dir, "model.pt");
    CHECK_OK(read_npy(dir, "x.npy", &in.x));
    CHECK_OK(read_npy(dir, "t.npy", &in.t));
    CHECK_OK(read_npy(dir, "x0.npy", &in.x0));
    check_threads_match_one(diffusion_job, &in, 3);
    dc_tensor_free(&in.x), dc_tensor_free(&in.t), dc_tensor_free(&in.x0);
}

TEST(threads_with_their_own_clip_and_tokenizer_match_one_thread)
{
    char dir[1024];
    clip_inputs in;
    if (!golden_case("clip_vit", dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", in.vocab, sizeof in.vocab))
        return;
    path_join(in.clip, sizeof in.clip, dir, "clip_state_dict.pt");
    CHECK_OK(read_npy(dir, "x_src.npy", &in.x_src));
    CHECK_OK(read_npy(dir, "x_trg.npy", &in.x_trg));
    check_threads_match_one(clip_job, &in, 3);
    dc_tensor_free(&in.x_src), dc_tensor_free(&in.x_trg);
}

/* ---- cancellation ---- */

typedef struct canceller {
    int cancel_at;                   /* 0: never */
    int calls;
    char stage[32];                  /* of the report that cancelled */
} canceller;

static int cancel_at_step(void *user, const dc_progress *p)
{
    canceller *c = user;
    if (++c->calls != c->cancel_at)
        return 0;
    snprintf(c->stage, sizeof c->stage, "%s", p->stage ? p->stage : "");
    return 1;
}

/* Cancels `run` at each step of `at` (count entries): DC_ECANCELLED after exactly k reports,
 * no output; then an uncancelled run gives `reference` exactly. `run` reads c. */
typedef dc_status (*cancellable_fn)(void *ctx, dc_tensor *out);

static void check_cancel_points(cancellable_fn run, void *ctx, canceller *c, const int *at,
                                size_t count, const dc_tensor *reference,
                                const char *const *stages)
{
    for (size_t i = 0; i < count; i++) {
        dc_tensor out = {0};
        *c = (canceller){.cancel_at = at[i]};
        dci_err_clear();
        CHECK_STATUS(run(ctx, &out), DC_ECANCELLED);
        CHECKF(c->calls == at[i], "cancelled at %d, reported %d steps", at[i], c->calls);
        CHECK(out.data == NULL && dc_last_error()[0] != '\0');
        CHECKF(!stages || strcmp(c->stage, stages[i]) == 0, "step %d: stage %s, expected %s",
               at[i], c->stage, stages[i]);
        *c = (canceller){0};
        CHECK_OK(run(ctx, &out));
        CHECKF(same_bytes(&out, reference), "after a cancel at %d: differs by %g", at[i],
               tensor_diff(&out, reference));
        dc_tensor_free(&out);
    }
}

typedef struct diffusion_call {
    dc_model *model;
    dc_sampler *sampler;
    const dc_tensor *in;
    dc_diffusion_options options;
    dc_edit_options edit;
    dc_tensor projected;
} diffusion_call;

static dc_status invert_call(void *ctx, dc_tensor *out)
{
    diffusion_call *c = ctx;
    return dc_invert(c->model, c->in, &c->options, out);
}

static dc_status generate_call(void *ctx, dc_tensor *out)
{
    diffusion_call *c = ctx;
    return dc_generate(c->model, c->in, &c->options, out);
}

static dc_status sampler_generate_call(void *ctx, dc_tensor *out)
{
    diffusion_call *c = ctx;
    return dc_sampler_generate(c->sampler, c->in, &c->options, out);
}

static dc_status edit_call(void *ctx, dc_tensor *out)
{
    diffusion_call *c = ctx;
    return dc_sampler_edit(c->sampler, c->in, &c->edit, out);
}

static dc_status transition_call(void *ctx, dc_tensor *out)
{
    diffusion_call *c = ctx;
    return dc_sampler_transition(c->sampler, c->in, 2, &c->edit, out);
}

static dc_status translate_call(void *ctx, dc_tensor *out)
{
    diffusion_call *c = ctx;
    dc_tensor_free(&c->projected);
    return dc_sampler_translate(c->sampler, c->in, &c->edit, out, &c->projected);
}

/* One thread of tensor work: tiny models gain nothing from more, and on a loaded machine
 * OpenMP's spinning workers make each run many times slower. */
static dc_model *load_model(const char *dir, const char *file)
{
    char path[1300];
    dc_set_num_threads(1);
    dc_model_options o;
    dc_model_options_init(&o, DC_MODEL_OPTIONS_VERSION);
    o.device = "cpu";
    dc_model *m = NULL;
    if (dc_model_load(&m, path_join(path, sizeof path, dir, file), &o) != DC_OK)
        test_fail_at(__FILE__, __LINE__, "%s: %s", file, dc_last_error());
    return m;
}

TEST(cancelled_inversion_and_generation_leave_the_model_usable)
{
    char dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    dc_model *m = load_model(dir, "model.pt");
    CHECK(m != NULL);
    dc_tensor x0, lat, rec;
    CHECK_OK(read_npy(dir, "x0.npy", &x0));
    canceller c = {0};
    diffusion_call call = {.model = m, .in = &x0};
    dc_diffusion_options_init(&call.options, DC_DIFFUSION_OPTIONS_VERSION);
    call.options.t0 = 300;
    call.options.steps = 8;                           /* 7 steps */
    call.options.progress = cancel_at_step;
    call.options.progress_user = &c;
    CHECK_OK(invert_call(&call, &lat));
    CHECK(c.calls == 7);
    static const int invert_at[] = {1, 4, 7};
    check_cancel_points(invert_call, &call, &c, invert_at, 3, &lat, NULL);
    if (test_failed())
        return;

    call.in = &lat;
    call.options.steps = 4;
    c = (canceller){0};
    CHECK_OK(generate_call(&call, &rec));
    CHECK(c.calls == 4);
    static const int generate_at[] = {1, 2, 4};
    static const char *const generate_stages[] = {"generate", "generate", "generate"};
    check_cancel_points(generate_call, &call, &c, generate_at, 3, &rec, generate_stages);
    dc_tensor_free(&x0), dc_tensor_free(&lat), dc_tensor_free(&rec);
    dc_model_free(m);
}

static int same_file(const char *path, const unsigned char *data, size_t size)
{
    size_t now_size;
    unsigned char *now = test_read_file(path, &now_size);
    int same = now && now_size == size && memcmp(now, data, size) == 0;
    free(now);
    return same;
}

/* Image `n` of a batch as a (1, C, H, W) view. */
static dc_tensor one_image(const dc_tensor *batch, int64_t n)
{
    dc_tensor one = *batch;
    one.shape[0] = 1;
    one.data = (float *)batch->data + n * batch->shape[1] * batch->shape[2] * batch->shape[3];
    return one;
}

TEST(cancelled_cache_add_leaves_the_file_and_the_cache_intact)
{
    char dir[1024], path[512], fresh_path[512];
    if (!golden_case("ddpm_unet", dir, sizeof dir))
        return;
    path_join(path, sizeof path, test_tmpdir(), "cancel.dclat");
    path_join(fresh_path, sizeof fresh_path, test_tmpdir(), "fresh.dclat");
    dc_model *m = load_model(dir, "model.pt");
    CHECK(m != NULL);
    dc_tensor x0;
    CHECK_OK(read_npy(dir, "x0.npy", &x0));
    dc_tensor first = one_image(&x0, 0), second = one_image(&x0, 1);
    canceller c = {0};
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = 300;
    o.steps = 4;                                      /* 3 inversion steps */
    o.progress = cancel_at_step;
    o.progress_user = &c;
    dc_latent_cache *cache, *fresh;
    CHECK_OK(dc_latent_cache_open(&cache, path, m, &o, 3));   /* 3 reconstruction steps */
    size_t index, size;
    CHECK_OK(dc_latent_cache_add(cache, &first, &index));
    CHECK(c.calls == 6);
    unsigned char *before = test_read_file(path, &size);
    CHECK(before != NULL);

    static const int at[] = {1, 3, 4, 6};
    static const char *const stages[] = {"invert", "invert", "reconstruct", "reconstruct"};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        c = (canceller){.cancel_at = at[i]};
        index = 99;
        dci_err_clear();
        CHECK_STATUS(dc_latent_cache_add(cache, &second, &index), DC_ECANCELLED);
        CHECK(c.calls == at[i] && strcmp(c.stage, stages[i]) == 0);
        CHECK(index == 99 && dc_latent_cache_count(cache) == 1 && dc_last_error()[0]);
        CHECKF(same_file(path, before, size), "cancelled at %d: the file changed", at[i]);
    }
    free(before);
    c = (canceller){0};
    CHECK_OK(dc_latent_cache_add(cache, &second, &index));
    CHECK(index == 1 && dc_latent_cache_count(cache) == 2);

    /* A cache that was never cancelled holds the same entries, in the same bytes. */
    o.progress = NULL;
    CHECK_OK(dc_latent_cache_open(&fresh, fresh_path, m, &o, 3));
    CHECK_OK(dc_latent_cache_add(fresh, &first, &index));
    CHECK_OK(dc_latent_cache_add(fresh, &second, &index));
    for (size_t e = 0; e < 2; e++) {
        dc_tensor a[3], b[3];
        CHECK_OK(dc_latent_cache_get(cache, e, &a[0], &a[1], &a[2]));
        CHECK_OK(dc_latent_cache_get(fresh, e, &b[0], &b[1], &b[2]));
        for (int k = 0; k < 3; k++) {
            CHECKF(same_bytes(&a[k], &b[k]), "entry %zu array %d differs", e, k);
            dc_tensor_free(&a[k]), dc_tensor_free(&b[k]);
        }
    }
    dc_latent_cache_free(fresh);
    dc_latent_cache_free(cache);
    unsigned char *made = test_read_file(fresh_path, &size);
    CHECK(made != NULL);
    int identical = same_file(path, made, size);
    free(made);
    CHECK(identical);
    CHECK_OK(dc_latent_cache_open(&cache, path, m, &o, 3));  /* and it reopens */
    CHECK(dc_latent_cache_count(cache) == 2);
    dc_latent_cache_free(cache);
    dc_tensor_free(&x0);
    dc_model_free(m);
}

TEST(cancelled_sampler_runs_leave_the_sampler_usable)
{
    char dir[1024], other_dir[1024];
    if (!golden_case("ddpm_unet", dir, sizeof dir) ||
        !golden_case("noise_combination", other_dir, sizeof other_dir))
        return;
    dc_model *models[2] = {load_model(dir, "model.pt"), load_model(other_dir, "model_b.pt")};
    CHECK(models[0] && models[1]);
    dc_sampler *s;
    CHECK_OK(dc_sampler_new(&s, models, 2));
    const double half[2] = {0.5, 0.5};
    CHECK_OK(dc_sampler_set_weights(s, half));
    dc_tensor x0, reference, projected;
    CHECK_OK(read_npy(dir, "x0.npy", &x0));
    canceller c = {0};
    diffusion_call call = {.sampler = s, .in = &x0};
    dc_diffusion_options_init(&call.options, DC_DIFFUSION_OPTIONS_VERSION);
    call.options.t0 = 300;
    call.options.steps = 4;
    call.options.progress = cancel_at_step;
    call.options.progress_user = &c;
    CHECK_OK(sampler_generate_call(&call, &reference));
    CHECK(c.calls == 4);
    static const int generate_at[] = {1, 4};
    check_cancel_points(sampler_generate_call, &call, &c, generate_at, 2, &reference, NULL);
    dc_tensor_free(&reference);
    if (test_failed())
        return;

    dc_edit_options_init(&call.edit, DC_EDIT_OPTIONS_VERSION);
    call.edit.t0 = 300;
    call.edit.inv_steps = 4;                          /* 3 steps */
    call.edit.gen_steps = 3;
    call.edit.repeats = 2;
    call.edit.projection_steps = 2;
    call.edit.progress = cancel_at_step;
    call.edit.progress_user = &c;
    c = (canceller){0};
    CHECK_OK(edit_call(&call, &reference));
    CHECK(c.calls == 6);
    static const int edit_at[] = {2, 5};
    static const char *const edit_stages[] = {"invert", "generate"};
    check_cancel_points(edit_call, &call, &c, edit_at, 2, &reference, edit_stages);
    dc_tensor_free(&reference);
    if (test_failed())
        return;

    c = (canceller){0};
    CHECK_OK(transition_call(&call, &reference));
    CHECK(c.calls == 3 + 2 * 3);
    static const int transition_at[] = {3, 7};
    static const char *const transition_stages[] = {"invert", "generate"};
    check_cancel_points(transition_call, &call, &c, transition_at, 2, &reference,
                        transition_stages);
    dc_tensor_free(&reference);
    if (test_failed())
        return;

    c = (canceller){0};
    CHECK_OK(translate_call(&call, &reference));
    CHECK(c.calls == 2 * 2 + 3 + 3);
    projected = call.projected;
    call.projected = (dc_tensor){0};
    static const int translate_at[] = {3, 6, 10};
    static const char *const translate_stages[] = {"project", "invert", "generate"};
    check_cancel_points(translate_call, &call, &c, translate_at, 3, &reference,
                        translate_stages);
    CHECK(same_bytes(&call.projected, &projected));
    dc_tensor_free(&call.projected), dc_tensor_free(&projected);
    dc_tensor_free(&reference);
    dc_tensor_free(&x0);
    dc_sampler_free(s);
    dc_model_free(models[0]);
    dc_model_free(models[1]);
}
