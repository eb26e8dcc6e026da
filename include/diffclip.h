/*
 * libdiffclip: text-guided image manipulation with diffusion models (DiffusionCLIP).
 *
 * One public header, C11. Every fallible function returns a dc_status (DC_OK = 0, negative
 * on failure); the message of the last failure on the calling thread is dc_last_error().
 * Later versions may add status codes: treat every negative value as a failure, also one
 * this header does not name (dc_status_name gives "DC_UNKNOWN" for it).
 *
 * Thread rules: a handle is used by one thread at a time; different handles may be used on
 * different threads concurrently. Using a handle includes using the handles it holds (a
 * sampler its models, a latent cache its model, a fine-tuner its model, CLIP, tokenizer,
 * identity network and cache). Functions that take no handle (arrays, images, checkpoint
 * files, presets, options' _init, dc_compare_images, dc_add_noise, dc_face_distance) may be
 * called on any thread at any time; dc_set_num_threads is process-wide. Progress callbacks
 * run on the calling thread, synchronously, and must not use the handles of the operation
 * that calls them. Free functions accept NULL.
 *
 * Errors: each function's comment names the statuses it returns for reasons of its own; any
 * function that computes with LibTorch may also return DC_ENOMEM, DC_EDEVICE (a failure on
 * the GPU) and DC_EINTERNAL.
 *
 * Arguments: a NULL pointer where one is needed, a wrong shape or dtype, an enum value out of
 * range, a count or step count outside its documented range, or an options struct whose
 * version is 0 or above the header's is DC_EINVAL, and no output is allocated. Accessors
 * that return a count or a size return 0 for a NULL handle, those that return a pointer NULL.
 * A handle used after it was freed cannot be detected (undefined behaviour).
 *
 * Options structs start with `unsigned version`. Set one up with dc_xxx_options_init(&o,
 * DC_XXX_OPTIONS_VERSION) or `= DC_XXX_OPTIONS_INIT`, then change the fields wanted. Fields
 * are only ever appended, each addition with a new version number and a comment "Version N"
 * before the fields it added: the library reads (and
 * dc_finetune_options_apply_preset writes) only the fields of the version a struct says and
 * gives the later fields their defaults, so a program built against an older header keeps
 * working with a newer library of the same major version. _init returns DC_EINVAL, writing
 * nothing, for version 0 or a version above the library's.
 *
 * Ownership: buffers a function fills in a caller's dc_tensor or dc_image are allocated by the
 * library and released with dc_tensor_free / dc_image_free; an output struct is overwritten,
 * not freed first. Handles are made by a _load, _new or _open function into *out (NULL on
 * failure) and released by their _free function. A handle given other handles keeps
 * pointers to them: they must outlive it (nothing is reference-counted). Strings and views
 * a function returns belong to the library or the handle (valid until its _free); never
 * free them.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef DIFFCLIP_H
#define DIFFCLIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DC_BUILDING_LIBRARY) && defined(__GNUC__)
#define DC_API __attribute__((visibility("default")))
#else
#define DC_API
#endif

#define DC_VERSION_MAJOR 0
#define DC_VERSION_MINOR 2
#define DC_VERSION_PATCH 0
#define DC_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, as zstd and SQLite number theirs. A program may
 * compare it with dc_version_number(): a library of the same major version and a number at
 * least the header's has every function and options field the header declares. */
#define DC_VERSION_NUMBER 200

/* Status codes: 0 is success, negative values say what kind of failure. */
typedef enum dc_status {
    DC_OK = 0,
    DC_EINVAL = -1,      /* invalid argument (NULL, bad shape, out-of-range value) */
    DC_EIO = -2,         /* a file could not be opened, read or written */
    DC_EFORMAT = -3,     /* a file is malformed, truncated, hostile or unsupported */
    DC_ENOMEM = -4,      /* out of memory, or a size over the library's limits */
    DC_EDEVICE = -5,     /* the requested device is unavailable or failed */
    DC_ECANCELLED = -6,  /* a progress callback asked to stop */
    DC_EINTERNAL = -7,   /* a bug in the library or its tensor backend */
    DC_ENOTFOUND = -8    /* what was searched for is not there (no face in a photo) */
} dc_status;

/* The message of the last failure on this thread ("" if none). Valid until the next failing
 * call on this thread. Never NULL. */
DC_API const char *dc_last_error(void);
/* A short constant name for a status ("DC_EFORMAT"). */
DC_API const char *dc_status_name(dc_status status);
/* The library's version, e.g. "0.2.0". */
DC_API const char *dc_version(void);
/* The library's DC_VERSION_NUMBER (200 for 0.2.0), which may be newer than the header's. */
DC_API unsigned dc_version_number(void);

/* ---------------------------------------------------------------------------------------
 * Runtime
 * ------------------------------------------------------------------------------------- */

/* Number of CPU threads for tensor work. n <= 0 means the number of online cores, which is
 * also the default (environment variable DIFFCLIP_NUM_THREADS overrides the default).
 * Process-wide.
 * Errors: DC_EINTERNAL if LibTorch refuses. */
DC_API dc_status dc_set_num_threads(int n);
DC_API int dc_get_num_threads(void);
/* 1 if a CUDA device can be used, else 0. */
DC_API int dc_cuda_available(void);
/* Whether `device` ("cpu", "cuda", "cuda:N", "auto") can be used: DC_OK, DC_EINVAL for a bad
 * name, or DC_EDEVICE with a message saying why not (a CPU-only LibTorch, no device found, an
 * index past the last device). */
DC_API dc_status dc_device_check(const char *device);
/* One line on the tensor backend, for bug reports: "LibTorch 2.6.0, CUDA backend registered,
 * 1 CUDA device(s)" or "LibTorch 1.13.0, CPU only (no CUDA backend)". Static storage. */
DC_API const char *dc_backend_info(void);
/* The CUDA caching allocator's peak allocated and reserved bytes on a CUDA device ("cuda",
 * "cuda:N") since the process began or the last reset, as torch.cuda.max_memory_allocated and
 * max_memory_reserved; either pointer may be NULL. DC_EDEVICE without that device. */
DC_API dc_status dc_cuda_memory_peak(const char *device, int64_t *peak_allocated,
                                     int64_t *peak_reserved);
DC_API dc_status dc_cuda_memory_reset_peak(const char *device);

/* ---------------------------------------------------------------------------------------
 * Arrays and images
 * ------------------------------------------------------------------------------------- */

#define DC_MAX_DIMS 8

typedef enum dc_dtype {
    DC_FLOAT32 = 0,
    DC_FLOAT16 = 1,
    DC_BFLOAT16 = 2,
    DC_FLOAT64 = 3,
    DC_INT64 = 4,
    DC_INT32 = 5,
    DC_UINT8 = 6,
    DC_BOOL = 7
} dc_dtype;

/* The dtype's name as `diffclip inspect` prints it ("float32"); NULL if unknown. */
DC_API const char *dc_dtype_name(dc_dtype dtype);
/* Bytes per element (0 if unknown). */
DC_API size_t dc_dtype_size(dc_dtype dtype);

/* A dense, C-ordered array on the host. */
typedef struct dc_tensor {
    dc_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[DC_MAX_DIMS];
    void *data;                      /* numel * dc_dtype_size(dtype) bytes */
} dc_tensor;

/* Number of elements (1 for a scalar). */
DC_API int64_t dc_tensor_numel(const dc_tensor *t);
/* Releases t->data and zeroes *t. */
DC_API void dc_tensor_free(dc_tensor *t);

/* .npy files (format 1.0, 2.0, 3.0), little-endian, C order only. float32, float64, int64,
 * int32, uint8 and bool arrays keep their dtype; float16 is converted to float32. Fortran
 * order, object and structured arrays, big-endian data and other dtypes are refused.
 * Errors: DC_EINVAL (NULL), DC_EIO, DC_EFORMAT (malformed header, Fortran order, object or
 * structured arrays, big-endian or other dtypes, data shorter than the shape), DC_ENOMEM. */
