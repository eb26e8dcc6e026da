/* The fine-tuned models of DIR (loaded on first use, reloaded when their file changes, the
 * least recently used unloaded past a bound), the in-memory latents of uploaded images, and
 * the edit and transition requests. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

enum { MAX_MIX = 16, MAX_TRANSITION = 16, MAX_STEPS = 1000 };

typedef struct loaded_model {
    char *name;
    dc_model *model;
    struct stat st;                  /* of the file when loaded */
    uint64_t used;
} loaded_model;

/* A latent of an image at the model's resolution, for one (t0, inversion steps). */
typedef struct latent_entry {
    uint64_t hash, used;
    int t0, inv_steps;
    dc_tensor x0, latent;
} latent_entry;

struct sv_models {
    pthread_mutex_t lock;            /* the tables (listing reads them without the compute lock) */
    loaded_model *loaded;
    latent_entry *latents;
    uint64_t clock;
};

int sv_models_new(sv_server *s)
{
    sv_models *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->loaded = calloc((size_t)s->config.max_loaded, sizeof *m->loaded);
    m->latents = calloc((size_t)s->config.latent_cache, sizeof *m->latents);
    if (!m->loaded || !m->latents) {
        free(m->loaded);
        free(m->latents);
        free(m);
        return -1;
    }
    pthread_mutex_init(&m->lock, NULL);
    s->models = m;
    return 0;
}

void sv_models_free(sv_models *m)
{
    if (!m)
        return;
    sv_server *s = sv_the_server;
    for (int i = 0; i < s->config.max_loaded; i++) {
        free(m->loaded[i].name);
        dc_model_free(m->loaded[i].model);
    }
    for (int i = 0; i < s->config.latent_cache; i++) {
        dc_tensor_free(&m->latents[i].x0);
        dc_tensor_free(&m->latents[i].latent);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->loaded);
    free(m->latents);
    free(m);
}

/* ---- the models of DIR ---- */

static int is_model_name(const char *name)
{
    static const char *const exts[] = {".pt", ".pth", ".ckpt", ".safetensors", ".delta", ".bin"};
    size_t n = strlen(name);
    if (!sv_valid_file_name(name))
        return 0;
    /* NAME.epochE.EXT: an epoch file of a fine-tuning still running or stopped. */
    const char *epoch = strstr(name, ".epoch");
    if (epoch && epoch[6] >= '0' && epoch[6] <= '9')
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(name + n - e, exts[i]) == 0)
            return 1;
    }
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_loaded(sv_models *m, int capacity, const char *name)
{
    int found = 0;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < capacity && !found; i++)
        found = m->loaded[i].name && strcmp(m->loaded[i].name, name) == 0;
    pthread_mutex_unlock(&m->lock);
    return found;
}

void sv_models_list_json(sv_server *s, sv_buf *out)
{
    static const char *const families[] = {"ddpm", "adm"};
    const char *slash = strrchr(s->config.model_path, '/');
    sv_buf_printf(out, "{\"base\": {\"name\": ");
    sv_buf_json_string(out, slash ? slash + 1 : s->config.model_path);
    sv_buf_printf(out, ", \"family\": \"%s\", \"image_size\": %d, \"parameters\": %lld, "
                  "\"description\": ", families[s->info.family == DC_MODEL_ADM],
                  s->info.image_size, (long long)s->info.parameters);
    sv_buf_json_string(out, s->description);
    const char *predictor = s->config.predictor_path ? s->config.predictor_path
                                                     : DC_FACE_DEFAULT_PREDICTOR;
    sv_buf_printf(out, "},\n \"finetune\": %s, \"align\": %s,\n \"models\": [",
                  s->config.clip_path && s->config.vocab_path ? "true" : "false",
                  access(predictor, R_OK) == 0 ? "true" : "false");
    char **names = NULL;
    size_t count = 0, capacity = 0;
    DIR *d = opendir(s->real_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!is_model_name(e->d_name))
            continue;
        char *real = sv_resolve_in_dir(s->real_dir, e->d_name);
        if (!real)
            continue;
        free(real);
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 32;
            char **grown = realloc(names, capacity * sizeof *grown);
            if (!grown)
                break;
            names = grown;
        }
        if (!(names[count] = strdup(e->d_name)))
            break;
        count++;
    }
    if (d)
        closedir(d);
    if (names)
        qsort(names, count, sizeof *names, compare_strings);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->real_dir, names[i]);
        sv_buf_printf(out, "%s\n  {\"name\": ", i ? "," : "");
        sv_buf_json_string(out, names[i]);
        sv_buf_printf(out, ", \"bytes\": %lld, \"loaded\": %s}",
                      stat(path, &st) == 0 ? (long long)st.st_size : 0LL,
                      is_loaded(s->models, s->config.max_loaded, names[i]) ? "true" : "false");
        free(names[i]);
    }
    free(names);
    sv_buf_printf(out, "]}\n");
}

