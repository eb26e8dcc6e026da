/* The diffusion commands: eps, invert, generate (one model or a mix), noise, reconstruct. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "inputs.h"
#include "mix.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Reads an .npy array as it is, or an image file resized to the model's image size. */
static int read_images(const char *path, dc_model *model, dc_tensor *out)
{
    int size = cli_model_image_size(model);
    int status = cli_check_photo_size(path, size);
    if (status)
        return status;
    if (cli_read_image_or_array(path, size, out) != DC_OK)
        return cli_file_error(path);
    return CLI_EXIT_OK;
}

static int write_result(const char *path, const dc_tensor *t)
{
    return cli_write_image_or_array(path, t) == DC_OK ? CLI_EXIT_OK : cli_library_error();
}

/* ---- eps ---- */

#define EPS_USAGE "eps --model M --x X.npy --t T.npy --out OUT.npy " CLI_MODEL_USAGE \
                  " [--device D] [--threads N]"

static int run_eps(int argc, char **argv)
{
    const char *model_path = NULL, *x_path = NULL, *t_path = NULL, *out = NULL;
    cli_model_args model_args = CLI_MODEL_DEFAULTS;
    cli_compute compute = CLI_COMPUTE_DEFAULTS;
    const cli_option options[] = {
        {"model", CLI_STRING, &model_path, 0}, {"x", CLI_STRING, &x_path, 0},
        {"t", CLI_STRING, &t_path, 0},         {"out", CLI_STRING, &out, 'o'},
        CLI_MODEL_OPTIONS(&model_args),        CLI_COMPUTE_OPTIONS(&compute),
    };
    static const char *const required[] = {"model", "x", "t", "out", NULL};
    int status = cli_parse(argc, argv, options, COUNT(options), NULL, 0, NULL, EPS_USAGE);
    if (!status)
        status = cli_check_required(argv[0], EPS_USAGE, options, COUNT(options), required);
    if (status || (status = cli_compute_apply(argv[0], EPS_USAGE, &compute)))
        return status;
    dc_model *model = cli_load_model(model_path, &compute, &model_args);
    if (!model)
        return CLI_EXIT_FAILURE;
    dc_tensor x = {0}, t = {0}, eps = {0};
    if (dc_npy_read(x_path, &x) != DC_OK || dc_npy_read(t_path, &t) != DC_OK ||
        dc_model_eps(model, &x, &t, &eps) != DC_OK)
        status = cli_library_error();
    else
        status = write_result(out, &eps);
    dc_tensor_free(&x), dc_tensor_free(&t), dc_tensor_free(&eps);
    dc_model_free(model);
    return status;
}

const cli_command cli_cmd_eps = {
    "eps", "the raw noise prediction of a diffusion model", EPS_USAGE,
    "Writes model(x, t) with every output channel (6 for learned-sigma models: eps, then the\n"
    "variance output). X.npy is float32 (N, 3, H, W) in [-1, 1]; T.npy float32 (N).\n"
    CLI_MODEL_HELP
    CLI_COMPUTE_HELP
    "example: diffclip eps --model celeba_hq.ckpt --x x.npy --t t.npy --out eps.npy",
    run_eps,
};

/* ---- invert and generate ---- */

typedef struct sampling_args {
    cli_list models;
    const char *input, *out, *gamma, *schedule, *ramp;
    int t0, steps, seed, ddpm;
    double eta;
    cli_model_args model_args;
    cli_compute compute;
    cli_mix mix;
} sampling_args;