DC_API dc_status dc_npy_read(const char *path, dc_tensor *out);
/* Writes any dtype but bfloat16 (which .npy lacks) with the version 1.0 header numpy writes;
 * replaces `path` atomically.
 * Errors: DC_EINVAL (NULL, an invalid tensor, bfloat16), DC_EIO. */
DC_API dc_status dc_npy_write(const char *path, const dc_tensor *t);

/* An 8-bit RGB image, rows top to bottom, pixels interleaved (channels is 3). */
typedef struct dc_image {
    int width;
    int height;
    int channels;
    uint8_t *data;                   /* width * height * channels bytes */
} dc_image;

/* Reads a PNG or JPEG file (by content, not by name): gray, gray+alpha, RGB, RGBA, palette
 * and 16-bit images all become 8-bit RGB as PIL's convert("RGB") makes them (alpha is
 * dropped, 16-bit samples keep their high byte, also for 16-bit gray, which PIL saturates
 * instead). CMYK JPEGs are refused.
 * Errors: DC_EINVAL (NULL), DC_EIO, DC_EFORMAT (not a PNG or JPEG, corrupt, CMYK JPEG),
 * DC_ENOMEM (over the pixel limits). */
DC_API dc_status dc_image_read(const char *path, dc_image *out);
/* Writes PNG or JPEG (quality 95) chosen by the extension (.png, .jpg, .jpeg, any case;
 * others are DC_EINVAL); atomic replace.
 * Errors: DC_EINVAL (NULL, another extension, not 3 channels, empty or over the limits),
 * DC_EIO. */
DC_API dc_status dc_image_write(const char *path, const dc_image *img);
DC_API void dc_image_free(dc_image *img);

/* Centre-crops `img` to a square (torchvision's CenterCrop offsets), resizes it to
 * size x size exactly as Pillow's Image.resize(..., LANCZOS) (alias ANTIALIAS; Lanczos-3
 * whose support widens with the reduction factor; also used when enlarging) and returns a
 * 1x3xsize x size float32 tensor in [-1, 1]: (v / 255 - 0.5) * 2.
 * Errors: DC_EINVAL (NULL, an invalid image, a size < 1 or over the limits), DC_ENOMEM. */
DC_API dc_status dc_image_to_tensor(const dc_image *img, int size, dc_tensor *out);
/* Converts image `index` of an NCHW float32 tensor in [-1, 1] (C = 3) to an image, as
 * torchvision's save_image does: clamp to [0, 1], x * 255 + 0.5, truncate.
 * Errors: DC_EINVAL (NULL, not float32 NCHW with 3 channels, index out of range, size over the
 * limits), DC_ENOMEM. */
DC_API dc_status dc_tensor_to_image(const dc_tensor *t, int64_t index, dc_image *out);

/* ---------------------------------------------------------------------------------------
 * Checkpoints
 *
 * Reads torch.save zip files (stored or deflated entries), the legacy pre-1.6 container,
 * TorchScript archives, safetensors and .npy files without executing anything: pickles are
 * read by a restricted unpickler that refuses any global outside an allow-list.
 * ------------------------------------------------------------------------------------- */

typedef enum dc_container {
    DC_CONTAINER_TORCH_ZIP = 0,
    DC_CONTAINER_TORCH_LEGACY = 1,
    DC_CONTAINER_TORCHSCRIPT = 2,
    DC_CONTAINER_SAFETENSORS = 3,
    DC_CONTAINER_NPY = 4
} dc_container;

typedef struct dc_checkpoint dc_checkpoint;

/* Reads every tensor of the file at `path` into memory. A state dict nested in a dict
 * ({'state_dict': sd}) or a list ([sd, ...]) is found; names are as the file holds them.
 * Errors: DC_EINVAL (NULL), DC_EIO, DC_EFORMAT (malformed, a refused pickle global, duplicate
 * names), DC_ENOMEM (also for sizes over the limits). */
DC_API dc_status dc_checkpoint_open(dc_checkpoint **out, const char *path);
DC_API void dc_checkpoint_free(dc_checkpoint *ckpt);
/* The container the file was (DC_CONTAINER_TORCH_ZIP for NULL). */
DC_API dc_container dc_checkpoint_container(const dc_checkpoint *ckpt);
DC_API size_t dc_checkpoint_count(const dc_checkpoint *ckpt);
/* Name of tensor i (NUL-terminated, owned by ckpt; "-" for an .npy file); NULL if i is out
 * of range. */
DC_API const char *dc_checkpoint_name(const dc_checkpoint *ckpt, size_t i);
/* Tensor i as stored (dtype, shape, data owned by ckpt: do not free).
 * Errors: DC_EINVAL (NULL, index out of range). */
DC_API dc_status dc_checkpoint_tensor(const dc_checkpoint *ckpt, size_t i, dc_tensor *view);
/* Index of the tensor called `name`, or DC_EINVAL if there is none.
 * Errors: DC_EINVAL (NULL, or no such tensor). */
DC_API dc_status dc_checkpoint_find(const dc_checkpoint *ckpt, const char *name, size_t *index);

typedef struct dc_named_tensor {
    const char *name;
    dc_tensor tensor;
} dc_named_tensor;

typedef enum dc_checkpoint_format {
    DC_FORMAT_AUTO = 0,          /* .safetensors (any case): safetensors, else torch.save zip */
    DC_FORMAT_TORCH_ZIP = 1,     /* readable by torch.load */
    DC_FORMAT_SAFETENSORS = 2
} dc_checkpoint_format;

/* Writes `count` tensors as a state dict (an OrderedDict in file order for torch.save);
 * replaces `path` atomically.
 * Errors: DC_EINVAL (NULL, more than 2^20 tensors, a name that is not valid UTF-8, a bad
 * dtype, rank or shape, NULL data), DC_EIO, DC_ENOMEM. */
DC_API dc_status dc_checkpoint_write(const char *path, dc_checkpoint_format format,
                                     const dc_named_tensor *tensors, size_t count);

/* ---------------------------------------------------------------------------------------
 * Diffusion models
 *
 * The DDPM UNet of the CelebA-HQ / LSUN checkpoints and guided-diffusion's ADM UNet of the
 * AFHQ / ImageNet checkpoints, the architecture inferred from the weights' names and shapes.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_model dc_model;

typedef enum dc_model_family { DC_MODEL_DDPM = 0, DC_MODEL_ADM = 1 } dc_model_family;

#define DC_MODEL_OPTIONS_VERSION 2
typedef struct dc_model_options {
    unsigned version;
    const char *device;      /* "cpu", "cuda", "cuda:N" or "auto" (default: "auto") */
    /* DC_FLOAT32 (default), DC_BFLOAT16 (the CPU, where AVX512-BF16 makes it about twice as
     * fast, or CUDA) or DC_FLOAT16 (CUDA only): the dtype the UNet computes in. Inversion and
     * generation keep the latent and the step maths in float32 (docs/performance.md gives
     * the differences from float32). */
    dc_dtype dtype;
    /* The size the model was trained at, a multiple of 2^(levels - 1): the side photos are
     * resized to. 0 (default): the config's data.image_size, else what the weights tell
     * (dc_model_config); a value that contradicts the config is DC_EINVAL. Arrays of any
     * size the UNet accepts are taken as they are whatever this says. */
    int image_size;
    int head_channels;       /* ADM channels per attention head; 0: 64, as published */
    /* Version 2. The published YAML config of the checkpoint (configs/celeba.yml, ...;
     * docs/weights.md pairs them), or NULL: data.image_size; the model section, checked
     * against the weights (DDPM; ADM ignores it, as published), a contradiction being
     * DC_EFORMAT naming the key and both values; model.var_type; the diffusion section's
     * beta_start, beta_end and num_diffusion_timesteps, which then drive every inversion,
     * generation, fine-tuning and DDPM sampling with this model whose options leave the
     * schedule at 0. Betas are linear whatever beta_schedule says, as published (another
     * name gives a warning, dc_model_config). Malformed or hostile YAML is DC_EFORMAT. */
    const char *config_path;
} dc_model_options;
#define DC_MODEL_OPTIONS_INIT {DC_MODEL_OPTIONS_VERSION, "auto", DC_FLOAT32, 0, 0, NULL}

