/* diffclip finetune: training images -> latent cache -> fine-tuned weights per text pair. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "cluster.h"
#include "inputs.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define UNSET_INT INT32_MIN
/* Test images edited into each epoch's grid when --tests is not given. */
enum { DEFAULT_TESTS = 4 };

#define FINETUNE_USAGE                                                                     \
    "finetune --model BASE --clip CLIP --vocab V [--arcface A] --images FILE...|DIR|X.npy " \
    "--src TEXT --trg TEXT [--preset NAME] [--t0 N --inv-steps S --train-steps S "         \
    "--epochs E --lr LR --sch-gamma G --clip-w W --l1-w W --id-w W "                       \
    "--grad-mode full|per-step --recompute --dtype float32|bfloat16|float16 "              \
    "--test-images FILE...|DIR|X.npy --tests N --test-steps S "                              \
    "--cache FILE --seed K --resume --align|--no-align --dist-timeout SECONDS "              \
    "--config FILE --image-size N --head-channels N --device D --threads N] "             \
    "--out FT.pt|FT.safetensors|FT.delta"

/* Numbers given on the command line; the unset ones keep the presets' or defaults' values. */
typedef struct explicit_numbers {
    int t0, inv_steps, train_steps, epochs, images, batch, seed, tests, test_steps;
    double lr, gamma, clip_w, l1_w, id_w, eta;
} explicit_numbers;

typedef struct finetune_args {
    const char *model, *clip, *vocab, *arcface, *cache, *out, *grad_mode, *loss_form, *dtype;
    cli_list images, sources, targets, presets, test_images;
    explicit_numbers n;
    int resume, half, recompute;
    double dist_timeout;             /* NAN unless given */
    cli_model_args model_args;
    cli_compute compute;
    cli_align align;
} finetune_args;

/* ---- options ---- */

static void set_int(int given, int *field)
{
    if (given != UNSET_INT)
        *field = given;
}

static void set_double(double given, double *field)
{
    if (!isnan(given))
        *field = given;
}

