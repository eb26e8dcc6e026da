/* The editing commands over a mix of a base model and fine-tuned ones: edit, transition,
 * translate (REFERENCE §3.5, §3.6). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "cli.h"
#include "cluster.h"
#include "inputs.h"
#include "mix.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef enum edit_mode { MODE_EDIT, MODE_TRANSITION, MODE_TRANSLATE } edit_mode;

typedef struct edit_args {
    edit_mode mode;
    const char *usage;
    const char *model_path, *out, *schedule, *ramp, *cache_path;
    cli_list finetuned, images;
    double ratio;                    /* NAN unless --ratio */
    int t0, inv_steps, gen_steps, seed, repeats, count, grid;
    double eta;
    cli_model_args model_args;
    cli_compute compute;
    cli_mix mix;
    int to_directory;                /* -o names a directory: one file per input */
    const char *preset;              /* the models' dataset (or edit) preset, for --align */
    cli_align align;
    const char *shard_arg;
    cli_shard shard;
} edit_args;

/* The constant weights of the fine-tuned models: FT:W, --ratio R (one model), or an equal
 * share of what the given ones leave; the base model takes the rest (cli_mix_complete). */
static int constant_weights(const char *command, edit_args *a)
{
    size_t k = (size_t)a->finetuned.count, unweighted = 0;
    double given = 0;
    char path[4096], why[256];
    cli_mix *m = &a->mix;
    int has_ratio = !isnan(a->ratio);
    for (size_t i = 0; i < k; i++) {
        int has;
        if (cli_split_weight(a->finetuned.items[i], path, sizeof path, &m->weights[i], &has))
            return cli_command_usage_error(command, a->usage, "--finetuned: path too long");
        if (has && has_ratio)
            return cli_command_usage_error(command, a->usage, "--ratio and a weight in "
                                           "--finetuned %s exclude each other",
                                           a->finetuned.items[i]);
        if (has) {
            given += m->weights[i];
        } else {
            m->weights[i] = NAN;
            unweighted++;
        }
    }
    if (has_ratio && k != 1)
        return cli_command_usage_error(command, a->usage, "--ratio is the weight of one "
                                       "--finetuned model; give several as FT:W");
    for (size_t i = 0; i < k; i++)
        if (isnan(m->weights[i]))
            m->weights[i] = has_ratio ? a->ratio : (1 - given) / (double)unweighted;
    m->kind = CLI_MIX_CONSTANT;
    m->pieces = 1;
    m->count = k;
    m->thresholds[0] = 0;
    if (cli_mix_complete(m, k + 1, why, sizeof why))
        return cli_command_usage_error(command, a->usage, "%s", why);
    return 0;
}

/* The file name part of `path` without its extension. */
static void stem_of(const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), base);
}