DC_API dc_status dc_model_options_init(dc_model_options *options, unsigned version);

/* Loads a diffusion model from any checkpoint container; `options` may be NULL. The weights of
 * a loaded model are immutable: loading the same unchanged file (same device, inode, size and
 * modification time) with the same options again returns a handle that shares them, so that
 * several handles on one base model hold its weights once. Handles sharing weights may still
 * be used on different threads concurrently.
 * Errors: DC_EINVAL (NULL, a bad dtype or float16 on the CPU, an unknown device name, bad
 * options version), DC_EIO, DC_EFORMAT (not a diffusion model of a known architecture, missing
 * or misshapen weights), DC_EDEVICE, DC_ENOMEM. */
DC_API dc_status dc_model_load(dc_model **out, const char *path,
                               const dc_model_options *options);
DC_API void dc_model_free(dc_model *model);

#define DC_MAX_LEVELS 12
typedef struct dc_model_info {
    dc_model_family family;
    int image_size;          /* 0 when unknown (dc_model_config says where it came from) */
    int in_channels;
    int out_channels;        /* 6 for learned-sigma models: eps, then the variance output */
    int base_channels;
    int levels;
    double channel_mult[DC_MAX_LEVELS];   /* level channels / base channels */
    int num_res_blocks;
    int attention_levels[DC_MAX_LEVELS];  /* 1 where a level has attention */
    int head_channels;                    /* ADM channels per attention head (DDPM: 0) */
    int num_heads;                        /* DDPM: 1; ADM with fixed heads: the count */
    int learn_sigma;
    int64_t parameters;
} dc_model_info;

/* Errors: DC_EINVAL (NULL). */
DC_API dc_status dc_model_get_info(const dc_model *model, dc_model_info *info);

/* Where a model's image size came from. */
typedef enum dc_size_source {
    DC_SIZE_UNKNOWN = 0,     /* nothing tells it: photos need dc_model_options.image_size or
                              * a config; arrays are taken at any size the UNet accepts */
    DC_SIZE_WEIGHTS = 1,     /* the architecture: a DDPM UNet with one attention level l is
                              * 16 << l (attention at 16 x 16, as every published DDPM
                              * config); an ADM UNet with guided-diffusion's default channel
                              * multipliers of 512, 256, 128 or 64 is that size */
    DC_SIZE_CONFIG = 2,      /* the config's data.image_size */
    DC_SIZE_OPTION = 3       /* dc_model_options.image_size */
} dc_size_source;

/* The log-variance of DDPM sampling (the config's model.var_type). */
typedef enum dc_var_type { DC_VAR_FIXEDSMALL = 0, DC_VAR_FIXEDLARGE = 1 } dc_var_type;

#define DC_MODEL_CONFIG_VERSION 1
typedef struct dc_model_config {
    unsigned version;            /* set it to DC_MODEL_CONFIG_VERSION before the call */
    int image_size;              /* 0 when unknown */
    dc_size_source image_size_source;
    const char *config_path;     /* the config read, or NULL; owned by the model */
    dc_var_type var_type;        /* fixedsmall without a config */
    int num_timesteps;           /* the schedule: the config's, else 1000, 1e-4, 0.02 */
    double beta_start, beta_end;
    const char *warnings;        /* "" or lines ending in '\n' (an unknown beta_schedule,
                                  * an ignored model section...); owned by the model */
} dc_model_config;

/* What a model's config (or its absence) decided. Fine-tuned models loaded with
 * dc_model_load_finetuned have their base model's. */
DC_API dc_status dc_model_get_config(const dc_model *model, dc_model_config *config);
/* A human-readable description of what was inferred (several lines) into buf, cut to
 * size - 1 characters (size 0 is DC_EINVAL).
 * Errors: DC_EINVAL (NULL, size 0). */
DC_API dc_status dc_model_describe(const dc_model *model, char *buf, size_t size);

/* The raw network output for x (N, 3, H, W) float32 and t (N) float32 timesteps:
 * (N, out_channels, H, W) float32.
 * Errors: DC_EINVAL (shapes or dtypes). */
DC_API dc_status dc_model_eps(dc_model *model, const dc_tensor *x, const dc_tensor *t,
                              dc_tensor *out);

/* ---------------------------------------------------------------------------------------
 * Progress
 * ------------------------------------------------------------------------------------- */

#define DC_PROGRESS_VERSION 2
typedef struct dc_progress {
    unsigned version;            /* DC_PROGRESS_VERSION: fields are only ever appended */
    const char *stage;           /* "invert", "generate", "finetune", "translate", ... */
    int step, steps;             /* 1-based step within the current image, and the count */
    int image, images;           /* 1-based image, and the count (1 for a single call) */
    int epoch, epochs;           /* fine-tuning; 0 elsewhere */
    double loss_clip;            /* fine-tuning losses of the last step (0 elsewhere) */
    double loss_l1;
    double loss_id;
    double loss_total;
    double grad_norm;            /* L2 norm of the gradient over all trained weights */
    double learning_rate;
    double seconds_per_image;    /* measured so far */
    double eta_seconds;          /* estimated time left */
    /* Version 2: fine-tuning's epoch report, stage "finetune-epoch", sent before the first
     * epoch (epoch 0, with the base weights) and after each one, to callers whose
     * dc_finetune_options are of version 2 or later. */
    double epoch_loss_clip;      /* means over the epoch's Adam steps (0 for epoch 0) */
    double epoch_loss_l1;
    double epoch_loss_id;
    double epoch_loss_total;
    /* The test images' mean CLIP directional similarity, cos(E(edit) - E(original), text
     * direction), with the epoch's weights; 0 without test images. */
    double test_direction;
    const char *test_grid;       /* the epoch's test grid PNG, or NULL (valid during the call) */
} dc_progress;

/* Called after every step of a long operation; returning non-zero cancels it cleanly with
 * DC_ECANCELLED (handles stay usable, files intact). */
typedef int (*dc_progress_fn)(void *user, const dc_progress *progress);

/* ---------------------------------------------------------------------------------------
 * Diffusion: the forward DDIM encoder and the reverse generator
 * ------------------------------------------------------------------------------------- */

typedef enum dc_sampling {
    DC_SAMPLING_DDIM = 0,        /* deterministic with eta 0 */
    DC_SAMPLING_DDPM = 1         /* Markovian; generation with steps = 0 (every timestep) */
} dc_sampling;

#define DC_DIFFUSION_OPTIONS_VERSION 1
typedef struct dc_diffusion_options {
    unsigned version;
    int t0;                      /* the latent's timestep, 1 <= t0 < T (default 500) */
    int steps;                   /* >= 2 (default 40); generation also takes 0: every step */
    dc_sampling sampling;        /* generation only (default DDIM) */
    double eta;                  /* DDIM generation noise (default 0); inversion needs 0 */
    uint64_t seed;               /* for every random draw (default 1234, as published) */
    /* T and the linear betas; 0 (default): the model's schedule (its config's, else 1000
     * and 1e-4 .. 0.02; dc_add_noise, with no model, uses the latter). */
    int num_timesteps;
    double beta_start;
    double beta_end;
    dc_progress_fn progress;     /* may be NULL */
    void *progress_user;
} dc_diffusion_options;
#define DC_DIFFUSION_OPTIONS_INIT                                                               \
    {DC_DIFFUSION_OPTIONS_VERSION, 500, 40, DC_SAMPLING_DDIM, 0.0, 1234, 0, 0.0, 0.0, NULL, NULL}