static int build_options(const finetune_args *a, dc_finetune_options *o, const char *cmd)
{
    dc_finetune_options_init(o, DC_FINETUNE_OPTIONS_VERSION);
    for (int i = 0; i < a->presets.count; i++)
        if (dc_finetune_options_apply_preset(o, a->presets.items[i]) != DC_OK)
            return cli_command_usage_error(cmd, FINETUNE_USAGE, "%s", dc_last_error());
    const explicit_numbers *n = &a->n;
    set_int(n->t0, &o->t0);
    set_int(n->inv_steps, &o->inv_steps);
    set_int(n->train_steps, &o->train_steps);
    set_int(n->epochs, &o->epochs);
    set_int(n->images, &o->images);
    set_int(n->batch, &o->batch_size);
    if (n->seed != UNSET_INT) {
        if (n->seed < 0)
            return cli_command_usage_error(cmd, FINETUNE_USAGE, "--seed must be >= 0");
        o->seed = (uint64_t)n->seed;
    }
    set_double(n->lr, &o->learning_rate);
    set_double(n->gamma, &o->lr_gamma);
    set_double(n->clip_w, &o->clip_weight);
    set_double(n->l1_w, &o->l1_weight);
    set_double(n->id_w, &o->id_weight);
    set_double(n->eta, &o->eta);
    if (a->grad_mode && strcmp(a->grad_mode, "full") == 0)
        o->grad_mode = DC_GRAD_FULL;
    else if (a->grad_mode && strcmp(a->grad_mode, "per-step") == 0)
        o->grad_mode = DC_GRAD_PER_STEP;
    else if (a->grad_mode)
        return cli_command_usage_error(cmd, FINETUNE_USAGE,
                                       "--grad-mode is full or per-step, not '%s'", a->grad_mode);
    if (a->loss_form && strcmp(a->loss_form, "log") == 0)
        o->loss_form = DC_CLIP_LOSS_LOG;
    else if (a->loss_form && strcmp(a->loss_form, "direction") == 0)
        o->loss_form = DC_CLIP_LOSS_DIRECTION;
    else if (a->loss_form)
        return cli_command_usage_error(cmd, FINETUNE_USAGE,
                                       "--loss-form is log or direction, not '%s'", a->loss_form);
    if (a->sources.count != a->targets.count)
        return cli_command_usage_error(cmd, FINETUNE_USAGE,
                                       "give as many --src as --trg texts (%d and %d)",
                                       a->sources.count, a->targets.count);
    if (a->sources.count) {
        o->source_texts = a->sources.items;
        o->target_texts = a->targets.items;
        o->text_pairs = (size_t)a->sources.count;
    }
    if (o->text_pairs == 0)
        return cli_command_usage_error(cmd, FINETUNE_USAGE,
                                       "give --src and --trg, or an edit --preset");
    if (o->id_weight > 0 && !a->arcface)
        return cli_command_usage_error(cmd, FINETUNE_USAGE, "--id-w needs --arcface");
    if (a->dtype && strcmp(a->dtype, "float32") == 0)
        o->dtype = DC_FLOAT32;
    else if (a->dtype && strcmp(a->dtype, "bfloat16") == 0)
        o->dtype = DC_BFLOAT16;
    else if (a->dtype && strcmp(a->dtype, "float16") == 0)
        o->dtype = DC_FLOAT16;
    else if (a->dtype)
        return cli_command_usage_error(cmd, FINETUNE_USAGE,
                                       "--dtype is float32, bfloat16 or float16, not '%s'",
                                       a->dtype);
    if (a->recompute && o->grad_mode != DC_GRAD_FULL)
        return cli_command_usage_error(cmd, FINETUNE_USAGE,
                                       "--recompute is for --grad-mode full");
    int tests = a->n.tests == UNSET_INT ? DEFAULT_TESTS : a->n.tests;
    if (tests < 0)
        return cli_command_usage_error(cmd, FINETUNE_USAGE, "--tests must be >= 0");
    o->test_images = (size_t)tests;
    set_int(a->n.test_steps, &o->test_steps);
    o->recompute = a->recompute;
    o->resume = a->resume;
    set_double(a->dist_timeout, &o->dist_timeout);
    if (!(o->dist_timeout > 0))
        return cli_command_usage_error(cmd, FINETUNE_USAGE, "--dist-timeout must be > 0");
    return 0;
}

/* ---- training images ---- */

typedef struct image_list {
    dc_tensor *items;                /* each (1, 3, S, S) */
    char **names;
    int count, capacity;
    cli_align *align;                /* how photos are read (--align) */
    int stride, offset, seen;        /* this rank keeps images offset, offset + stride, ...
                                      * (stride 0: every image) */
} image_list;

/* Counts an image of the whole list; whether it is this rank's. */
static int image_list_wants(image_list *l)
{
    return l->stride < 2 || l->seen++ % l->stride == l->offset;
}

