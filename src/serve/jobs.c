/* Fine-tuning jobs: POST /api/finetune trains a copy of the base model in a thread of its own
 * (its own handle on the base weights, which dc_model_load shares), into DIR/NAME; GET
 * /api/jobs/ID reports its progress; DELETE /api/jobs/ID cancels it through the progress
 * callback. One job runs at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { MAX_JOBS = 32, MAX_TRAINING_IMAGES = 100, MAX_TEXT = 1024 };

typedef enum job_state { JOB_INVERTING, JOB_TRAINING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;
static const char *const state_names[] = {"inverting", "training", "done", "failed", "cancelled"};

typedef struct job {
    unsigned id;
    char file[256];                  /* the output's name in DIR */
    char stem[256];                  /* without the extension: epoch files and grids */
    char path[4096];
    char cache_path[4096];
    char source[MAX_TEXT], target[MAX_TEXT];
    const char *sources[1], *targets[1];
    dc_finetune_options options;
    dc_tensor *images;
    size_t *indices;
    int image_count;
    pthread_t thread;
    /* Under sv_jobs.lock: */
    job_state state;
    int cancel;
    dc_progress last;
    int inverted;                    /* training images inverted so far */
    char error[1024];
    double started, finished;
} job;

struct sv_jobs {
    pthread_mutex_t lock;
    job *jobs[MAX_JOBS];
    unsigned next_id;
    int running;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int sv_jobs_new(sv_server *s)
{
    sv_jobs *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    pthread_mutex_init(&j->lock, NULL);
    j->next_id = 1;
    s->jobs = j;
    return 0;
}

static void job_free(job *jb)
{
    if (!jb)
        return;
    for (int i = 0; i < jb->image_count; i++)
        dc_tensor_free(&jb->images[i]);
    free(jb->images);
    free(jb->indices);
    free(jb);
}

void sv_jobs_free(sv_jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < MAX_JOBS; i++)
        if (j->jobs[i])
            j->jobs[i]->cancel = 1;
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < MAX_JOBS; i++) {
        if (j->jobs[i])
            pthread_join(j->jobs[i]->thread, NULL);
        job_free(j->jobs[i]);
    }
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* ---- the job's thread ---- */

static int job_progress(void *user, const dc_progress *p)
{
    job *jb = user;
    sv_jobs *j = sv_the_server->jobs;
    pthread_mutex_lock(&j->lock);
    if (strcmp(p->stage, "finetune") == 0) {
        jb->state = JOB_TRAINING;
        jb->last = *p;
    }
    int stop = jb->cancel || !sv_client_alive(NULL);
    pthread_mutex_unlock(&j->lock);
    return stop;
}

static void job_finish(job *jb, job_state state, const char *error)
{
    sv_jobs *j = sv_the_server->jobs;
    pthread_mutex_lock(&j->lock);
    jb->state = state;
    if (error)
        snprintf(jb->error, sizeof jb->error, "%s", error);
    jb->finished = now_seconds();
    j->running = 0;
    pthread_mutex_unlock(&j->lock);
}