DC_API dc_status dc_diffusion_options_init(dc_diffusion_options *options, unsigned version);

/* Deterministic DDIM inversion of x0 (N, 3, H, W) in [-1, 1] to a latent at t0, in `steps`
 * steps (steps - 1 model calls).
 * Errors: DC_EINVAL (shapes, eta not 0, DDPM sampling, steps < 2, t0 outside 1..T-1),
 * DC_ECANCELLED. */
DC_API dc_status dc_invert(dc_model *model, const dc_tensor *x0,
                           const dc_diffusion_options *options, dc_tensor *latent);
/* Generation from a latent at t0 back to an image (steps model calls).
 * Errors: DC_EINVAL (shapes, steps 1 or negative, DDPM with steps != 0, eta negative or not
 * finite, t0 out of range), DC_ECANCELLED. */
DC_API dc_status dc_generate(dc_model *model, const dc_tensor *latent,
                             const dc_diffusion_options *options, dc_tensor *out);
/* The stochastic forward x_t = sqrt(abar[t0-1]) x0 + sqrt(1 - abar[t0-1]) noise, with the
 * given noise (x0's shape) or, when noise is NULL, noise drawn with options->seed. The
 * options are checked as for generation.
 * Errors: DC_EINVAL (dtype or shape, t0 out of range). */
DC_API dc_status dc_add_noise(const dc_tensor *x0, const dc_tensor *noise,
                              const dc_diffusion_options *options, dc_tensor *xt);

/* Reconstruction measures of two NCHW images in [-1, 1] (the paper's reconstruction table):
 * mean absolute error on [0, 1], PSNR in dB on [0, 1], SSIM (Gaussian window 11, sigma 1.5,
 * averaged over channels and images). */
typedef struct dc_image_metrics {
    double mae;
    double psnr;
    double ssim;
} dc_image_metrics;
/* Errors: DC_EINVAL (dtypes, shapes, sizes), DC_ENOMEM. */
DC_API dc_status dc_compare_images(const dc_tensor *a, const dc_tensor *b,
                                   dc_image_metrics *metrics);

/* ---------------------------------------------------------------------------------------
 * Latent cache: per image (x0, x_rec, x_lat) for one model and one set of parameters, kept
 * in one file (docs/formats.md) and reused when every parameter matches.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_latent_cache dc_latent_cache;

/* Opens (or prepares to create) the cache at `path` for `model`, inverting with
 * inversion->t0 and inversion->steps and reconstructing x_rec with `gen_steps` >= 2 steps. A
 * file made with another model or other parameters is refused (DC_EINVAL naming the
 * difference), one that is not a latent cache is DC_EFORMAT. A new file is written by the
 * first dc_latent_cache_add (a path that cannot be written fails there, DC_EIO). The model
 * must outlive the cache.
 * Errors: DC_EINVAL (NULL, gen_steps < 2, inversion options as for dc_invert, and a file made
 * with another model or other parameters: the message names the difference), DC_EIO,
 * DC_EFORMAT (a damaged file), DC_ENOMEM. */
DC_API dc_status dc_latent_cache_open(dc_latent_cache **out, const char *path, dc_model *model,
                                      const dc_diffusion_options *inversion, int gen_steps);
DC_API void dc_latent_cache_free(dc_latent_cache *cache);
DC_API size_t dc_latent_cache_count(const dc_latent_cache *cache);
/* Finds x0 (1, 3, H, W) in the cache, or inverts and reconstructs it and appends it to the
 * file (atomically); *index receives its entry.
 * Errors: DC_EINVAL (shape or dtype), DC_EIO (the write; the entry is then not added),
 * DC_ENOMEM (also a full cache: 2^20 entries), DC_ECANCELLED. */
DC_API dc_status dc_latent_cache_add(dc_latent_cache *cache, const dc_tensor *x0,
                                     size_t *index);
/* Entry `index` (DC_EINVAL past the last; the outputs are then untouched); any output may
 * be NULL.
 * Errors: DC_EINVAL (NULL cache, index out of range), DC_EFORMAT (an entry whose data fails
 * its CRC), DC_ENOMEM. On failure no output is allocated. */
DC_API dc_status dc_latent_cache_get(const dc_latent_cache *cache, size_t index, dc_tensor *x0,
                                     dc_tensor *x_rec, dc_tensor *x_lat);

/* ---------------------------------------------------------------------------------------
 * Sampler: generation with the noise of several models mixed (DiffusionCLIP's noise combination)
 *
 * eps(x, t) = sum_i gamma_i(t) eps_i(x, t) over M models of one family, resolution and
 * output layout (model 0 is the original; the others are usually fine-tuned from it). The
 * weights are constants, a piecewise schedule by timestep thresholds (the published hybrid
 * config) or a linear ramp in t, and must sum to 1 at every t (within 1e-6). They may be
 * negative or above 1 (extrapolation). A model whose weight is 0 at a step is not evaluated;
 * the others run one after another, so a mix needs the M models' weights and one set of
 * activations. Learned-sigma outputs are mixed whole (eps and variance with the same
 * weights), as published. The mix is computed in float32 on model 0's device. The models
 * must outlive the sampler, and are used by it (one thread at a time, as any handle).
 * ------------------------------------------------------------------------------------- */

typedef struct dc_sampler dc_sampler;

/* A sampler over models[0..count) (1 <= count <= 64). Its weights start as model 0 alone.
 * Errors: DC_EINVAL (NULL, count out of range, models that cannot be mixed: the message names
 * both), DC_ENOMEM. */
DC_API dc_status dc_sampler_new(dc_sampler **out, dc_model *const *models, size_t count);
DC_API void dc_sampler_free(dc_sampler *sampler);
DC_API size_t dc_sampler_count(const dc_sampler *sampler);

/* The setters refuse (DC_EINVAL) weights that are not finite or do not sum to 1, naming
 * the t, and then keep the previous weights. Constant weights: weights[count].
 * Errors: DC_EINVAL (NULL, a weight not finite, a sum other than 1 within 1e-6); the previous
 * weights are then kept. */
DC_API dc_status dc_sampler_set_weights(dc_sampler *sampler, const double *weights);
/* A piecewise schedule: at timestep t the row k (weights[k * count .. k * count + count))
 * of the highest threshold with t >= thresholds[k]. Thresholds are distinct, in any order,
 * the lowest <= 0; e.g. the published {300: [1, 0], 0: [0.3, 0.7]} is thresholds {300, 0}
 * and weights {1, 0, 0.3, 0.7}. At most 1024 pieces.
 * Errors: DC_EINVAL (as dc_sampler_set_weights, plus duplicate thresholds, no threshold <= 0,
 * too many pieces); previous weights kept. */
DC_API dc_status dc_sampler_set_piecewise(dc_sampler *sampler, const int *thresholds,
                                          const double *weights, size_t pieces);
/* A linear ramp: `a` at t <= t_a, `b` at t >= t_b (t_a != t_b, either may be the larger),
 * and (1 - s) a + s b in between, s = (t - t_a) / (t_b - t_a).
 * Errors: DC_EINVAL (t_a == t_b, weights as above); previous weights kept. */
DC_API dc_status dc_sampler_set_ramp(dc_sampler *sampler, int t_a, const double *a, int t_b,
                                     const double *b);
/* The weights at timestep t into weights[count]. */
DC_API dc_status dc_sampler_weights_at(const dc_sampler *sampler, int t, double *weights);

/* Generation from a latent at options->t0 with the mix (as dc_generate).
 * Errors: as dc_generate. */
DC_API dc_status dc_sampler_generate(dc_sampler *sampler, const dc_tensor *latent,
                                     const dc_diffusion_options *options, dc_tensor *out);