static void image_list_free(image_list *l)
{
    for (int i = 0; i < l->count; i++) {
        dc_tensor_free(&l->items[i]);
        free(l->names[i]);
    }
    free(l->items);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* Takes ownership of t. */
static int image_list_add(image_list *l, dc_tensor *t, const char *name)
{
    if (l->count == l->capacity) {
        int capacity = l->capacity ? 2 * l->capacity : 16;
        dc_tensor *items = realloc(l->items, (size_t)capacity * sizeof *items);
        if (items)
            l->items = items;
        char **names = realloc(l->names, (size_t)capacity * sizeof *names);
        if (names)
            l->names = names;
        if (!items || !names) {
            dc_tensor_free(t);
            return cli_usage_error("out of memory");
        }
        l->capacity = capacity;
    }
    l->names[l->count] = strdup(name);
    l->items[l->count++] = *t;
    return 0;
}

static int is_image_name(const char *name)
{
    return cli_has_extension(name, ".png") || cli_has_extension(name, ".jpg") ||
           cli_has_extension(name, ".jpeg");
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_image_file(image_list *l, const char *path, int size)
{
    if (!image_list_wants(l))
        return 0;
    dc_tensor t = {0};
    int status = cli_check_photo_size(path, size);
    if (status)
        return status;
    if (cli_read_photo(path, size, l->align, &t) != DC_OK)
        return cli_file_error(path);
    return image_list_add(l, &t, path);
}

/* An .npy array (N, 3, H, W) in [-1, 1] becomes N images of its own size (the library
 * checks that the UNet takes it). */
static int add_array(image_list *l, const char *path)
{
    dc_tensor all = {0};
    if (dc_npy_read(path, &all) != DC_OK)
        return cli_file_error(path);
    if (all.dtype != DC_FLOAT32 || all.ndim != 4 || all.shape[1] != 3 || all.shape[2] < 1 ||
        all.shape[3] < 1) {
        dc_tensor_free(&all);
        fprintf(stderr, "diffclip: %s: expected float32 images (N, 3, H, W)\n", path);
        return CLI_EXIT_FAILURE;
    }
    size_t plane = (size_t)3 * (size_t)all.shape[2] * (size_t)all.shape[3];
    int status = 0;
    for (int64_t i = 0; status == 0 && i < all.shape[0]; i++) {
        if (!image_list_wants(l))
            continue;
        dc_tensor one = {.dtype = DC_FLOAT32, .ndim = 4,
                         .shape = {1, 3, all.shape[2], all.shape[3]},
                         .data = malloc(plane * sizeof(float))};
        if (!one.data) {
            status = cli_usage_error("out of memory");
            break;
        }
        memcpy(one.data, (float *)all.data + (size_t)i * plane, plane * sizeof(float));
        char name[1200];
        snprintf(name, sizeof name, "%s[%lld]", path, (long long)i);
        status = image_list_add(l, &one, name);
    }
    dc_tensor_free(&all);
    return status;
}

/* The PNG and JPEG files of a directory, in name order. */
static int add_directory(image_list *l, const char *dir, int size)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "diffclip: %s: cannot read the directory\n", dir);
        return CLI_EXIT_FAILURE;
    }
    char **names = NULL;
    int count = 0, capacity = 0, status = 0;
    for (struct dirent *e; status == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name))
            continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            char **grown = realloc(names, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = cli_usage_error("out of memory");
                break;
            }
            names = grown;
        }
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[count] = malloc(n))) {
            status = cli_usage_error("out of memory");
            break;
        }
        snprintf(names[count++], n, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (names)
        qsort(names, (size_t)count, sizeof *names, compare_names);
    if (status == 0 && count == 0) {
        fprintf(stderr, "diffclip: %s: no PNG or JPEG file\n", dir);
        status = CLI_EXIT_FAILURE;
    }
    for (int i = 0; i < count; i++) {
        if (status == 0)
            status = add_image_file(l, names[i], size);
        free(names[i]);
    }
    free(names);
    return status;
}

/* Files, directories and arrays: `given`, then `more`. */
static int read_images(const cli_list *given, const char *const *more, int nmore, int size,
                       image_list *l)
{
    int total = given->count + nmore, status = 0;
    for (int i = 0; status == 0 && i < total; i++) {
        const char *path = i < given->count ? given->items[i] : more[i - given->count];
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            status = add_directory(l, path, size);
        else if (cli_has_extension(path, ".npy"))
            status = add_array(l, path);
        else
            status = add_image_file(l, path, size);
    }
    return status;
}