static int is_directory(const char *path)
{
    struct stat st;
    size_t n = strlen(path);
    return (n > 0 && path[n - 1] == '/') || (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

/* --t0, --inv-steps and --gen-steps not given: the preset's (its dataset's t0, inversion and
 * test steps; an edit preset's own t0), else 500, 40 and 40. */
#define UNSET INT_MIN
static void apply_preset_numbers(edit_args *a)
{
    const dc_edit_preset *edit = a->preset ? dc_edit_preset_find(a->preset) : NULL;
    const dc_dataset_preset *dataset = cli_preset_dataset(a->preset);
    if (a->t0 == UNSET)
        a->t0 = edit && edit->t0 ? edit->t0 : dataset ? dataset->t0 : 500;
    if (a->inv_steps == UNSET)
        a->inv_steps = dataset ? dataset->inv_steps : 40;
    if (a->gen_steps == UNSET)
        a->gen_steps = dataset ? dataset->test_steps : 40;
}

/* Several inputs (or a directory -o) write OUT/<stem>.png: stems must differ. */
static int check_outputs(const char *command, edit_args *a)
{
    a->to_directory = a->images.count > 1 || is_directory(a->out);
    for (int i = 0; a->to_directory && i < a->images.count; i++)
        for (int j = 0; j < i; j++) {
            char si[1024], sj[1024];
            stem_of(a->images.items[i], si, sizeof si);
            stem_of(a->images.items[j], sj, sizeof sj);
            if (strcmp(si, sj) == 0)
                return cli_command_usage_error(command, a->usage, "two inputs would both "
                                               "write %s/%s.png", a->out, si);
        }
    if (a->to_directory && mkdir(a->out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "diffclip: %s: cannot create the directory: %s\n", a->out,
                strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

static int parse_edit(int argc, char **argv, edit_args *a)
{
    const char *command = argv[0];
    const char *positional[CLI_LIST_CAPACITY];
    int npos = 0;
    const cli_option options[] = {
        {"model", CLI_STRING, &a->model_path, 0},
        {"finetuned", CLI_LIST, &a->finetuned, 0},
        {"image", CLI_LIST, &a->images, 0},
        {"out", CLI_STRING, &a->out, 'o'},
        {"ratio", CLI_DOUBLE, &a->ratio, 0},
        {"schedule", CLI_STRING, &a->schedule, 0},
        {"ramp", CLI_STRING, &a->ramp, 0},
        {"t0", CLI_INT, &a->t0, 0},
        {"inv-steps", CLI_INT, &a->inv_steps, 0},
        {"gen-steps", CLI_INT, &a->gen_steps, 0},
        {"eta", CLI_DOUBLE, &a->eta, 0},
        {"seed", CLI_INT, &a->seed, 0},
        CLI_MODEL_OPTIONS(&a->model_args),
        {"preset", CLI_STRING, &a->preset, 0},
        {"shard", CLI_STRING, &a->shard_arg, 0},
        CLI_ALIGN_OPTIONS(&a->align),
        CLI_COMPUTE_OPTIONS(&a->compute),
        /* by mode: */
        {a->mode == MODE_TRANSITION ? "count" : "repeats", CLI_INT,
         a->mode == MODE_TRANSITION ? &a->count : &a->repeats, 0},
        {"cache", CLI_STRING, &a->cache_path, 0},
        {"grid", CLI_FLAG, &a->grid, 0},
    };
    /* edit: everything but --repeats; transition: --count and --cache; translate: --repeats
     * and --grid. */
    cli_option chosen[COUNT(options)];
    size_t n = 0;
    for (size_t i = 0; i < COUNT(options); i++) {
        const char *name = options[i].name;
        int wanted = (strcmp(name, "repeats") != 0 || a->mode == MODE_TRANSLATE) &&
                     (strcmp(name, "count") != 0 || a->mode == MODE_TRANSITION) &&
                     (strcmp(name, "cache") != 0 || a->mode != MODE_TRANSLATE) &&
                     (strcmp(name, "grid") != 0 || a->mode != MODE_TRANSITION);
        if (wanted)
            chosen[n++] = options[i];
    }
    static const char *const required[] = {"model", "out", NULL};
    int status = cli_parse(argc, argv, chosen, n, positional, CLI_LIST_CAPACITY, &npos, a->usage);
    if (!status)
        status = cli_check_required(command, a->usage, chosen, n, required);
    if (status)
        return status;
    for (int i = 0; i < npos; i++) {
        if (a->images.count >= CLI_LIST_CAPACITY)
            return cli_command_usage_error(command, a->usage, "too many images");
        a->images.items[a->images.count++] = positional[i];
    }
    if (a->finetuned.count == 0)
        return cli_command_usage_error(command, a->usage, "--finetuned is required");
    if (a->finetuned.count + 1 > CLI_MAX_MODELS)
        return cli_command_usage_error(command, a->usage, "at most %d --finetuned models",
                                       CLI_MAX_MODELS - 1);
    if (a->images.count == 0)
        return cli_command_usage_error(command, a->usage, "--image is required");
    if (a->seed < 0)
        return cli_command_usage_error(command, a->usage, "--seed must be >= 0");
    if (a->preset && !dc_dataset_preset_find(a->preset) && !dc_edit_preset_find(a->preset))
        return cli_command_usage_error(command, a->usage, "unknown --preset '%s'", a->preset);
    apply_preset_numbers(a);
    /* as published: edit_one_image aligns CelebA-HQ/FFHQ photos, unseen2unseen never */
    status = cli_align_resolve(command, a->usage, &a->align,
                               a->mode != MODE_TRANSLATE && cli_preset_is_face(a->preset));
    if (status)
        return status;
    if (a->mode == MODE_TRANSITION && a->count < 2)
        return cli_command_usage_error(command, a->usage, "--count must be >= 2 (got %d)",
                                       a->count);
    if (a->mode == MODE_TRANSLATE && a->repeats < 1)
        return cli_command_usage_error(command, a->usage, "--repeats must be >= 1 (got %d)",
                                       a->repeats);
    if ((a->schedule || a->ramp) && !isnan(a->ratio))
        return cli_command_usage_error(command, a->usage, "--ratio and --%s exclude each other",
                                       a->schedule ? "schedule" : "ramp");
    status = cli_mix_parse(command, a->usage, NULL, a->schedule, a->ramp,
                           (size_t)a->finetuned.count + 1, 1, &a->mix);
    if (!status && a->mix.kind == CLI_MIX_NONE)
        status = constant_weights(command, a);
    if (!status)
        status = cli_shard_resolve(command, a->usage, a->shard_arg, &a->shard);
    if (!status)
        status = check_outputs(command, a);
    if (!status)
        status = cli_compute_apply(command, a->usage, &a->compute);
    return status;
}

/* A shard skips the outputs a previous run of it wrote (every write is atomic: a file there
 * is whole). */
static int already_written(const edit_args *a, const char *path)
{
    struct stat st;
    return a->shard.active && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The base model, then each fine-tuned one (its architecture is the base's). */
static int load_models(const edit_args *a, dc_model **models, int *loaded)
{
    *loaded = 0;
    if (!(models[0] = cli_load_model(a->model_path, &a->compute, &a->model_args)))
        return CLI_EXIT_FAILURE;
    for (*loaded = 1; *loaded <= a->finetuned.count; ++*loaded) {
        char path[4096];
        double weight;
        int has_weight;
        cli_split_weight(a->finetuned.items[*loaded - 1], path, sizeof path, &weight,
                         &has_weight);
        models[*loaded] = cli_load_finetuned(path, models[0]);
        if (!models[*loaded])
            return CLI_EXIT_FAILURE;
    }
    return 0;
}

/* Items first .. first + count - 1 of a batch, as a view into it (not to be freed). */
static dc_tensor batch_items(const dc_tensor *t, int64_t first, int64_t count)
{
    dc_tensor items = *t;
    int64_t per_item = dc_tensor_numel(t) / t->shape[0];
    items.shape[0] = count;
    items.data = (char *)t->data + (size_t)(first * per_item) * dc_dtype_size(t->dtype);
    return items;
}

/* How many files an input of `items` images makes: one per image in a directory, else -o. */
static int64_t output_files(const edit_args *a, int64_t items)
{
    return a->to_directory ? items : 1;
}

/* Where output file `file` of an input of `items` images goes: -o itself, OUT/<stem>.png, or
 * OUT/<stem>_<file>.png for each image of an (N, 3, H, W) array. */
static void output_path(const edit_args *a, const char *stem, int64_t file, int64_t items,
                        char *buf, size_t size)
{
    if (!a->to_directory)
        snprintf(buf, size, "%s", a->out);
    else if (items == 1)
        snprintf(buf, size, "%s/%s.png", a->out, stem);
    else
        snprintf(buf, size, "%s/%s_%lld.png", a->out, stem, (long long)file);
}

/* The output of one file's images: the result, or with --grid the input beside it (and the
 * translation's projection between them). */
static dc_status write_output(const edit_args *a, const dc_tensor *x0,
                              const dc_tensor *projected, const dc_tensor *result,
                              const char *path)
{
    if (!a->grid)
        return cli_write_image_or_array(path, result);
    if (a->mode == MODE_TRANSLATE)
        return cli_write_strip(path, (const dc_tensor *const[]){x0, projected, result}, 3);
    return cli_write_strip(path, (const dc_tensor *const[]){x0, result}, 2);
}

/* Runs the mode on the images x0 and writes their outputs: one file for the batch, or in a
 * directory one per image. A transition's result holds `count` frames per image. */
static int edit_one(const edit_args *a, dc_sampler *sampler, const dc_edit_options *o,
                    const dc_tensor *x0, const char *stem)
{
    dc_tensor result = {0}, projected = {0};
    dc_status s;
    if (a->mode == MODE_TRANSITION)
        s = dc_sampler_transition(sampler, x0, a->count, o, &result);
    else if (a->mode == MODE_TRANSLATE)
        s = dc_sampler_translate(sampler, x0, o, &result, a->grid ? &projected : NULL);
    else if (a->grid)                /* gamma 0 and 1: the reconstruction and the edit */
        s = dc_sampler_transition(sampler, x0, 2, o, &result);
    else
        s = dc_sampler_edit(sampler, x0, o, &result);
    cli_progress_done();
    /* The result keeps the input's order; a transition's frames of image n follow each
     * other. */
    int64_t items = x0->shape[0], files = output_files(a, items), per_file = items / files;
    int64_t frames = s == DC_OK ? result.shape[0] / items : 0;
    for (int64_t f = 0; f < files && s == DC_OK; f++) {
        char path[4096];
        output_path(a, stem, f, items, path, sizeof path);
        dc_tensor in = batch_items(x0, f * per_file, per_file);
        dc_tensor out = batch_items(&result, f * per_file * frames, per_file * frames);
        dc_tensor proj = projected.data ? batch_items(&projected, f * per_file, per_file)
                                        : projected;
        s = write_output(a, &in, &proj, &out, path);
    }
    dc_tensor_free(&result), dc_tensor_free(&projected);
    return s == DC_OK ? 0 : cli_library_error();
}

/* A shard skips an input whose outputs a previous run of it wrote. */
static int outputs_written(const edit_args *a, const char *stem, int64_t items)
{
    for (int64_t f = 0; f < output_files(a, items); f++) {
        char path[4096];
        output_path(a, stem, f, items, path, sizeof path);
        if (!already_written(a, path))
            return 0;
    }
    fprintf(stderr, "%s: %s already written, skipped\n", a->out, stem);
    return 1;
}

static int run_edit_mode(int argc, char **argv, edit_mode mode, const char *usage)
{
    edit_args a = {.mode = mode, .usage = usage, .ratio = NAN, .t0 = UNSET, .inv_steps = UNSET,
                   .gen_steps = UNSET, .seed = 1234, .repeats = 10, .count = 5,
                   .compute = CLI_COMPUTE_DEFAULTS};
    int status = parse_edit(argc, argv, &a);
    if (status)
        return status;
    dc_model *models[CLI_MAX_MODELS] = {NULL};
    int loaded = 0;
    dc_sampler *sampler = NULL;
    dc_latent_cache *cache = NULL;
    dc_edit_options o;
    dc_edit_options_init(&o, DC_EDIT_OPTIONS_VERSION);
    o.t0 = a.t0;
    o.inv_steps = a.inv_steps;
    o.gen_steps = a.gen_steps;
    o.eta = a.eta;
    o.seed = (uint64_t)a.seed;
    o.repeats = a.repeats;
    o.progress = cli_progress;
    status = load_models(&a, models, &loaded);
    if (!status && dc_sampler_new(&sampler, models, (size_t)loaded) != DC_OK)
        status = cli_library_error();
    if (!status)
        status = cli_mix_apply(argv[0], usage, sampler, &a.mix);
    if (!status && a.cache_path) {
        dc_diffusion_options inversion;
        dc_diffusion_options_init(&inversion, DC_DIFFUSION_OPTIONS_VERSION);
        inversion.t0 = a.t0;
        inversion.steps = a.inv_steps;
        inversion.progress = cli_progress;
        if (dc_latent_cache_open(&cache, a.cache_path, models[0], &inversion, a.gen_steps) !=
            DC_OK)
            status = cli_file_error(a.cache_path);
        o.cache = cache;
    }
    dc_model_info info;
    if (!status && dc_model_get_info(models[0], &info) != DC_OK)
        status = cli_library_error();
    for (int i = 0; i < a.images.count && !status; i++) {
        char stem[1024];
        if (!cli_shard_has(&a.shard, (size_t)i))
            continue;
        stem_of(a.images.items[i], stem, sizeof stem);
        dc_tensor x0 = {0};
        status = cli_read_images(a.images.items[i], info.image_size, NULL, &a.align, &x0);
        if (!status && !outputs_written(&a, stem, x0.shape[0]))
            status = edit_one(&a, sampler, &o, &x0, stem);
        dc_tensor_free(&x0);
    }
    cli_align_free(&a.align);
    dc_latent_cache_free(cache);
    dc_sampler_free(sampler);
    for (int i = 0; i < loaded; i++)
        dc_model_free(models[i]);
    return status;
}

#define MIX_HELP                                                                           \
    "  --model BASE        the original model (DDPM or ADM checkpoint); required\n"         \
    "  --finetuned FT[:W]  a fine-tuned model of BASE (a .pt/.pth/.safetensors state dict\n" \
    "                      with BASE's keys, or a .delta file made for BASE), W its weight;\n" \
    "                      repeat for several attributes.\n"                               \
    "                      Without W one model takes --ratio (default 1) and several\n"    \
    "                      share equally what the given weights leave; BASE takes the rest\n" \
    "  --ratio R           the weight of the one fine-tuned model (the published\n"        \
    "                      model_ratio; BASE takes 1 - R)\n"                                \
    "  --schedule S        weights by timestep threshold for the fine-tuned models (BASE\n" \
    "                      takes the rest) or for BASE then them: \"300:1,0;0:0.3,0.7\" or\n" \
    "                      the published hybrid config \"{300: [1, 0], 0: [0.3, 0.7]}\"\n"   \
    "  --ramp R            weights linear in t between two points, \"1000:1,0;0:0,1\"\n"   \
    "  --image IN          a PNG or JPEG image (any size: centre-cropped and resized to the\n" \
    "                      model's image size) or an .npy array (taken at its own size);\n" \
    "                      repeatable, also as\n"                                          \
    "                      positional arguments. With several, -o is a directory\n"        \
    "                      (OUT/<name>.png per input; OUT/<name>_<i>.png per image of an\n" \
    "                      (N, 3, H, W) .npy)\n"                                           \
    "  --t0 N              the latent's timestep (default: the --preset's, else 500; 301,\n" \
    "                      401, 601 are common)\n"                                        \
    "  --inv-steps S       DDIM inversion steps with BASE (default: the --preset's, else 40)\n" \
    "  --gen-steps S       DDIM generation steps with the mix (default: the --preset's test\n" \
    "                      steps, else 40)\n"                                            \
    "  --eta E             generation noise (default 0)\n"                                 \
    "  --seed K            seed of the random draws (default 1234)\n"                      \
    CLI_MODEL_HELP                                                                         \
    "  --preset NAME       the dataset (celeba, afhq, fashion, ...) or edit preset (pixar,\n" \
    "                      ...) the models are of: its t0 and steps are the defaults;\n"  \
    "                      celeba turns --align on (not for translate, which as\n"        \
    "                      published never aligns)\n"                                     \
    CLI_SHARD_HELP                                                                         \
    CLI_ALIGN_HELP                                                                         \
    CLI_COMPUTE_HELP

#define EDIT_USAGE "edit --model BASE --finetuned FT[:W]... [--ratio R | --schedule S | " \
                   "--ramp R] --image IN... [--t0 N] [--inv-steps S] [--gen-steps S] "     \
                   "[--cache FILE] [--grid] [--preset NAME] [--align|--no-align] [--shard K/N] " \
                   "-o OUT.png|OUTDIR " CLI_MODEL_USAGE " [--device D] [--threads N]"

static int run_edit(int argc, char **argv)
{
    return run_edit_mode(argc, argv, MODE_EDIT, EDIT_USAGE);
}

const cli_command cli_cmd_edit = {
    "edit", "edit images with fine-tuned models (one attribute or several mixed)", EDIT_USAGE,
    "Inverts each image with BASE (deterministic DDIM to t0), then generates it with the\n"
    "noise of the fine-tuned models mixed with BASE's by their weights.\n"
    MIX_HELP
    "  --cache FILE        keep inversions in a latent cache file (reused when the model and\n"
    "                      parameters match)\n"
    "  --grid              write original | reconstruction | edit side by side\n"
    "examples: diffclip edit --model celeba_hq.ckpt --finetuned pixar.pth --image face.jpg \\\n"
    "              --preset celeba -o pixar.png\n"
    "          diffclip edit --model celeba_hq.ckpt --finetuned pixar.pth:0.5 \\\n"
    "              --finetuned makeup.pth:0.5 --image face.jpg --grid -o both.png",
    run_edit,
};

#define TRANSITION_USAGE "transition --model BASE --finetuned FT[:W]... --image IN --count K " \
                         "[--t0 N] [--inv-steps S] [--gen-steps S] [--cache FILE] "           \
                         "[--preset NAME] [--align|--no-align] [--shard K/N] "               \
                         "-o STRIP.png " CLI_MODEL_USAGE " [--device D] [--threads N]"

static int run_transition(int argc, char **argv)
{
    return run_edit_mode(argc, argv, MODE_TRANSITION, TRANSITION_USAGE);
}

const cli_command cli_cmd_transition = {
    "transition", "a continuous transition from the original to the edit, as a strip",
    TRANSITION_USAGE,
    "Inverts the image with BASE once, then generates it K times with the weights\n"
    "(1 - g) BASE + g (the mix) for g = 0, 1/(K-1), ..., 1: g 0 is the reconstruction, g 1\n"
    "the edit (with one fine-tuned model, g is the published model_ratio). Writes the K\n"
    "images side by side (K times the model's width), or an .npy (K, 3, H, W).\n"
    "  --count K           images in the strip (default 5, at least 2)\n"
    MIX_HELP
    "  --cache FILE        keep inversions in a latent cache file\n"
    "example: diffclip transition --model celeba_hq.ckpt --finetuned pixar.pth \\\n"
    "             --image face.jpg --count 6 -o strip.png",
    run_transition,
};

#define TRANSLATE_USAGE "translate --model BASE --finetuned FT[:W]... --image IN [--t0 N] "  \
                        "[--repeats R] [--inv-steps S] [--gen-steps S] [--seed K] [--grid] " \
                        "[--align] [--shard K/N] -o OUT.png " CLI_MODEL_USAGE " [--device D] [--threads N]"

static int run_translate(int argc, char **argv)
{
    return run_edit_mode(argc, argv, MODE_TRANSLATE, TRANSLATE_USAGE);
}

const cli_command cli_cmd_translate = {
    "translate", "unseen-domain translation and stroke-to-image (unseen2unseen)",
    TRANSLATE_USAGE,
    "Projects an image from outside BASE's domain (a photo of another domain, a stroke\n"
    "painting) into it: R times, noise it to t0 and denoise it with BASE in 6 DDIM steps,\n"
    "each time from the previous result; then inverts the projection with BASE and\n"
    "generates it with the mix, as edit does.\n"
    "  --repeats R         projections (default 10; the README asks for more than 8)\n"
    MIX_HELP
    "  --grid              write original | projection | translation side by side\n"
    "example: diffclip translate --model celeba_hq.ckpt --finetuned pixar.pth \\\n"
    "             --image stroke.png --t0 500 -o pixar.png",
    run_translate,
};