#define DC_EDIT_OPTIONS_VERSION 1
typedef struct dc_edit_options {
    unsigned version;
    int t0;                      /* the latent's timestep (default 500) */
    int inv_steps;               /* DDIM inversion steps with model 0 (default 40) */
    int gen_steps;               /* DDIM generation steps with the mix (default 40) */
    double eta;                  /* generation noise (default 0) */
    uint64_t seed;               /* for every random draw (default 1234) */
    int repeats;                 /* translate: projections R (default 10; README: > 8) */
    int projection_steps;        /* translate: DDIM steps of a projection (default 6); every
                                  * mode checks repeats >= 1 and projection_steps >= 2 */
    /* Edit and transition: NULL, or a latent cache of model 0 (or a model with the same
     * weights) made with this t0 and inv_steps, through which images are inverted. */
    dc_latent_cache *cache;
    int num_timesteps;           /* T and linear betas; 0 (default): model 0's schedule, */
    double beta_start;           /* as dc_diffusion_options */
    double beta_end;
    dc_progress_fn progress;     /* may be NULL; stages "invert", "project", "generate" */
    void *progress_user;
} dc_edit_options;
#define DC_EDIT_OPTIONS_INIT \
    {DC_EDIT_OPTIONS_VERSION, 500, 40, 40, 0.0, 1234, 10, 6, NULL, 0, 0.0, 0.0, NULL, NULL}

DC_API dc_status dc_edit_options_init(dc_edit_options *options, unsigned version);

/* Editing (the published edit_one_image): x0 (N, 3, H, W) in [-1, 1] is inverted with
 * model 0 to t0, then generated with the mix -> out (N, 3, H, W).
 * Errors: DC_EINVAL (shapes, options, a cache of another model or other parameters),
 * DC_ECANCELLED, and the cache's DC_EIO. */
DC_API dc_status dc_sampler_edit(dc_sampler *sampler, const dc_tensor *x0,
                                 const dc_edit_options *options, dc_tensor *out);
/* Continuous transition: x0 inverted once with model 0, then generated `count` (2..4096) times
 * with the weights (1 - g) e_0 + g w(t) for g = k / (count - 1), from model 0 alone (g 0) to
 * the sampler's weights w (g 1); with two models and weights {0, 1} this is the published
 * model_ratio g. out: (N * count, 3, H, W), image n's transition in rows n * count ...
 * Errors: as dc_sampler_edit, plus count out of range. */
DC_API dc_status dc_sampler_transition(dc_sampler *sampler, const dc_tensor *x0, int count,
                                       const dc_edit_options *options, dc_tensor *out);
/* Unseen-domain translation and stroke-to-image (the published unseen2unseen): `repeats`
 * times, x0 is noised to t0 (the stochastic forward, alpha-bar[t0 - 1]) and denoised with
 * model 0 in `projection_steps` DDIM steps (eta 0), each repeat starting from the previous
 * result; the projection is then inverted with model 0 and generated with the mix.
 * `projected` (may be NULL) receives the projection. options->cache is not used.
 * Errors: DC_EINVAL (shapes, repeats < 1, projection_steps < 2, other options), DC_ECANCELLED. */
DC_API dc_status dc_sampler_translate(dc_sampler *sampler, const dc_tensor *x0,
                                      const dc_edit_options *options, dc_tensor *out,
                                      dc_tensor *projected);

/* ---------------------------------------------------------------------------------------
 * Tokenizer
 *
 * CLIP's byte-level BPE tokenizer (openai/CLIP simple_tokenizer.py and clip.tokenize), with
 * the same token ids. Text is cleaned as the reference does (HTML entities unescaped twice,
 * whitespace collapsed, Python's lower-casing) except for ftfy.fix_text, which is not
 * reproduced: text that ftfy would repair (mojibake, curly quotes, ligatures, full-width
 * forms, non-NFC) may give other tokens.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_tokenizer dc_tokenizer;

/* Reads the vocabulary `vocab_path` (bpe_simple_vocab_16e6.txt.gz).
 * Errors: DC_EINVAL (NULL), DC_EIO, DC_EFORMAT (not that vocabulary: a bad gzip stream or
 * merge list), DC_ENOMEM. */
DC_API dc_status dc_tokenizer_new(dc_tokenizer **out, const char *vocab_path);
DC_API void dc_tokenizer_free(dc_tokenizer *tok);
/* Tokenizes `count` NUL-terminated UTF-8 texts into `out`, an int64 [count, context_length]
 * tensor (allocated; release with dc_tensor_free): row i is 49406 (<|startoftext|>), the
 * BPE ids of texts[i], 49407 (<|endoftext|>), then zeros. A text needing more than
 * context_length tokens is DC_EINVAL naming its index, unless `truncate` is non-zero: then
 * it is cut to context_length tokens, the last one 49407. Invalid UTF-8 is DC_EINVAL.
 * Errors: DC_EINVAL (NULL, context_length < 1, invalid UTF-8, a text too long: the message
 * gives its index), DC_ENOMEM. */
DC_API dc_status dc_tokenize(dc_tokenizer *tok, const char *const *texts, size_t count,
                             int context_length, int truncate, dc_tensor *out);

/* ---------------------------------------------------------------------------------------
 * CLIP and identity network
 *
 * dc_clip: OpenAI CLIP (ViT or ModifiedResNet vision tower, text transformer) read from a
 * published TorchScript .pt archive or a plain state dict, its architecture inferred from the
 * weights as clip.load does. dc_idnet: the IR-SE face identity network of DiffusionCLIP's
 * identity loss (model_ir_se50.pth). Both are frozen: gradients flow only to inputs.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_clip dc_clip;
typedef struct dc_idnet dc_idnet;

/* Which CLIP loss dc_clip_loss differentiates. */
typedef enum dc_clip_loss_form {
    DC_CLIP_LOSS_LOG = 0,        /* -log((2 - L_dir) / 2), what DiffusionCLIP optimises */
    DC_CLIP_LOSS_DIRECTION = 1   /* L_dir = mean(1 - cos), the paper's form */
} dc_clip_loss_form;

#define DC_CLIP_OPTIONS_VERSION 1
typedef struct dc_clip_options {
    unsigned version;
    const char *device;          /* "cpu" (default), "cuda", "cuda:N" or "auto" */
    int half;                    /* nonzero: float16 arithmetic as CLIP runs on a GPU (CUDA
                                  * only); the default computes in float32 */
    dc_clip_loss_form loss_form; /* DC_CLIP_LOSS_LOG by default */
} dc_clip_options;
#define DC_CLIP_OPTIONS_INIT {DC_CLIP_OPTIONS_VERSION, "cpu", 0, DC_CLIP_LOSS_LOG}

DC_API dc_status dc_clip_options_init(dc_clip_options *options, unsigned version);
/* options may be NULL (defaults).
 * Errors: DC_EINVAL (NULL, an unknown loss form, half without CUDA), DC_EIO, DC_EFORMAT (not a
 * CLIP model), DC_EDEVICE, DC_ENOMEM. */
DC_API dc_status dc_clip_load(dc_clip **out, const char *path, const dc_clip_options *options);
DC_API void dc_clip_free(dc_clip *clip);
/* The side of the square images encode_image takes (224 for ViT-B/16), and the feature
 * size (512). */
DC_API int dc_clip_input_size(const dc_clip *clip);
DC_API int dc_clip_embed_dim(const dc_clip *clip);

/* DiffusionCLIP's preprocessing of float32 images (N, 3, H, W) in [-1, 1]: (x + 1) / 2,
 * bicubic resize of the shorter side to the input size (no antialias), centre crop, CLIP's
 * mean and std.
 * Errors: DC_EINVAL (shape, dtype). */
DC_API dc_status dc_clip_preprocess(dc_clip *clip, const dc_tensor *x, dc_tensor *out);
/* CLIP's own preprocessing of a photo (clip.load's transform for PIL images): the shorter
 * side resized to the input size S as torchvision's Resize(S, BICUBIC) does it on a PIL
 * image (Pillow's 8-bit bicubic resampling, reproduced bit for bit), centre crop S x S,
 * x / 255, CLIP's mean and std -> float32 (1, 3, S, S) for dc_clip_encode_image.
 * Errors: DC_EINVAL (NULL, an invalid image), DC_ENOMEM. */