/* ---- progress ---- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A bar on a terminal; otherwise one line per trained image. Ctrl-C cancels cleanly. */
static int finetune_progress(void *user, const dc_progress *p)
{
    const dc_finetune_options *o = user;
    if (o->rank != 0)                /* one report for the group: every rank trains alike */
        return interrupted;
    if (p->version >= 2 && strcmp(p->stage, "finetune-epoch") == 0) {
        cli_progress_done();
        if (p->epoch > 0)
            fprintf(stderr, "epoch %d/%d done: mean loss %.6f (clip %.6f, l1 %.6f, id %.6f)",
                    p->epoch, p->epochs, p->epoch_loss_total, p->epoch_loss_clip,
                    p->epoch_loss_l1, p->epoch_loss_id);
        else
            fprintf(stderr, "before training");
        if (p->test_grid)
            fprintf(stderr, "; test images: CLIP direction %.4f, grid %s", p->test_direction,
                    p->test_grid);
        fputc('\n', stderr);
        return interrupted;
    }
    if (isatty(STDERR_FILENO)) {
        enum { WIDTH = 20 };
        char bar[WIDTH + 1];
        fprintf(stderr, "\repoch %d/%d image %d/%d [%s] loss %.4f lr %.3g %.2f s/image %.0f s "
                "left ", p->epoch, p->epochs, p->image, p->images,
                cli_progress_bar(bar, WIDTH, p->step, p->steps), p->loss_total,
                p->learning_rate, p->seconds_per_image, p->eta_seconds);
    } else if (p->step == p->steps) {
        fprintf(stderr, "epoch %d/%d image %d/%d: loss %.6f (clip %.6f, l1 %.6f, id %.6f) "
                "grad %.4g lr %.4g, %.2f s/image, %.0f s left\n", p->epoch, p->epochs,
                p->image, p->images, p->loss_total, p->loss_clip, p->loss_l1, p->loss_id,
                p->grad_norm, p->learning_rate, p->seconds_per_image, p->eta_seconds);
    }
    return interrupted;
}

static int inversion_progress(void *user, const dc_progress *p)
{
    cli_progress(user, p);
    return interrupted;
}

/* ---- outputs ---- */

/* `out` for one pair; with several, "-TARGET" (spaces as '_', as the published names) is put
 * before the extension. */
static char *pair_output(const char *out, const char *target, size_t pairs)
{
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(slash ? slash + 1 : out, '.');
    size_t head = pairs > 1 && dot ? (size_t)(dot - out) : strlen(out);
    size_t n = strlen(out) + strlen(target) + 2;
    char *path = malloc(n);
    if (!path)
        return NULL;
    if (pairs < 2) {
        snprintf(path, n, "%s", out);
        return path;
    }
    snprintf(path, n, "%.*s-%s%s", (int)head, out, target, out + head);
    for (char *c = path + head + 1; *c && c < path + head + 1 + strlen(target); c++)
        if (*c == ' ' || *c == '/')
            *c = '_';
    return path;
}

/* A file beside the output: FT.pt -> FT.dclat (suffix ".dclat"). */
static char *beside_output(const char *out, const char *suffix)
{
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(slash ? slash + 1 : out, '.');
    size_t head = dot ? (size_t)(dot - out) : strlen(out), n = head + strlen(suffix) + 1;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%.*s%s", (int)head, out, suffix);
    return path;
}

/* In a process group each rank has its own cache, holding its share of the images: `path`
 * with ".rankR" before its extension (FT.rank1.dclat); elsewhere `path` itself. */
static char *rank_path(const char *path, const dc_finetune_options *o)
{
    if (o->world_size < 2)
        return strdup(path);
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    size_t head = dot ? (size_t)(dot - path) : strlen(path), n = strlen(path) + 32;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s.rank%d%s", (int)head, path, o->rank, path + head);
    return out;
}

/* ---- the command ---- */

typedef struct handles {
    dc_model *model;
    dc_clip *clip;
    dc_tokenizer *tokenizer;
    dc_idnet *idnet;
    dc_latent_cache *cache, *test_cache;
    dc_finetuner *ft;
} handles;

static void handles_free(handles *h)
{
    dc_finetuner_free(h->ft);
    dc_latent_cache_free(h->test_cache);
    dc_latent_cache_free(h->cache);
    dc_idnet_free(h->idnet);
    dc_tokenizer_free(h->tokenizer);
    dc_clip_free(h->clip);
    dc_model_free(h->model);
}