/* The options of invert (one model) and generate (one model, or several with weights). */
static int parse_sampling(int argc, char **argv, const char *usage, int generating,
                          sampling_args *a)
{
    const cli_option options[] = {
        {"model", CLI_LIST, &a->models, 0},
        {generating ? "latent" : "x", CLI_STRING, &a->input, 0},
        {"out", CLI_STRING, &a->out, 'o'},
        {"t0", CLI_INT, &a->t0, 0},
        {"steps", CLI_INT, &a->steps, 0},
        CLI_MODEL_OPTIONS(&a->model_args),
        CLI_COMPUTE_OPTIONS(&a->compute),
        {"eta", CLI_DOUBLE, &a->eta, 0},
        {"seed", CLI_INT, &a->seed, 0},
        {"ddpm", CLI_FLAG, &a->ddpm, 0},
        {"gamma", CLI_STRING, &a->gamma, 0},
        {"schedule", CLI_STRING, &a->schedule, 0},
        {"ramp", CLI_STRING, &a->ramp, 0},
    };
    size_t count = generating ? COUNT(options) : COUNT(options) - 6;
    const char *const required[] = {generating ? "latent" : "x", "out", NULL};
    int status = cli_parse(argc, argv, options, count, NULL, 0, NULL, usage);
    if (!status)
        status = cli_check_required(argv[0], usage, options, count, required);
    if (!status && a->models.count == 0)
        status = cli_command_usage_error(argv[0], usage, "--model is required");
    if (!status && !generating && a->models.count > 1)
        status = cli_command_usage_error(argv[0], usage, "inversion takes one --model");
    if (!status && a->seed < 0)
        status = cli_command_usage_error(argv[0], usage, "--seed must be >= 0");
    if (!status)
        status = cli_mix_parse(argv[0], usage, a->gamma, a->schedule, a->ramp,
                               (size_t)a->models.count, 0, &a->mix);
    if (!status && a->models.count > 1 && a->mix.kind == CLI_MIX_NONE)
        status = cli_command_usage_error(argv[0], usage, "%d models need --gamma, --schedule "
                                         "or --ramp", a->models.count);
    if (!status)
        status = cli_compute_apply(argv[0], usage, &a->compute);
    return status;
}

static void sampling_options(const sampling_args *a, dc_diffusion_options *o)
{
    dc_diffusion_options_init(o, DC_DIFFUSION_OPTIONS_VERSION);
    o->t0 = a->t0;
    o->steps = a->ddpm ? 0 : a->steps;
    o->sampling = a->ddpm ? DC_SAMPLING_DDPM : DC_SAMPLING_DDIM;
    o->eta = a->eta;
    o->seed = (uint64_t)a->seed;
    o->progress = cli_progress;
}

#define INVERT_USAGE "invert --model M --x X.npy|IMAGE [--t0 N] [--steps S] --out LAT.npy " \
                     CLI_MODEL_USAGE " [--device D] [--threads N]"

static int run_invert(int argc, char **argv)
{
    sampling_args a = {.t0 = 500, .steps = 40, .seed = 1234, .compute = CLI_COMPUTE_DEFAULTS};
    int status = parse_sampling(argc, argv, INVERT_USAGE, 0, &a);
    if (status)
        return status;
    dc_model *model = cli_load_model(a.models.items[0], &a.compute, &a.model_args);
    if (!model)
        return CLI_EXIT_FAILURE;
    dc_diffusion_options o;
    sampling_options(&a, &o);
    dc_tensor in = {0}, result = {0};
    status = read_images(a.input, model, &in);
    if (!status) {
        dc_status s = dc_invert(model, &in, &o, &result);
        cli_progress_done();
        status = s == DC_OK ? write_result(a.out, &result) : cli_library_error();
    }
    dc_tensor_free(&in), dc_tensor_free(&result);
    dc_model_free(model);
    return status;
}

const cli_command cli_cmd_invert = {
    "invert", "deterministic DDIM inversion of images to a latent", INVERT_USAGE,
    "Inverts X (an .npy array (N, 3, H, W) in [-1, 1], H and W any multiple the UNet takes,\n"
    "or a PNG/JPEG image, centre-cropped and resized to the model's image size) to the\n"
    "latent at t0 with S DDIM steps (S - 1 model calls, the model at the smaller timestep of\n"
    "each pair).\n"
    "  --t0 N              the latent's timestep (default 500; 301, 401, 601 are common)\n"
    "  --steps S           inversion steps (default 40)\n"
    CLI_MODEL_HELP
    CLI_COMPUTE_HELP
    "example: diffclip invert --model celeba_hq.ckpt --x face.png --t0 500 --out lat.npy",
    run_invert,
};

#define GENERATE_USAGE "generate --model M [--model M2 ... (--gamma G,G2,... | --schedule S | " \
                       "--ramp R)] --latent LAT.npy [--t0 N] [--steps S] [--eta E] [--seed K] " \
                       "[--ddpm] --out OUT.npy|OUT.png " CLI_MODEL_USAGE " [--device D] " \
                       "[--threads N]"