static void *run_job(void *arg)
{
    job *jb = arg;
    sv_server *s = sv_the_server;
    const serve_config *c = &s->config;
    dc_model *base = NULL;
    dc_clip *clip = NULL;
    dc_tokenizer *tokenizer = NULL;
    dc_idnet *idnet = NULL;
    dc_latent_cache *cache = NULL;
    dc_finetuner *ft = NULL;
    dc_clip_options co;
    dc_clip_options_init(&co, DC_CLIP_OPTIONS_VERSION);
    co.device = c->device;
    dc_diffusion_options inversion;
    dc_diffusion_options_init(&inversion, DC_DIFFUSION_OPTIONS_VERSION);
    inversion.t0 = jb->options.t0;
    inversion.steps = jb->options.inv_steps;
    inversion.progress = job_progress;
    inversion.progress_user = jb;
    dc_status status = sv_load_base_model(c, &base);
    if (status == DC_OK)
        status = dc_clip_load(&clip, c->clip_path, &co);
    if (status == DC_OK)
        status = dc_tokenizer_new(&tokenizer, c->vocab_path);
    if (status == DC_OK && jb->options.id_weight > 0) {
        dc_idnet_options io;
        dc_idnet_options_init(&io, DC_IDNET_OPTIONS_VERSION);
        io.device = c->device;
        status = dc_idnet_load(&idnet, c->arcface_path, &io);
    }
    /* x_rec is regenerated with the inversion's steps, as `diffclip finetune` does. */
    if (status == DC_OK)
        status = dc_latent_cache_open(&cache, jb->cache_path, base, &inversion,
                                      jb->options.inv_steps);
    for (int i = 0; status == DC_OK && i < jb->image_count; i++) {
        status = dc_latent_cache_add(cache, &jb->images[i], &jb->indices[i]);
        pthread_mutex_lock(&s->jobs->lock);
        jb->inverted = i + 1;
        pthread_mutex_unlock(&s->jobs->lock);
    }
    if (status == DC_OK) {
        jb->options.image_indices = jb->indices;
        jb->options.image_count = (size_t)jb->image_count;
        status = dc_finetuner_new(&ft, base, clip, tokenizer, idnet, cache, &jb->options);
    }
    if (status == DC_OK)
        status = dc_finetuner_train(ft, 0, jb->path);
    char error[1024];
    snprintf(error, sizeof error, "%s", dc_last_error());
    dc_finetuner_free(ft);
    dc_latent_cache_free(cache);
    unlink(jb->cache_path);
    dc_idnet_free(idnet);
    dc_tokenizer_free(tokenizer);
    dc_clip_free(clip);
    dc_model_free(base);
    job_finish(jb, status == DC_OK ? JOB_DONE : status == DC_ECANCELLED ? JOB_CANCELLED
                                                                       : JOB_FAILED,
               status == DC_OK || status == DC_ECANCELLED ? NULL : error);
    return NULL;
}

/* ---- starting a job ---- */

static int parse_options(sv_server *s, const sv_form *f, job *jb, sv_reply *r)
{
    dc_finetune_options *o = &jb->options;
    dc_finetune_options_init(o, DC_FINETUNE_OPTIONS_VERSION);
    const char *preset = sv_form_field(f, "preset");
    if (preset && *preset && dc_finetune_options_apply_preset(o, preset) != DC_OK)
        return sv_error(r, 400, "preset: %s", dc_last_error());
    const char *src = sv_form_field(f, "src"), *trg = sv_form_field(f, "trg");
    if ((src && *src) != (trg && *trg))
        return sv_error(r, 400, "src and trg: give both texts");
    if (src && *src) {
        if (strlen(src) >= MAX_TEXT || strlen(trg) >= MAX_TEXT)
            return sv_error(r, 400, "src and trg: texts over %d bytes", MAX_TEXT - 1);
        snprintf(jb->source, sizeof jb->source, "%s", src);
        snprintf(jb->target, sizeof jb->target, "%s", trg);
    } else if (o->text_pairs == 1) {
        snprintf(jb->source, sizeof jb->source, "%s", o->source_texts[0]);
        snprintf(jb->target, sizeof jb->target, "%s", o->target_texts[0]);
    } else {
        return sv_error(r, 400, "src and trg: the edit's texts are required (or an edit "
                        "preset)");
    }
    jb->sources[0] = jb->source;
    jb->targets[0] = jb->target;
    o->source_texts = jb->sources;
    o->target_texts = jb->targets;
    o->text_pairs = 1;
    int seed = (int)o->seed;
    if (sv_form_int(f, "t0", o->t0, 1, 999, &o->t0, r) ||
        sv_form_int(f, "inv_steps", o->inv_steps, 2, 1000, &o->inv_steps, r) ||
        sv_form_int(f, "train_steps", o->train_steps, 1, 1000, &o->train_steps, r) ||
        sv_form_int(f, "epochs", o->epochs, 1, 1000, &o->epochs, r) ||
        sv_form_int(f, "images_per_epoch", o->images, 1, 100000, &o->images, r) ||
        sv_form_int(f, "batch", o->batch_size, 1, 64, &o->batch_size, r) ||
        sv_form_int(f, "seed", seed, 0, 2147483647, &seed, r) ||
        sv_form_double(f, "lr", o->learning_rate, 0, 1, &o->learning_rate, r) ||
        sv_form_double(f, "sch_gamma", o->lr_gamma, 0, 100, &o->lr_gamma, r) ||
        sv_form_double(f, "clip_w", o->clip_weight, 0, 1e6, &o->clip_weight, r) ||
        sv_form_double(f, "l1_w", o->l1_weight, 0, 1e6, &o->l1_weight, r) ||
        sv_form_double(f, "id_w", o->id_weight, 0, 1e6, &o->id_weight, r) ||
        sv_form_double(f, "eta", o->eta, 0, 1, &o->eta, r))
        return -1;
    o->seed = (uint64_t)seed;
    const char *mode = sv_form_field(f, "grad_mode"), *form = sv_form_field(f, "loss_form");
    if (mode && strcmp(mode, "full") == 0)
        o->grad_mode = DC_GRAD_FULL;
    else if (mode && strcmp(mode, "per-step") == 0)
        o->grad_mode = DC_GRAD_PER_STEP;
    else if (mode)
        return sv_error(r, 400, "grad_mode: full or per-step, not '%.40s'", mode);
    if (form && strcmp(form, "log") == 0)
        o->loss_form = DC_CLIP_LOSS_LOG;
    else if (form && strcmp(form, "direction") == 0)
        o->loss_form = DC_CLIP_LOSS_DIRECTION;
    else if (form)
        return sv_error(r, 400, "loss_form: log or direction, not '%.40s'", form);
    if (o->id_weight > 0 && !s->config.arcface_path)
        return sv_error(r, 400, "id_w: the identity loss needs diffclip serve --arcface A");
    o->progress = job_progress;
    o->progress_user = jb;
    /* The page shows the latest epoch's grid of the first training images. */
    o->test_images = 4;
    return 0;
}