static int load_networks(const finetune_args *a, handles *h)
{
    if (!(h->model = cli_load_model(a->model, &a->compute, &a->model_args)))
        return CLI_EXIT_FAILURE;
    dc_clip_options co;
    dc_clip_options_init(&co, DC_CLIP_OPTIONS_VERSION);
    co.device = a->compute.device;
    co.half = a->half;
    if (dc_clip_load(&h->clip, a->clip, &co) != DC_OK)
        return cli_file_error(a->clip);
    if (dc_tokenizer_new(&h->tokenizer, a->vocab) != DC_OK)
        return cli_file_error(a->vocab);
    if (a->arcface) {
        dc_idnet_options io;
        dc_idnet_options_init(&io, DC_IDNET_OPTIONS_VERSION);
        io.device = a->compute.device;
        if (dc_idnet_load(&h->idnet, a->arcface, &io) != DC_OK)
            return cli_file_error(a->arcface);
    }
    return 0;
}

/* Inverts every image into the cache at `path` (or finds it there); indices[i], when not
 * NULL, receives its entry. */
static int cache_images(const dc_finetune_options *o, const image_list *images,
                        const char *path, dc_model *model, dc_latent_cache **cache,
                        size_t *indices)
{
    dc_diffusion_options d;
    dc_diffusion_options_init(&d, DC_DIFFUSION_OPTIONS_VERSION);
    d.t0 = o->t0;
    d.steps = o->inv_steps;
    d.progress = inversion_progress;
    int status = 0;
    /* x_rec is regenerated with the inversion's steps, as the published precomputation. */
    if (dc_latent_cache_open(cache, path, model, &d, o->inv_steps) != DC_OK)
        status = cli_file_error(path);
    for (int i = 0; status == 0 && i < images->count; i++) {
        size_t before = dc_latent_cache_count(*cache), index;
        dc_status s = dc_latent_cache_add(*cache, &images->items[i], &index);
        cli_progress_done();
        if (indices)
            indices[i] = index;
        if (s != DC_OK)
            status = s == DC_ECANCELLED ? cli_library_error() : cli_file_error(path);
        else if (!isatty(STDERR_FILENO))
            fprintf(stderr, "image %d/%d %s: %s\n", i + 1, images->count, images->names[i],
                    dc_latent_cache_count(*cache) > before ? "inverted" : "in the cache");
    }
    return status;
}

/* The training images' cache (--cache, else FT.dclat; per rank in a process group) and, with
 * --test-images, the test images' (FT.test.dclat), their first o->test_images becoming the
 * tests. */
static int cache_all(const finetune_args *a, dc_finetune_options *o, const image_list *images,
                     const image_list *tests, handles *h, size_t *indices)
{
    char *given = a->cache ? strdup(a->cache) : beside_output(a->out, ".dclat");
    char *path = given ? rank_path(given, o) : NULL;
    free(given);
    int status = path ? cache_images(o, images, path, h->model, &h->cache, indices)
                      : cli_usage_error("out of memory");
    free(path);
    if (status || tests->count == 0)
        return status;
    char *test_path = beside_output(a->out, ".test.dclat");
    status = test_path ? cache_images(o, tests, test_path, h->model, &h->test_cache, NULL)
                       : cli_usage_error("out of memory");
    free(test_path);
    o->test_cache = h->test_cache;
    return status;
}

static int train_pairs(const finetune_args *a, const dc_finetune_options *o, handles *h)
{
    for (size_t pair = 0; pair < o->text_pairs; pair++) {
        char *path = pair_output(a->out, o->target_texts[pair], o->text_pairs);
        if (!path)
            return cli_usage_error("out of memory");
        fprintf(stderr, "fine-tuning '%s' -> '%s' into %s\n", o->source_texts[pair],
                o->target_texts[pair], path);
        /* A failure here only means the device is not CUDA: no GPU peak to report. */
        dc_cuda_memory_reset_peak(a->compute.device);
        dc_status s = dc_finetuner_train(h->ft, pair, path);
        cli_progress_done();
        int64_t peak_allocated, peak_reserved;
        if (s == DC_OK &&
            dc_cuda_memory_peak(a->compute.device, &peak_allocated, &peak_reserved) == DC_OK)
            fprintf(stderr, "peak CUDA memory: %.0f MiB allocated, %.0f MiB reserved\n",
                    peak_allocated / 1048576.0, peak_reserved / 1048576.0);
        if (s == DC_OK && o->rank == 0)
            printf("%s\n", path);
        else if (s == DC_ECANCELLED)
            fprintf(stderr, "diffclip: finetune: cancelled; the epochs saved so far are kept "
                    "(rerun with --resume to continue)\n");
        free(path);
        if (s != DC_OK)
            return s == DC_ECANCELLED ? CLI_EXIT_FAILURE : cli_library_error();
    }
    return 0;
}