DC_API dc_status dc_clip_preprocess_image(const dc_clip *clip, const dc_image *img,
                                          dc_tensor *out);
/* x: preprocessed float32 (N, 3, S, S) -> float32 (N, embed_dim), not normalised.
 * Errors: DC_EINVAL (shapes, dtypes, token ids outside the vocabulary). */
DC_API dc_status dc_clip_encode_image(dc_clip *clip, const dc_tensor *x, dc_tensor *features);
/* tokens: int64 or int32 (N, 77) CLIP tokens -> float32 (N, embed_dim), not normalised. */
DC_API dc_status dc_clip_encode_text(dc_clip *clip, const dc_tensor *tokens,
                                     dc_tensor *features);
/* The directional CLIP loss of editing x_src (described by `source`) into x_trg (described
 * by `target`), both float32 (N, 3, H, W) in [-1, 1]. losses[0] = L_dir, losses[1] =
 * -log((2 - L_dir) / 2). If grad is not NULL it receives d loss / d x_trg (shape of x_trg) of
 * the options' loss form. The text direction (79 prompt templates) is computed once per
 * (source, target) and kept in the clip.
 * Errors: DC_EINVAL (NULL, shapes, texts too long). */
DC_API dc_status dc_clip_loss(dc_clip *clip, dc_tokenizer *tokenizer, const char *source,
                              const char *target, const dc_tensor *x_src,
                              const dc_tensor *x_trg, double losses[2], dc_tensor *grad);

#define DC_IDNET_OPTIONS_VERSION 1
typedef struct dc_idnet_options {
    unsigned version;
    const char *device;          /* "cpu" (default), "cuda", "cuda:N" or "auto" */
} dc_idnet_options;
#define DC_IDNET_OPTIONS_INIT {DC_IDNET_OPTIONS_VERSION, "cpu"}

DC_API dc_status dc_idnet_options_init(dc_idnet_options *options, unsigned version);
/* options may be NULL (defaults).
 * Errors: DC_EINVAL (NULL), DC_EIO, DC_EFORMAT (not an IR-SE network), DC_EDEVICE, DC_ENOMEM. */
DC_API dc_status dc_idnet_load(dc_idnet **out, const char *path,
                               const dc_idnet_options *options);
DC_API void dc_idnet_free(dc_idnet *net);
/* Identity features of aligned float32 faces (N, 3, H, W) in [-1, 1] (256 x 256 as in
 * DiffusionCLIP): the face crop [35:223, 32:220] (scaled for other sizes), average pooling to
 * 112 x 112, the network -> float32 (N, 512), L2-normalised. */
DC_API dc_status dc_idnet_features(dc_idnet *net, const dc_tensor *x, dc_tensor *features);
/* The identity loss between sources x0 and edits x_hat of one shape: *loss = mean of the
 * per-sample 1 - <f(x_hat), f(x0)>; per_sample (float32 (N,)) and grad (d loss / d x_hat) may
 * be NULL.
 * Errors: DC_EINVAL (NULL, shapes differ). */
DC_API dc_status dc_idnet_id_loss(dc_idnet *net, const dc_tensor *x0, const dc_tensor *x_hat,
                                  double *loss, dc_tensor *per_sample, dc_tensor *grad);

/* ---------------------------------------------------------------------------------------
 * Fine-tuning
 *
 * DiffusionCLIP's fine-tuning: a copy of a base model's weights is trained so
 * that images generated from the latents of training images (a latent cache made with the
 * base model) move from a source text towards a target text, guided by CLIP's directional
 * loss, with L1 and face-identity losses keeping them close to the originals. The result is
 * saved after every epoch as a state dict with the base model's key names (torch.save zip,
 * which the published Python code loads, or safetensors) or as a compact delta from the base
 * model (docs/formats.md); dc_model_load_finetuned loads either on top of the base model.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_finetuner dc_finetuner;

typedef enum dc_grad_mode {
    /* The gradient flows through all train_steps generation steps; one Adam step per batch
     * (the published clip_finetune). Memory grows with train_steps. */
    DC_GRAD_FULL = 0,
    /* x is detached between generation steps; the loss of each step's predicted x_0 is
     * backpropagated through that step and Adam steps every step (the published
     * clip_finetune_eff, GPU-efficient). The identity loss gets its gradient here, which the
     * published code loses (docs/deviations.md). */
    DC_GRAD_PER_STEP = 1
} dc_grad_mode;

#define DC_FINETUNE_OPTIONS_VERSION 3
typedef struct dc_finetune_options {
    unsigned version;
    /* text_pairs source and target texts; each pair is trained from the base weights. */
    const char *const *source_texts;
    const char *const *target_texts;
    size_t text_pairs;
    int t0;                      /* the latents' timestep; must be the cache's (default 500) */
    int inv_steps;               /* S_for, inversion steps; must be the cache's (default 40) */
    int train_steps;             /* S_gen, generation steps while training (default 6) */
    double eta;                  /* DDIM noise of those steps (default 0) */
    double learning_rate;        /* Adam's initial rate (default 8e-6); betas 0.9, 0.999,
                                  * eps 1e-8, no weight decay */
    double lr_gamma;             /* the rate is multiplied by this after every epoch (default
                                  * 1.3, as published: it grows) */
    int epochs;                  /* default 5 */
    int images;                  /* training images per epoch (default 50); fewer when the
                                  * cache (or image_indices) holds fewer */
    const size_t *image_indices; /* the cache entries to train on, in order; NULL: entries
                                  * 0, 1, ... */
    size_t image_count;
    int batch_size;              /* images per Adam step (default 1, as published) */
    double clip_weight;          /* default 3 */
    double l1_weight;            /* default 1 */
    double id_weight;            /* default 0; > 0 needs an identity network */
    dc_clip_loss_form loss_form; /* default DC_CLIP_LOSS_LOG, as published */
    dc_grad_mode grad_mode;      /* default DC_GRAD_FULL */
    uint64_t seed;               /* for eta > 0 (default 1234) */
    /* Non-zero: dc_finetuner_train continues from the latest epoch file a killed or
     * cancelled run left, and does nothing when the final file exists. */
    int resume;
    dc_progress_fn progress;     /* stage "finetune", after every generation step, and
                                  * "finetune-epoch" around epochs (dc_progress); may be NULL */
    void *progress_user;
    /* Version 2 */
    /* DC_GRAD_FULL only: each UNet call's activations are recomputed in the backward pass
     * instead of kept, so that only the train_steps latents and one call's activations are
     * held: the same gradient, in about the per-step mode's memory, for one more forward
     * pass per generation step (default 0). */
    int recompute;
    /* The dtype the UNet calls compute in: DC_FLOAT32 (default), DC_BFLOAT16 (CUDA, or a CPU
     * with AVX512-BF16) or DC_FLOAT16 (CUDA only, with dynamic loss scaling). The trained
     * weights, the optimiser's state, the sampler's arithmetic and the losses stay float32. */
    dc_dtype dtype;
    /* Test images, generated before the first epoch and after each one (the published
     * do_test): the first test_images entries of test_cache (made with the same model, t0 and
     * inv_steps; NULL: the training cache). Each epoch E writes the grid
     * "NAME.epochE.test.png" beside the output `NAME.ext`, a row per image: original |
     * reconstruction (from the cache) | edit with the epoch's weights. 0 (default): none. */
    dc_latent_cache *test_cache;
    size_t test_images;
    int test_steps;              /* their generation steps (default 0: inv_steps) */
    /* Version 3: data parallelism (docs/scaling.md). With world_size > 1, world_size
     * processes (one per device) each make a fine-tuner with the same options but their own
     * rank; they join a Gloo process group (LibTorch's c10d) whose rank 0 listens at
     * master_addr:master_port. Each rank's latent cache (or image_indices) holds its share of
     * the training images, in order: rank r has images r, r + world_size, ... of the whole
     * list. The gradients are averaged across ranks before every Adam step, so that world_size
     * ranks with batch_size B train as one process with batch_size world_size * B on the
     * whole list (at eta 0; with eta > 0 each rank draws its own noise). Every rank ends with
     * the same weights; only rank 0 writes files. The model, texts and numbers must agree:
     * dc_finetuner_new checks them on every rank. A rank that is lost, or that does not answer
     * within dist_timeout, fails every other with DC_EIO. */
    int world_size;              /* default 1: no process group */
    int rank;                    /* 0 .. world_size - 1 (default 0) */
    const char *master_addr;     /* rank 0's address (default NULL: "127.0.0.1") */
    int master_port;             /* rank 0's TCP port for the rendezvous (default 29500) */
    double dist_timeout;         /* seconds a rank waits for another (default 300) */
} dc_finetune_options;
#define DC_FINETUNE_OPTIONS_INIT                                                                \
    {DC_FINETUNE_OPTIONS_VERSION, NULL, NULL, 0, 500, 40, 6, 0.0, 8e-6, 1.3, 5, 50, NULL, 0, 1,  \
     3.0, 1.0, 0.0, DC_CLIP_LOSS_LOG, DC_GRAD_FULL, 1234, 0, NULL, NULL, 0, DC_FLOAT32, NULL, 0, \
     0, /* Version 3 */ 1, 0, NULL, 29500, 300.0}