static int run_generate(int argc, char **argv)
{
    sampling_args a = {.t0 = 500, .steps = 40, .seed = 1234, .compute = CLI_COMPUTE_DEFAULTS};
    int status = parse_sampling(argc, argv, GENERATE_USAGE, 1, &a);
    if (status)
        return status;
    dc_model *models[CLI_LIST_CAPACITY] = {NULL};
    dc_sampler *sampler = NULL;
    for (int i = 0; i < a.models.count && !status; i++)
        if (!(models[i] = cli_load_model(a.models.items[i], &a.compute, &a.model_args)))
            status = CLI_EXIT_FAILURE;
    if (!status && dc_sampler_new(&sampler, models, (size_t)a.models.count) != DC_OK)
        status = cli_library_error();
    if (!status && a.mix.kind != CLI_MIX_NONE)
        status = cli_mix_apply(argv[0], GENERATE_USAGE, sampler, &a.mix);
    dc_tensor in = {0}, result = {0};
    if (!status && dc_npy_read(a.input, &in) != DC_OK)
        status = cli_file_error(a.input);
    if (!status) {
        dc_diffusion_options o;
        sampling_options(&a, &o);
        dc_status s = dc_sampler_generate(sampler, &in, &o, &result);
        cli_progress_done();
        status = s == DC_OK ? write_result(a.out, &result) : cli_library_error();
    }
    dc_tensor_free(&in), dc_tensor_free(&result);
    dc_sampler_free(sampler);
    for (int i = 0; i < a.models.count; i++)
        dc_model_free(models[i]);
    return status;
}

const cli_command cli_cmd_generate = {
    "generate", "generate images from a latent (reverse DDIM or DDPM), one model or a mix",
    GENERATE_USAGE,
    "Generates from the latent at t0 with S DDIM steps (S model calls, the last to t = -1),\n"
    "or with --ddpm every timestep of Markovian sampling. An image output holds the N\n"
    "images side by side. With several --model (same family, resolution and output layout)\n"
    "the noise is the mix sum_i gamma_i(t) eps_i(x, t), the weights summing to 1 at every t;\n"
    "a model of weight 0 at a step is not evaluated.\n"
    "  --gamma G,G2,...    constant weights, one per --model in order\n"
    "  --schedule S        weights by timestep threshold, the highest threshold reached\n"
    "                      applies: \"300:1,0;0:0.3,0.7\" or the published hybrid config\n"
    "                      \"{300: [1, 0], 0: [0.3, 0.7]}\" (thresholds in any order, one 0)\n"
    "  --ramp R            weights linear in t between two points: \"1000:1,0;0:0.3,0.7\"\n"
    "  --t0 N              the latent's timestep (default 500)\n"
    "  --steps S           generation steps (default 40)\n"
    "  --eta E             DDIM noise (default 0: deterministic)\n"
    "  --seed K            seed of the random draws (default 1234)\n"
    "  --ddpm              Markovian DDPM sampling (every step; var_type from --config)\n"
    CLI_MODEL_HELP
    CLI_COMPUTE_HELP
    "examples: diffclip generate --model celeba_hq.ckpt --latent lat.npy --out face.png\n"
    "          diffclip generate --model pixar.pth --model makeup.pth --schedule \\\n"
    "              '300:1,0;0:0.3,0.7' --latent lat.npy --t0 500 --steps 40 --out mix.png",
    run_generate,
};

/* ---- noise ---- */

#define NOISE_USAGE "noise --x X.npy|IMAGE --t0 N (--noise E.npy | --seed K) [--size S] " \
                    "--out XT.npy"

static int run_noise(int argc, char **argv)
{
    const char *x_path = NULL, *noise_path = NULL, *out = NULL;
    int t0 = -1, seed = -1, size = 256;
    const cli_option options[] = {
        {"x", CLI_STRING, &x_path, 0},   {"noise", CLI_STRING, &noise_path, 0},
        {"out", CLI_STRING, &out, 'o'},  {"t0", CLI_INT, &t0, 0},
        {"seed", CLI_INT, &seed, 0},     {"size", CLI_INT, &size, 0},
    };
    static const char *const required[] = {"x", "out", NULL};
    int status = cli_parse(argc, argv, options, COUNT(options), NULL, 0, NULL, NOISE_USAGE);
    if (!status)
        status = cli_check_required(argv[0], NOISE_USAGE, options, COUNT(options), required);
    if (!status && t0 < 0)
        status = cli_command_usage_error(argv[0], NOISE_USAGE, "--t0 is required");
    if (!status && (noise_path != NULL) == (seed >= 0))
        status = cli_command_usage_error(argv[0], NOISE_USAGE,
                                         "give either --noise or --seed");
    if (status)
        return status;
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = t0;
    if (seed >= 0)
        o.seed = (uint64_t)seed;
    dc_tensor x = {0}, noise = {0}, xt = {0};
    if (cli_read_image_or_array(x_path, size, &x) != DC_OK ||
        (noise_path && dc_npy_read(noise_path, &noise) != DC_OK) ||
        dc_add_noise(&x, noise_path ? &noise : NULL, &o, &xt) != DC_OK)
        status = cli_library_error();
    else
        status = write_result(out, &xt);
    dc_tensor_free(&x), dc_tensor_free(&noise), dc_tensor_free(&xt);
    return status;
}