/* The fine-tuned model `name` of DIR, loaded now if it is not (or its file changed), in place
 * of the least recently used one not used since `since` (the models of this request stay).
 * Only under the compute lock. 0, or -1 after sv_error. */
static int get_model(sv_server *s, const char *name, uint64_t since, dc_model **out,
                     sv_reply *r)
{
    if (!sv_valid_file_name(name))
        return sv_error(r, 400, "models: '%.80s' is not a model name (a file name in the "
                        "fine-tuned directory: letters, digits, '.', '_', '+', '-')", name);
    char *real = sv_resolve_in_dir(s->real_dir, name);
    struct stat st;
    if (!real || stat(real, &st) != 0 || !is_model_name(name)) {
        free(real);
        return sv_error(r, 404, "models: no model '%s' in the fine-tuned directory", name);
    }
    sv_models *m = s->models;
    int slot = -1, oldest = -1;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < s->config.max_loaded; i++) {
        loaded_model *l = &m->loaded[i];
        if (l->name && strcmp(l->name, name) == 0)
            slot = i;
        if (l->used <= since && (oldest < 0 || l->used < m->loaded[oldest].used))
            oldest = i;
    }
    loaded_model *l = slot >= 0 ? &m->loaded[slot] : NULL;
    int fresh = l && l->st.st_ino == st.st_ino && l->st.st_dev == st.st_dev &&
                l->st.st_size == st.st_size && l->st.st_mtim.tv_sec == st.st_mtim.tv_sec &&
                l->st.st_mtim.tv_nsec == st.st_mtim.tv_nsec;
    if (fresh) {
        l->used = ++m->clock;
        *out = l->model;
        pthread_mutex_unlock(&m->lock);
        free(real);
        return 0;
    }
    pthread_mutex_unlock(&m->lock);
    if (slot < 0 && oldest < 0)
        return sv_error(r, 400, "models: more models than the server keeps loaded (%d)",
                        s->config.max_loaded);
    dc_model *model = NULL;
    dc_status status = dc_model_load_finetuned(&model, s->base, real, NULL);
    free(real);
    if (status != DC_OK)
        return sv_error(r, status == DC_ENOMEM ? 500 : 400, "models: %s: %s", name,
                        dc_last_error());
    pthread_mutex_lock(&m->lock);
    l = &m->loaded[slot >= 0 ? slot : oldest];
    free(l->name);
    dc_model_free(l->model);
    l->name = strdup(name);
    l->model = model;
    l->st = st;
    l->used = ++m->clock;
    if (!l->name) {
        dc_model_free(l->model);
        memset(l, 0, sizeof *l);
        pthread_mutex_unlock(&m->lock);
        return sv_error(r, 500, "out of memory");
    }
    pthread_mutex_unlock(&m->lock);
    *out = model;
    return 0;
}

/* ---- latents ---- */