/* NAME (letters, digits, '_', '-') and FORMAT into the file name NAME.EXT. */
static int output_name(const sv_form *f, job *jb, sv_reply *r)
{
    const char *name = sv_form_field(f, "name"), *format = sv_form_field(f, "format");
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n)
        return sv_error(r, 400, "name: 1 to 64 letters, digits, '_' or '-' (the model's file "
                        "name without its extension)");
    const char *ext = !format || strcmp(format, "delta") == 0 ? ".delta"
                      : strcmp(format, "pt") == 0             ? ".pt"
                      : strcmp(format, "safetensors") == 0    ? ".safetensors"
                                                              : NULL;
    if (!ext)
        return sv_error(r, 400, "format: delta, pt or safetensors, not '%.40s'", format);
    snprintf(jb->stem, sizeof jb->stem, "%s", name);
    snprintf(jb->file, sizeof jb->file, "%s%s", name, ext);
    return 0;
}

static int decode_images(sv_server *s, const sv_form *f, job *jb, sv_reply *r)
{
    int count = 0;
    for (int i = 0; i < f->count; i++)
        count += f->parts[i].filename && strcmp(f->parts[i].name, "images") == 0;
    if (count == 0)
        return sv_error(r, 400, "images: one or more PNG or JPEG file parts are required");
    if (count > MAX_TRAINING_IMAGES)
        return sv_error(r, 400, "images: more than %d", MAX_TRAINING_IMAGES);
    jb->images = calloc((size_t)count, sizeof *jb->images);
    jb->indices = calloc((size_t)count, sizeof *jb->indices);
    if (!jb->images || !jb->indices)
        return sv_error(r, 500, "out of memory");
    for (int i = 0; i < f->count; i++) {
        const sv_part *p = &f->parts[i];
        if (!p->filename || strcmp(p->name, "images") != 0)
            continue;
        dc_image img;
        if (sv_decode_image(&p->value, s->config.max_image_side, &img, r))
            return -1;
        dc_status st = dc_image_to_tensor(&img, s->info.image_size, &jb->images[jb->image_count]);
        dc_image_free(&img);
        if (st != DC_OK)
            return sv_error(r, sv_status_for(st), "images: %s", dc_last_error());
        jb->image_count++;
    }
    return 0;
}