const cli_command cli_cmd_noise = {
    "noise", "the stochastic DDPM forward of images to t0", NOISE_USAGE,
    "Writes x_t = sqrt(abar[t0-1]) x + sqrt(1 - abar[t0-1]) noise (the index t0 - 1, as the\n"
    "published code), with the noise of E.npy (X's shape) or drawn with seed K.\n"
    "  --size S            resolution an image input is resized to (default 256)\n"
    "example: diffclip noise --x x0.npy --t0 500 --seed 7 --out xt.npy",
    run_noise,
};

/* ---- reconstruct ---- */

#define RECONSTRUCT_USAGE "reconstruct --model M --image IN [--t0 N] [--inv-steps S] " \
                          "[--gen-steps S] -o OUT.png " CLI_MODEL_USAGE " [--device D] " \
                          "[--threads N]"

static int run_reconstruct(int argc, char **argv)
{
    const char *model_path = NULL, *image = NULL, *out = NULL;
    int t0 = 500, inv_steps = 40, gen_steps = 40;
    cli_model_args model_args = CLI_MODEL_DEFAULTS;
    cli_compute compute = CLI_COMPUTE_DEFAULTS;
    const cli_option options[] = {
        {"model", CLI_STRING, &model_path, 0}, {"image", CLI_STRING, &image, 0},
        {"out", CLI_STRING, &out, 'o'},        {"t0", CLI_INT, &t0, 0},
        {"inv-steps", CLI_INT, &inv_steps, 0}, {"gen-steps", CLI_INT, &gen_steps, 0},
        CLI_MODEL_OPTIONS(&model_args),        CLI_COMPUTE_OPTIONS(&compute),
    };
    static const char *const required[] = {"model", "image", "out", NULL};
    int status =
        cli_parse(argc, argv, options, COUNT(options), NULL, 0, NULL, RECONSTRUCT_USAGE);
    if (!status)
        status = cli_check_required(argv[0], RECONSTRUCT_USAGE, options, COUNT(options),
                                    required);
    if (status || (status = cli_compute_apply(argv[0], RECONSTRUCT_USAGE, &compute)))
        return status;
    dc_model *model = cli_load_model(model_path, &compute, &model_args);
    if (!model)
        return CLI_EXIT_FAILURE;
    dc_diffusion_options o;
    dc_diffusion_options_init(&o, DC_DIFFUSION_OPTIONS_VERSION);
    o.t0 = t0;
    o.progress = cli_progress;
    dc_tensor x0 = {0}, lat = {0}, rec = {0};
    dc_image_metrics m;
    status = read_images(image, model, &x0);
    if (!status) {
        o.steps = inv_steps;
        dc_status s = dc_invert(model, &x0, &o, &lat);
        o.steps = gen_steps;
        if (s == DC_OK)
            s = dc_generate(model, &lat, &o, &rec);
        cli_progress_done();
        if (s == DC_OK)
            s = dc_compare_images(&rec, &x0, &m);
        status = s == DC_OK ? write_result(out, &rec) : cli_library_error();
    }
    if (!status)
        printf("MAE %.6f\nPSNR %.3f dB\nSSIM %.6f\n", m.mae, m.psnr, m.ssim);
    dc_tensor_free(&x0), dc_tensor_free(&lat), dc_tensor_free(&rec);
    dc_model_free(model);
    return status;
}

const cli_command cli_cmd_reconstruct = {
    "reconstruct", "inversion then generation: how faithful the latent is", RECONSTRUCT_USAGE,
    "Inverts IN (a photo resized to the model's image size, or an .npy array as it is) to t0\n"
    "and generates it back with the\n"
    "same model, writes the reconstruction and prints the paper's reconstruction measures:\n"
    "MAE and PSNR on [0, 1], SSIM (Gaussian window 11, sigma 1.5).\n"
    "  --t0 N              (default 500)\n"
    "  --inv-steps S       inversion steps (default 40)\n"
    "  --gen-steps S       generation steps (default 40)\n"
    CLI_MODEL_HELP
    CLI_COMPUTE_HELP
    "example: diffclip reconstruct --model celeba_hq.ckpt --image face.jpg -o rec.png",
    run_reconstruct,
};