static int run_finetune(int argc, char **argv)
{
    finetune_args a = {.n = {UNSET_INT, UNSET_INT, UNSET_INT, UNSET_INT, UNSET_INT,
                             UNSET_INT, UNSET_INT, UNSET_INT, UNSET_INT, NAN, NAN, NAN, NAN,
                             NAN, NAN},
                       .dist_timeout = NAN,
                       .compute = CLI_COMPUTE_DEFAULTS};
    const cli_option options[] = {
        {"model", CLI_STRING, &a.model, 0},        {"clip", CLI_STRING, &a.clip, 0},
        {"vocab", CLI_STRING, &a.vocab, 0},        {"arcface", CLI_STRING, &a.arcface, 0},
        {"images", CLI_LIST, &a.images, 0},        {"src", CLI_LIST, &a.sources, 0},
        {"trg", CLI_LIST, &a.targets, 0},          {"preset", CLI_LIST, &a.presets, 0},
        {"t0", CLI_INT, &a.n.t0, 0},               {"inv-steps", CLI_INT, &a.n.inv_steps, 0},
        {"train-steps", CLI_INT, &a.n.train_steps, 0}, {"epochs", CLI_INT, &a.n.epochs, 0},
        {"images-per-epoch", CLI_INT, &a.n.images, 0}, {"batch", CLI_INT, &a.n.batch, 0},
        {"lr", CLI_DOUBLE, &a.n.lr, 0},            {"sch-gamma", CLI_DOUBLE, &a.n.gamma, 0},
        {"clip-w", CLI_DOUBLE, &a.n.clip_w, 0},    {"l1-w", CLI_DOUBLE, &a.n.l1_w, 0},
        {"id-w", CLI_DOUBLE, &a.n.id_w, 0},        {"eta", CLI_DOUBLE, &a.n.eta, 0},
        {"grad-mode", CLI_STRING, &a.grad_mode, 0}, {"loss-form", CLI_STRING, &a.loss_form, 0},
        {"cache", CLI_STRING, &a.cache, 0},        {"seed", CLI_INT, &a.n.seed, 0},
        {"resume", CLI_FLAG, &a.resume, 0},        {"half", CLI_FLAG, &a.half, 0},
        {"dist-timeout", CLI_DOUBLE, &a.dist_timeout, 0},
        {"recompute", CLI_FLAG, &a.recompute, 0},  {"dtype", CLI_STRING, &a.dtype, 0},
        {"test-images", CLI_LIST, &a.test_images, 0}, {"tests", CLI_INT, &a.n.tests, 0},
        {"test-steps", CLI_INT, &a.n.test_steps, 0},
        CLI_MODEL_OPTIONS(&a.model_args),
        {"out", CLI_STRING, &a.out, 'o'},          CLI_COMPUTE_OPTIONS(&a.compute),
        CLI_ALIGN_OPTIONS(&a.align),
    };
    static const char *const required[] = {"model", "clip", "vocab", "out", NULL};
    const char *more[CLI_LIST_CAPACITY];
    int nmore = 0;
    int status = cli_parse(argc, argv, options, COUNT(options), more, CLI_LIST_CAPACITY, &nmore,
                           FINETUNE_USAGE);
    if (!status)
        status = cli_check_required(argv[0], FINETUNE_USAGE, options, COUNT(options), required);
    if (!status && a.images.count == 0)
        status = cli_command_usage_error(argv[0], FINETUNE_USAGE, "--images is required");
    if (!status && nmore > 0 && a.images.count == 0)
        status = cli_command_usage_error(argv[0], FINETUNE_USAGE, "unexpected argument '%s'",
                                         more[0]);
    dc_finetune_options o;
    int local_rank = -1;
    char device[32];
    if (!status)
        status = build_options(&a, &o, argv[0]);
    if (!status)
        status = cli_dist_from_env(argv[0], FINETUNE_USAGE, &o, &local_rank);
    /* One device per process: torchrun's LOCAL_RANK picks this process's GPU. */
    if (!status && local_rank >= 0 && strcmp(a.compute.device, "auto") == 0 &&
        dc_cuda_available()) {
        snprintf(device, sizeof device, "cuda:%d", local_rank);
        a.compute.device = device;
    }
    int face_preset = 0;
    for (int i = 0; i < a.presets.count; i++)
        face_preset |= cli_preset_is_face(a.presets.items[i]);
    if (!status)
        status = cli_align_resolve(argv[0], FINETUNE_USAGE, &a.align, face_preset);
    if (status || (status = cli_compute_apply(argv[0], FINETUNE_USAGE, &a.compute)))
        return status;

    struct sigaction interrupt = {.sa_handler = on_interrupt};
    sigaction(SIGINT, &interrupt, NULL);
    handles h = {0};
    image_list images = {.align = &a.align, .stride = o.world_size, .offset = o.rank};
    image_list tests = {.align = &a.align};
    size_t *indices = NULL;
    dc_model_info info;
    status = load_networks(&a, &h);
    if (!status && dc_model_get_info(h.model, &info) != DC_OK)
        status = cli_library_error();
    if (!status)
        status = read_images(&a.images, more, nmore, info.image_size, &images);
    /* In a process group rank 0 alone edits and writes the test images. */
    if (!status && o.rank == 0)
        status = read_images(&a.test_images, NULL, 0, info.image_size, &tests);
    if (!status && !(indices = calloc((size_t)images.count, sizeof *indices)))
        status = cli_usage_error("out of memory");
    if (!status)
        status = cache_all(&a, &o, &images, &tests, &h, indices);
    if (!status) {
        o.image_indices = indices;
        o.image_count = (size_t)images.count;
        o.progress = finetune_progress;
        o.progress_user = &o;
        if (dc_finetuner_new(&h.ft, h.model, h.clip, h.tokenizer, h.idnet, h.cache, &o) !=
            DC_OK)
            status = cli_library_error();
    }
    if (!status)
        status = train_pairs(&a, &o, &h);
    free(indices);
    image_list_free(&images);
    image_list_free(&tests);
    cli_align_free(&a.align);
    handles_free(&h);
    return status;
}