static void job_json(sv_server *s, job *jb, sv_buf *out);

/* A slot for a new job: a free one, else that of the oldest finished job. */
static int free_slot(sv_jobs *j)
{
    int oldest = -1;
    for (int i = 0; i < MAX_JOBS; i++) {
        if (!j->jobs[i])
            return i;
        if (j->jobs[i]->state >= JOB_DONE && (oldest < 0 || j->jobs[i]->id < j->jobs[oldest]->id))
            oldest = i;
    }
    if (oldest >= 0) {
        pthread_join(j->jobs[oldest]->thread, NULL);
        job_free(j->jobs[oldest]);
        j->jobs[oldest] = NULL;
    }
    return oldest;
}

int sv_handle_finetune(sv_server *s, sv_form *f, sv_reply *r)
{
    if (!s->config.clip_path || !s->config.vocab_path)
        return sv_error(r, 501, "fine-tuning needs diffclip serve --clip C --vocab V");
    job *jb = calloc(1, sizeof *jb);
    if (!jb)
        return sv_error(r, 500, "out of memory");
    int failed = output_name(f, jb, r) || parse_options(s, f, jb, r);
    const char *overwrite = sv_form_field(f, "overwrite");
    snprintf(jb->path, sizeof jb->path, "%s/%s", s->real_dir, jb->file);
    struct stat st;
    if (!failed && !(overwrite && strcmp(overwrite, "1") == 0) && lstat(jb->path, &st) == 0)
        failed = sv_error(r, 409, "name: %s exists in the fine-tuned directory (overwrite=1 "
                          "replaces it)", jb->file);
    if (!failed)
        failed = decode_images(s, f, jb, r);
    if (failed) {
        job_free(jb);
        return -1;
    }
    sv_jobs *j = s->jobs;
    pthread_mutex_lock(&j->lock);
    int slot = j->running ? -1 : free_slot(j);
    if (slot < 0) {
        pthread_mutex_unlock(&j->lock);
        job_free(jb);
        return sv_error(r, 503, "busy: a fine-tuning job is running (one at a time)");
    }
    jb->id = j->next_id++;
    jb->state = JOB_INVERTING;
    jb->started = now_seconds();
    snprintf(jb->cache_path, sizeof jb->cache_path, "%s/job%u.dclat", s->temp_dir, jb->id);
    if (pthread_create(&jb->thread, NULL, run_job, jb) != 0) {
        pthread_mutex_unlock(&j->lock);
        job_free(jb);
        return sv_error(r, 500, "cannot start a thread: %s", strerror(errno));
    }
    j->jobs[slot] = jb;
    j->running = 1;
    r->status = 202;
    r->content_type = "application/json";
    job_json(s, jb, &r->body);
    pthread_mutex_unlock(&j->lock);
    return 0;
}

/* ---- progress ---- */

/* The URL of the latest per-epoch test grid fine-tuning wrote (DIR/STEM.epochE.test.png), or
 * NULL. */
static int latest_grid(sv_server *s, const job *jb, char *url, size_t size)
{
    int epochs = jb->options.epochs;
    for (int e = epochs; e >= 0; e--) {
        char name[300];
        snprintf(name, sizeof name, "%s.epoch%d.test.png", jb->stem, e);
        char *real = sv_resolve_in_dir(s->real_dir, name);
        if (real) {
            free(real);
            snprintf(url, size, "/api/files/%s", name);
            return 1;
        }
    }
    return 0;
}