static uint64_t fnv1a(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static size_t tensor_bytes(const dc_tensor *t)
{
    return (size_t)dc_tensor_numel(t) * dc_dtype_size(t->dtype);
}

static int copy_tensor(dc_tensor *dst, const dc_tensor *src)
{
    *dst = *src;
    dst->data = malloc(tensor_bytes(src));
    if (!dst->data)
        return -1;
    memcpy(dst->data, src->data, tensor_bytes(src));
    return 0;
}

/* The latent of x0 at (t0, inv_steps): from memory, or inverted with the base model and kept.
 * Only under the compute lock. 0, or -1 after sv_error (r->status 0: cancelled). */
static int get_latent(sv_server *s, const dc_tensor *x0, int t0, int inv_steps,
                      const sv_client *c, dc_tensor *latent, int *hit, sv_reply *r)
{
    sv_models *m = s->models;
    uint64_t hash = fnv1a(x0->data, tensor_bytes(x0));
    int oldest = 0;
    for (int i = 0; i < s->config.latent_cache; i++) {
        latent_entry *e = &m->latents[i];
        if (e->x0.data && e->hash == hash && e->t0 == t0 && e->inv_steps == inv_steps &&
            memcmp(e->x0.shape, x0->shape, sizeof x0->shape) == 0 &&
            memcmp(e->x0.data, x0->data, tensor_bytes(x0)) == 0) {
            e->used = ++m->clock;
            *hit = 1;
            __atomic_add_fetch(&s->latent_hits, 1, __ATOMIC_RELAXED);
            if (copy_tensor(latent, &e->latent) != 0)
                return sv_error(r, 500, "out of memory");
            return 0;
        }
        if (e->used < m->latents[oldest].used)
            oldest = i;
    }
    *hit = 0;
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = t0;
    o.steps = inv_steps;
    o.progress = sv_client_progress;
    o.progress_user = (void *)c;
    dc_status status = dc_invert(s->base, x0, &o, latent);
    if (status == DC_ECANCELLED) {
        r->status = 0;
        return -1;
    }
    if (status != DC_OK)
        return sv_error(r, sv_status_for(status), "%s", dc_last_error());
    __atomic_add_fetch(&s->inversions, 1, __ATOMIC_RELAXED);
    latent_entry *e = &m->latents[oldest];
    dc_tensor_free(&e->x0);
    dc_tensor_free(&e->latent);
    memset(e, 0, sizeof *e);
    if (copy_tensor(&e->x0, x0) == 0 && copy_tensor(&e->latent, latent) == 0) {
        e->hash = hash;
        e->t0 = t0;
        e->inv_steps = inv_steps;
        e->used = ++m->clock;
    } else {
        dc_tensor_free(&e->x0);
    }
    return 0;
}

/* ---- edit and transition ---- */

typedef struct edit_request {
    char names[MAX_MIX][256];
    double weights[MAX_MIX + 1];     /* the base model's first */
    int count;                       /* fine-tuned models */
    int t0, inv_steps, gen_steps, transition_count, align;
} edit_request;

/* Splits a comma-separated list into at most `max` items (empty items refused). */
static int split_list(const char *text, char items[][256], int max, const char *field,
                      int *count, sv_reply *r)
{
    *count = 0;
    if (!text || !*text)
        return 0;
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ')) p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n == 0)
            return sv_error(r, 400, "%s: an empty item in '%.80s'", field, text);
        if (*count >= max)
            return sv_error(r, 400, "%s: more than %d items", field, max);
        if (n >= 256)
            return sv_error(r, 400, "%s: an item over 255 bytes", field);
        memcpy(items[*count], p, n);
        items[(*count)++][n] = '\0';
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int parse_edit(const sv_form *f, int transition, edit_request *e, sv_reply *r)
{
    if (split_list(sv_form_field(f, "models"), e->names, MAX_MIX, "models", &e->count, r))
        return -1;
    char weights[MAX_MIX][256];
    int nweights = 0;
    if (split_list(sv_form_field(f, "weights"), weights, MAX_MIX, "weights", &nweights, r))
        return -1;
    if (nweights && nweights != e->count)
        return sv_error(r, 400, "weights: %d weights for %d models", nweights, e->count);
    double sum = 0;
    for (int i = 0; i < e->count; i++) {
        double w = 1.0 / e->count;
        if (nweights) {
            char *end;
            errno = 0;
            w = strtod(weights[i], &end);
            if (errno || end == weights[i] || *end || !isfinite(w) || w < 0)
                return sv_error(r, 400, "weights: '%.40s' is not a weight >= 0", weights[i]);
        }
        e->weights[i + 1] = w;
        sum += w;
    }
    if (sum > 1 + 1e-6)
        return sv_error(r, 400, "weights: they sum to %g, more than 1 (the original model "
                        "takes what is left)", sum);
    /* Rounding (0.1 + 0.2 + 0.7) must not leave the original a weight of 1e-16. */
    e->weights[0] = fabs(1 - sum) <= 1e-6 ? 0 : 1 - sum;
    const char *align = sv_form_field(f, "align");
    if (align && strcmp(align, "0") != 0 && strcmp(align, "1") != 0)
        return sv_error(r, 400, "align: 0 or 1, not '%.40s'", align);
    e->align = align && strcmp(align, "1") == 0;
    if (sv_form_int(f, "t0", 500, 1, 999, &e->t0, r) ||
        sv_form_int(f, "inv_steps", 40, 2, MAX_STEPS, &e->inv_steps, r) ||
        sv_form_int(f, "gen_steps", 40, 2, MAX_STEPS, &e->gen_steps, r))
        return -1;
    e->transition_count = 0;
    if (transition &&
        sv_form_int(f, "count", 5, 2, MAX_TRANSITION, &e->transition_count, r))
        return -1;
    return 0;
}

/* The generations of the latent with the mix; for a transition the weights
 * (1 - g) e_0 + g w for g = k / (count - 1), as dc_sampler_transition blends them. */
static int generate(sv_server *s, const edit_request *e, dc_model **models,
                    const dc_tensor *latent, const sv_client *c, dc_tensor *frames,
                    sv_reply *r)
{
    dc_sampler *sampler = NULL;
    dc_status status = dc_sampler_new(&sampler, models, (size_t)e->count + 1);
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = e->t0;
    o.steps = e->gen_steps;
    o.progress = sv_client_progress;
    o.progress_user = (void *)c;
    int n = e->transition_count ? e->transition_count : 1;
    for (int k = 0; k < n && status == DC_OK; k++) {
        double w[MAX_MIX + 1], g = e->transition_count ? (double)k / (n - 1) : 1;
        for (int i = 0; i <= e->count; i++)
            w[i] = (i == 0 ? 1.0 - g : 0.0) + g * e->weights[i];
        status = dc_sampler_set_weights(sampler, w);
        if (status == DC_OK)
            status = dc_sampler_generate(sampler, latent, &o, &frames[k]);
    }
    dc_sampler_free(sampler);
    if (status == DC_ECANCELLED) {
        r->status = 0;
        return -1;
    }
    if (status != DC_OK)
        return sv_error(r, sv_status_for(status), "%s", dc_last_error());
    return 0;
}

/* With align=1 the photo's face aligned as the published edit_one_image does (a photo without
 * a face is used as given); then x0 at the model's resolution. Under the compute lock (the
 * aligner is one handle). */
static int photo_tensor(sv_server *s, const edit_request *e, const dc_image *img,
                        dc_tensor *x0, sv_reply *r)
{
    dc_image aligned = {0};
    const dc_image *use = img;
    if (e->align) {
        dc_face_aligner_options o;
        dc_face_aligner_options_init(&o, DC_FACE_ALIGNER_OPTIONS_VERSION);
        o.predictor_path = s->config.predictor_path;
        if (!s->aligner && dc_face_aligner_new(&s->aligner, &o) != DC_OK)
            return sv_error(r, 501, "align: face alignment is not available: %s",
                            dc_last_error());
        dc_status st = dc_face_align(s->aligner, img, s->info.image_size, &aligned, NULL);
        if (st != DC_OK && st != DC_ENOTFOUND)
            return sv_error(r, sv_status_for(st), "align: %s", dc_last_error());
        if (st == DC_OK)
            use = &aligned;
        snprintf(r->header_name[1], sizeof r->header_name[1], "X-Diffclip-Align");
        snprintf(r->header_value[1], sizeof r->header_value[1], "%s",
                 st == DC_OK ? "aligned" : "no-face");
    }
    dc_status st = dc_image_to_tensor(use, s->info.image_size, x0);
    dc_image_free(&aligned);
    if (st != DC_OK)
        return sv_error(r, sv_status_for(st), "image: %s", dc_last_error());
    return 0;
}

int sv_handle_edit(sv_server *s, const sv_form *f, const sv_client *c, int transition,
                   sv_reply *r)
{
    edit_request e;
    const sv_part *image = sv_form_part(f, "image");
    if (!image)
        return sv_error(r, 400, "image: a PNG or JPEG file part is required");
    if (parse_edit(f, transition, &e, r))
        return -1;
    dc_image img = {0};
    if (sv_decode_image(&image->value, s->config.max_image_side, &img, r))
        return -1;
    dc_tensor x0 = {0}, latent = {0}, frames[MAX_TRANSITION] = {{0}};
    int failed = sv_acquire(s, c, r), hit = 0;
    if (!failed) {
        failed = photo_tensor(s, &e, &img, &x0, r);
        dc_model *models[MAX_MIX + 1] = {s->base};
        uint64_t since = s->models->clock;
        for (int i = 0; i < e.count && !failed; i++)
            failed = get_model(s, e.names[i], since, &models[i + 1], r);
        if (!failed)
            failed = get_latent(s, &x0, e.t0, e.inv_steps, c, &latent, &hit, r);
        if (!failed)
            failed = generate(s, &e, models, &latent, c, frames, r);
        sv_release(s);
    }
    if (!failed) {
        const dc_tensor *parts[MAX_TRANSITION];
        int n = e.transition_count ? e.transition_count : 1;
        for (int k = 0; k < n; k++)
            parts[k] = &frames[k];
        failed = sv_reply_png_strip(r, parts, n);
        snprintf(r->header_name[0], sizeof r->header_name[0], "X-Diffclip-Latent");
        snprintf(r->header_value[0], sizeof r->header_value[0], "%s",
                 hit ? "cached" : "inverted");
    }
    if (!failed)
        __atomic_add_fetch(&s->served, 1, __ATOMIC_RELAXED);
    else if (r->status == 0)
        __atomic_add_fetch(&s->cancelled, 1, __ATOMIC_RELAXED);
    for (int k = 0; k < MAX_TRANSITION; k++)
        dc_tensor_free(&frames[k]);
    dc_image_free(&img);
    dc_tensor_free(&x0);
    dc_tensor_free(&latent);
    return failed;
}