DC_API dc_status dc_finetune_options_init(dc_finetune_options *options, unsigned version);

/* Dataset presets: the published README's settings for each released base model. */
typedef struct dc_dataset_preset {
    const char *name;            /* "celeba", "afhq", "church", "bedroom", "imagenet" */
    const char *description;
    const char *model_file;      /* the published base weights (docs/weights.md) */
    int image_size;
    int t0, inv_steps, train_steps, test_steps;
    double learning_rate, lr_gamma;
    int epochs, images;
    double clip_weight, l1_weight, id_weight;
    dc_grad_mode grad_mode;
    const char *config_file;     /* its published config ("celeba.yml", ...; docs/weights.md) */
} dc_dataset_preset;

/* Edit presets: the published source and target texts (utils/text_dic.py), the dataset they
 * belong to and, for the released fine-tuned models, the t_0 they were trained with. */
typedef struct dc_edit_preset {
    const char *name;            /* "neanderthal", "pixar", "angry", "makeup", ... */
    const char *dataset;         /* a dataset preset's name */
    const char *source, *target;
    int t0;                      /* 0: the dataset's */
} dc_edit_preset;

/* Preset i (NULL past the last), and by name (NULL if none). */
DC_API const dc_dataset_preset *dc_dataset_preset_at(size_t i);
DC_API const dc_dataset_preset *dc_dataset_preset_find(const char *name);
DC_API const dc_edit_preset *dc_edit_preset_at(size_t i);
DC_API const dc_edit_preset *dc_edit_preset_find(const char *name);
/* Sets the options a preset holds: a dataset preset's numbers, or an edit preset's dataset
 * numbers, then its texts (one pair, pointing into the preset) and its t_0. Apply presets
 * first and explicit choices after them. DC_EINVAL for an unknown name.
 * Errors: DC_EINVAL (NULL, an unknown name). */
DC_API dc_status dc_finetune_options_apply_preset(dc_finetune_options *options,
                                                  const char *name);

/* A fine-tuner over `base` (whose weights are copied: base stays usable and unchanged), CLIP
 * with its tokenizer, an optional identity network (NULL) and the latent cache of the
 * training images, which must have been made with `base` and the options' t0 and inv_steps.
 * Every handle must outlive the fine-tuner; the options (and their texts) are copied.
 * With world_size > 1 it returns once every rank has joined and the ranks agree.
 * Errors: DC_EINVAL (NULL, options out of range, no texts or an empty text, every loss weight
 * 0, an identity weight without a network, a cache of another model or other parameters, image
 * indices beyond the cache, a rank outside the world size; options that differ between the
 * ranks), DC_EIO (the process group not formed within dist_timeout), DC_ENOMEM. */
DC_API dc_status dc_finetuner_new(dc_finetuner **out, dc_model *base, dc_clip *clip,
                                  dc_tokenizer *tokenizer, dc_idnet *idnet,
                                  dc_latent_cache *cache, const dc_finetune_options *options);
DC_API void dc_finetuner_free(dc_finetuner *ft);
/* Trains text pair `pair` from the base weights for every epoch. After epoch e < epochs the
 * weights are written to the epoch file (`path` with ".epochE" before its extension:
 * "ft.pt" -> "ft.epoch2.pt"), which replaces the previous epoch's file; after the last
 * epoch they are written to `path` and the epoch file is removed. Every write replaces its
 * file atomically. The format follows the extension of `path` (any case): ".safetensors",
 * ".delta" (dc_finetuner_save), else a torch.save zip. A progress callback that returns non-zero
 * stops with DC_ECANCELLED; files saved so far stay intact and the fine-tuner usable.
 * In a process group every rank calls it for the same pair; rank 0 alone reads and writes
 * the files.
 * Errors: DC_EINVAL (NULL, pair out of range), DC_EIO (also: a rank lost, or silent for
 * dist_timeout), DC_EFORMAT (an epoch file to resume from that is damaged), DC_ECANCELLED (files saved so far stay intact and the fine-tuner
 * usable), DC_ENOMEM. */
DC_API dc_status dc_finetuner_train(dc_finetuner *ft, size_t pair, const char *path);
/* Writes the current weights: ".delta" files hold fine-tuned minus base as float16
 * (docs/formats.md), ".safetensors" a safetensors state dict, anything else a torch.save zip
 * state dict, both with the base model's key names. Atomic.
 * Errors: DC_EINVAL (NULL, a difference beyond float16's range for a delta), DC_EIO. */
DC_API dc_status dc_finetuner_save(dc_finetuner *ft, const char *path);

/* Writes model - base as a delta file (both models of one architecture). Atomic.
 * Errors: DC_EINVAL (NULL, different tensors or shapes, a difference beyond float16's range),
 * DC_EIO. */
DC_API dc_status dc_model_save_delta(const dc_model *model, const dc_model *base,
                                     const char *path);
/* Loads fine-tuned weights of `base`: a full state dict in any container, or a delta file
 * made for this base model (checked by its fingerprint). The tensors must match the base's
 * names and shapes. The new model shares nothing mutable with `base`. options may be NULL:
 * base's device and dtype; its head layout, image size and config (schedule, var_type) always
 * come from base (options->config_path is not read). Weights of another architecture are
 * DC_EFORMAT, a delta made for another base model DC_EINVAL.
 * Errors: DC_EINVAL (NULL, a delta for another base model, bad options), DC_EIO, DC_EFORMAT
 * (missing, extra or misshapen tensors, a damaged delta), DC_EDEVICE, DC_ENOMEM. */
DC_API dc_status dc_model_load_finetuned(dc_model **out, const dc_model *base,
                                         const char *path, const dc_model_options *options);

/* ---------------------------------------------------------------------------------------
 * Face descriptor
 *
 * A second face identity network: dlib's ResNet face descriptor as face-api's
 * faceRecognitionNet (npm package @vladmandic/face-api 1.7.15, MIT; weights public domain),
 * read from the package's model/face_recognition_model-weights_manifest.json and
 * model/face_recognition_model.bin (`make deps` puts both in third_party/face-api/). A
 * 150x150 RGB face becomes 128 floats; face-api takes descriptors less than 0.6 apart
 * (Euclidean) to be the same person. Faces are not detected or aligned: the caller gives
 * the box around the face.
 * ------------------------------------------------------------------------------------- */