/* Under the jobs' lock. */
static void job_json(sv_server *s, job *jb, sv_buf *out)
{
    const dc_progress *p = &jb->last;
    double elapsed = (jb->state >= JOB_DONE ? jb->finished : now_seconds()) - jb->started;
    sv_buf_printf(out, "{\"id\": \"%u\", \"model\": ", jb->id);
    sv_buf_json_string(out, jb->file);
    sv_buf_printf(out, ", \"src\": ");
    sv_buf_json_string(out, jb->source);
    sv_buf_printf(out, ", \"trg\": ");
    sv_buf_json_string(out, jb->target);
    sv_buf_printf(out, ", \"state\": \"%s\", \"done\": %s,\n \"images_inverted\": %d, "
                  "\"images\": %d, \"epoch\": %d, \"epochs\": %d, \"image\": %d, "
                  "\"images_per_epoch\": %d, \"step\": %d, \"steps\": %d,\n \"losses\": "
                  "{\"clip\": %.9g, \"l1\": %.9g, \"id\": %.9g, \"total\": %.9g}, "
                  "\"learning_rate\": %.9g, \"seconds_per_image\": %.6g, "
                  "\"eta_seconds\": %.6g, \"elapsed_seconds\": %.6g,\n \"grid\": ",
                  state_names[jb->state], jb->state >= JOB_DONE ? "true" : "false",
                  jb->inverted, jb->image_count, p->epoch, jb->options.epochs, p->image,
                  p->images, p->step, p->steps, p->loss_clip, p->loss_l1, p->loss_id,
                  p->loss_total, p->learning_rate, p->seconds_per_image,
                  jb->state >= JOB_DONE ? 0.0 : p->eta_seconds, elapsed);
    char url[400];
    if (latest_grid(s, jb, url, sizeof url))
        sv_buf_json_string(out, url);
    else
        sv_buf_printf(out, "null");
    sv_buf_printf(out, ", \"error\": ");
    if (jb->error[0])
        sv_buf_json_string(out, jb->error);
    else
        sv_buf_printf(out, "null");
    sv_buf_printf(out, "}\n");
}

static job *find_job(sv_jobs *j, const char *id, int *slot)
{
    size_t n = strlen(id);
    if (n == 0 || n > 9 || strspn(id, "0123456789") != n)
        return NULL;
    unsigned want = (unsigned)strtoul(id, NULL, 10);
    for (int i = 0; i < MAX_JOBS; i++)
        if (j->jobs[i] && j->jobs[i]->id == want) {
            *slot = i;
            return j->jobs[i];
        }
    return NULL;
}

int sv_handle_job(sv_server *s, const char *id, int cancel, sv_reply *r)
{
    sv_jobs *j = s->jobs;
    pthread_mutex_lock(&j->lock);
    int slot;
    job *jb = find_job(j, id, &slot);
    if (!jb) {
        pthread_mutex_unlock(&j->lock);
        return sv_error(r, 404, "no job '%.40s'", id);
    }
    r->status = 200;
    r->content_type = "application/json";
    if (cancel && jb->state < JOB_DONE) {
        /* The job stops at its next step; GET shows "cancelled" then. */
        jb->cancel = 1;
        r->status = 202;
    }
    job_json(s, jb, &r->body);
    if (cancel && jb->state >= JOB_DONE) {
        /* A finished job is forgotten (its model stays in DIR). */
        j->jobs[slot] = NULL;
        pthread_mutex_unlock(&j->lock);
        pthread_join(jb->thread, NULL);
        job_free(jb);
        return 0;
    }
    pthread_mutex_unlock(&j->lock);
    return 0;
}

int sv_handle_file(sv_server *s, const char *name, sv_reply *r)
{
    size_t n = strlen(name);
    if (!sv_valid_file_name(name) || n < 5 || strcmp(name + n - 4, ".png") != 0)
        return sv_error(r, 400, "files: '%.80s' is not the name of a PNG file", name);
    char *real = sv_resolve_in_dir(s->real_dir, name);
    FILE *f = real ? fopen(real, "rb") : NULL;
    free(real);
    if (!f)
        return sv_error(r, 404, "files: no %s in the fine-tuned directory", name);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        sv_buf_add(&r->body, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (bad || r->body.failed)
        return sv_error(r, 500, "files: cannot read %s", name);
    r->status = 200;
    r->content_type = "image/png";
    return 0;
}