const cli_command cli_cmd_finetune = {
    "finetune", "fine-tune a diffusion model towards a text (DiffusionCLIP)", FINETUNE_USAGE,
    "Fine-tunes a copy of BASE so that it turns the training images, as described by --src,\n"
    "into what --trg describes (DiffusionCLIP's clip_finetune). The images (PNG/JPEG files of\n"
    "any size, centre-cropped and resized to the model's image size; a directory of them; or\n"
    "an .npy array (N, 3, H, W) in [-1, 1], taken at its own size) are first inverted to latents at t0 with the base\n"
    "model, kept in a latent cache. Each epoch then generates every image from its latent with\n"
    "the model being trained and updates it with Adam on\n"
    "  clip-w * CLIP directional loss + l1-w * L1 + id-w * identity loss.\n"
    "The weights are saved after every epoch (FT.epochE.pt, replaced by the next one) and at\n"
    "the end into --out: a torch.save state dict with the base model's key names (the\n"
    "published Python code loads it), safetensors, or with .delta the difference from BASE\n"
    "in float16 (a few times smaller; load it with the same BASE). Repeat --src/--trg for\n"
    "several edits: each starts from BASE and is saved as FT-TARGET.pt. Ctrl-C stops cleanly.\n"
    "\n"
    "options (defaults: the published README's CelebA-HQ run):\n"
    "  --model BASE          the diffusion model (celeba_hq.ckpt, afhq_dog_4m.pt, ...)\n"
    "  --clip CLIP           CLIP weights (ViT-B-16.pt)\n"
    "  --vocab V             CLIP's vocabulary, bpe_simple_vocab_16e6.txt.gz\n"
    "  --arcface A           the identity network (model_ir_se50.pth), for --id-w\n"
    "  --images ...          training images (the published runs use 50; 30+ advised)\n"
    "  --src TEXT --trg TEXT the edit, e.g. --src face --trg 'angry face'\n"
    "  --preset NAME         a dataset preset (celeba, afhq, church, bedroom, imagenet,\n"
    "                        fashion) or an edit preset (neanderthal, pixar, angry, makeup,\n"
    "                        dog_bear, fashion_ankle_boot, ...:\n"
    "                        its texts, dataset settings and t0); options given override it\n"
    "  --t0 N                the latents' timestep (500; 301, 401, 601 are common)\n"
    "  --inv-steps S         inversion steps (40)\n"
    "  --train-steps S       generation steps while training (6)\n"
    "  --epochs E            (5)\n"
    "  --images-per-epoch N  (50; all given images when fewer)\n"
    "  --batch N             images per Adam step (1)\n"
    "  --lr LR               Adam's initial learning rate (8e-6)\n"
    "  --sch-gamma G         learning-rate factor per epoch (1.3: it grows, as published)\n"
    "  --clip-w W --l1-w W --id-w W   loss weights (3, 1, 0)\n"
    "  --loss-form F         log: -log((2 - L_dir) / 2) as published (default), or direction\n"
    "  --grad-mode M         full: the gradient through every step, one Adam step per image\n"
    "                        (default); per-step: GPU-efficient, an Adam step per step\n"
    "  --eta E               DDIM noise while training (0)\n"
    "  --recompute           full mode: recompute each UNet call's activations in the\n"
    "                        backward pass (the same gradient in about the per-step mode's\n"
    "                        memory, for one more forward pass per step)\n"
    "  --dtype D             float32 (default), bfloat16 (CUDA, or a CPU with AVX512-BF16)\n"
    "                        or float16 (CUDA, loss-scaled): the UNet's compute dtype while\n"
    "                        training; the weights and Adam's state stay float32\n"
    "  --test-images ...     images edited before training and after every epoch into\n"
    "                        FT.epochE.test.png (original | reconstruction | edit per row)\n"
    "                        (default: the first training images)\n"
    "  --tests N             how many test images (4; 0: no test grids)\n"
    "  --test-steps S        their generation steps (default: --inv-steps)\n"
    "  --cache FILE          the latent cache (default: FT.dclat beside --out)\n"
    "  --seed K              (1234)\n"
    "  --resume              continue from the epoch file a stopped run left\n"
    "  --half                CLIP in float16 (CUDA only)\n"
    "  --dist-timeout S      seconds a rank of a process group waits for another (300)\n"
    CLI_MODEL_HELP
    CLI_ALIGN_HELP
    CLI_COMPUTE_HELP
    "\n"
    "On several processes (torchrun, srun, mpirun; docs/scaling.md): with WORLD_SIZE and RANK\n"
    "(or Slurm's SLURM_NTASKS and SLURM_PROCID), MASTER_ADDR and MASTER_PORT in the\n"
    "environment, the processes join a Gloo process group; rank r inverts and trains images\n"
    "r, r + WORLD_SIZE, ... (its own cache, FT.rankR.dclat), the gradients are averaged before\n"
    "every Adam step (WORLD_SIZE ranks with --batch B train as one with --batch WORLD_SIZE*B)\n"
    "and rank 0 writes the weights and test grids. LOCAL_RANK picks the GPU under --device\n"
    "auto.\n"
    "\n"
    "example:\n"
    "  diffclip finetune --model celeba_hq.ckpt --clip ViT-B-16.pt \\\n"
    "      --vocab bpe_simple_vocab_16e6.txt.gz --images faces/ --preset neanderthal \\\n"
    "      --out neanderthal.delta",
    run_finetune,
};