#define DC_FACE_DESCRIPTOR_SIZE 128
#define DC_FACE_INPUT_SIZE 150
#define DC_FACE_SAME_PERSON_DISTANCE 0.6

typedef struct dc_face_descriptor dc_face_descriptor;

/* A square of an image in pixels: left column, top row, side. */
typedef struct dc_face_box {
    int x, y, size;
} dc_face_box;

#define DC_FACE_DESCRIPTOR_OPTIONS_VERSION 1
typedef struct dc_face_descriptor_options {
    unsigned version;
    const char *device;          /* "cpu", "cuda", "cuda:N" or "auto" (default: "auto") */
} dc_face_descriptor_options;
#define DC_FACE_DESCRIPTOR_OPTIONS_INIT {DC_FACE_DESCRIPTOR_OPTIONS_VERSION, "auto"}

DC_API dc_status dc_face_descriptor_options_init(dc_face_descriptor_options *options,
                                                 unsigned version);
/* Loads the network from a tfjs weights manifest and its weights file; weights_path NULL
 * reads the file(s) the manifest names, beside it. options may be NULL (defaults).
 * Errors: DC_EINVAL (NULL manifest, an unknown device or options version), DC_EIO, DC_EFORMAT
 * (a bad manifest, weights missing, misshapen or of an unsupported dtype or quantisation,
 * paths outside the manifest's directory), DC_EDEVICE, DC_ENOMEM. */
DC_API dc_status dc_face_descriptor_load(dc_face_descriptor **out, const char *manifest_path,
                                         const char *weights_path,
                                         const dc_face_descriptor_options *options);
DC_API void dc_face_descriptor_free(dc_face_descriptor *net);
/* Crops `box` (it must lie inside the image; NULL: the centred largest square) and resizes
 * it to size x size with the Lanczos filter of dc_image_to_tensor.
 * Errors: DC_EINVAL (NULL, a box outside the image, a bad size), DC_ENOMEM. */
DC_API dc_status dc_face_crop(const dc_image *img, const dc_face_box *box, int size,
                              dc_image *out);
/* The descriptor of the face in `box` of img (NULL: the centred largest square), cropped and
 * resized to 150x150 as dc_face_crop does. A 150x150 image with box NULL is used as is, and
 * then the result is face-api's computeFaceDescriptor of the same pixels (face-api itself
 * pads other inputs to a square and resizes them bilinearly).
 * Errors: DC_EINVAL (NULL, a box outside the image), DC_ENOMEM. */
DC_API dc_status dc_face_descriptor_compute(dc_face_descriptor *net, const dc_image *img,
                                            const dc_face_box *box,
                                            float descriptor[DC_FACE_DESCRIPTOR_SIZE]);
/* Euclidean distance between two descriptors (face-api's euclideanDistance). */
DC_API dc_status dc_face_distance(const float a[DC_FACE_DESCRIPTOR_SIZE],
                                  const float b[DC_FACE_DESCRIPTOR_SIZE], double *distance);

/* ---------------------------------------------------------------------------------------
 * Face alignment
 *
 * The FFHQ-style alignment the CelebA-HQ and FFHQ models expect (the published edit_one_image
 * with --align_face 1): dlib's HOG frontal face detector (libdlib, the image
 * upsampled once) finds the faces, dlib's 68-landmark shape predictor places the landmarks,
 * and the published align_face maps the quad built from the eyes and the mouth to a square:
 * shrink, crop, reflect padding with a blurred, median-filled border, and Pillow's QUAD
 * transform, reproduced in C. The predictor file (shape_predictor_68_face_landmarks.dat,
 * Debian's libdlib-data; its training data excludes commercial use) is never bundled: its
 * path is an option, by default Debian's. Its structure is checked before dlib reads it.
 * ------------------------------------------------------------------------------------- */

#define DC_FACE_LANDMARK_COUNT 68
#define DC_FACE_LANDMARK_VALUES 136    /* x, y of each landmark */
#define DC_FACE_DEFAULT_PREDICTOR "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"
/* The largest aligned size dc_face_align and dc_face_align_landmarks take (the padded working
 * image is also bounded: 64 Mi pixels, else DC_ENOMEM). */
#define DC_FACE_MAX_ALIGN_SIZE 4096

/* A detected face: dlib's detection rectangle (right and bottom inclusive) and the 68 iBUG
 * landmarks in pixels, points[2 i] = x and points[2 i + 1] = y of landmark i: the layout of
 * the published get_landmark's int64 (68, 2) array. */
typedef struct dc_face {
    int64_t left, top, right, bottom;
    int64_t points[DC_FACE_LANDMARK_VALUES];
} dc_face;

typedef struct dc_face_aligner dc_face_aligner;

#define DC_FACE_ALIGNER_OPTIONS_VERSION 1
typedef struct dc_face_aligner_options {
    unsigned version;
    const char *predictor_path;  /* NULL: DC_FACE_DEFAULT_PREDICTOR */
    /* The detector's image upsamplings (0..2) and the score a detection must exceed. The
     * defaults, 0 and 1.0, are dlib's C++ call detector(img, 1) (the 1 is the threshold),
     * which made the conformance data; the published Python call detector(img, 1) is
     * upsample 1 with threshold 0, which also finds smaller, less certain faces
     * (docs/deviations.md). */
    int upsample;
    double adjust_threshold;
    /* Detection runs on a copy downscaled (Lanczos) to at most this many pixels, the
     * rectangles scaled back; the landmarks are always placed on the full image. Bounds the
     * detector's memory and time (the upsampled scan is 4x the pixels). Default 4000000;
     * 0: no limit (the published behaviour). Smaller photos are detected as published. */
    int64_t max_detect_pixels;
} dc_face_aligner_options;
#define DC_FACE_ALIGNER_OPTIONS_INIT {DC_FACE_ALIGNER_OPTIONS_VERSION, NULL, 0, 1.0, 4000000}

DC_API dc_status dc_face_aligner_options_init(dc_face_aligner_options *options,
                                              unsigned version);
/* Defaults: Debian's predictor, upsample 0, adjust_threshold 1.0, max_detect_pixels 4000000. */
/* Loads the detector and the shape predictor once (options may be NULL). A missing file is
 * DC_EIO; a file that is not a 68-landmark dlib shape predictor (truncated, corrupt, another
 * model) DC_EFORMAT naming what is wrong. */
DC_API dc_status dc_face_aligner_new(dc_face_aligner **out,
                                     const dc_face_aligner_options *options);
DC_API void dc_face_aligner_free(dc_face_aligner *aligner);

/* Every face the detector finds in `img`, in the detector's order (the published code aligns
 * the last), with its landmarks: *faces (release with dc_faces_free) and *count; no face is
 * DC_OK with *count 0 and *faces NULL. */
DC_API dc_status dc_face_detect(dc_face_aligner *aligner, const dc_image *img, dc_face **faces,
                                size_t *count);
DC_API void dc_faces_free(dc_face *faces);
/* The aligned face of the last detection as a new size x size image (1..4096; the published
 * call uses the model's image size, 256); `face` (may be NULL) receives that detection.
 * DC_ENOTFOUND when no face is found (the published edit then uses the photo as given). */
DC_API dc_status dc_face_align(dc_face_aligner *aligner, const dc_image *img, int size,
                               dc_image *out, dc_face *face);
/* The published align_face with given landmarks (x, y pairs as in dc_face): the quad transform to
 * transform_size, then a Lanczos resize to output_size when that is smaller (transform_size
 * 0: output_size, the published call). DC_EINVAL for degenerate landmarks (eyes and mouth at
 * one point), a face outside the image or too large for it. */
DC_API dc_status dc_face_align_landmarks(const dc_image *img,
                                         const int64_t points[DC_FACE_LANDMARK_VALUES],
                                         int output_size, int transform_size, dc_image *out);

#ifdef __cplusplus
}
#endif
#endif /* DIFFCLIP_H */
