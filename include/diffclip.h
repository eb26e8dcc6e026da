/*
 * libdiffclip: text-guided image manipulation with diffusion models (DiffusionCLIP).
 *
 * One public header, C11. Every fallible function returns a dc_status (DC_OK = 0, negative
 * on failure); the message of the last failure on the calling thread is dc_last_error().
 *
 * Thread rules: a handle is used by one thread at a time; different handles may be used on
 * different threads concurrently. Free functions accept NULL.
 *
 * Ownership: buffers a function fills in a caller's dc_tensor or dc_image are allocated by the
 * library and released with dc_tensor_free / dc_image_free.
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
#define DC_VERSION_MINOR 1
#define DC_VERSION_PATCH 0
#define DC_VERSION_STRING "0.1.0"

/* Status codes: 0 is success, negative values say what kind of failure. */
typedef enum dc_status {
    DC_OK = 0,
    DC_EINVAL = -1,      /* invalid argument (NULL, bad shape, out-of-range value) */
    DC_EIO = -2,         /* a file could not be opened, read or written */
    DC_EFORMAT = -3,     /* a file is malformed, truncated, hostile or unsupported */
    DC_ENOMEM = -4,      /* out of memory, or a size over the library's limits */
    DC_EDEVICE = -5,     /* the requested device is unavailable or failed */
    DC_ECANCELLED = -6,  /* a progress callback asked to stop */
    DC_EINTERNAL = -7    /* a bug in the library or its tensor backend */
} dc_status;

/* The message of the last failure on this thread ("" if none). Valid until the next failing
 * call on this thread. Never NULL. */
DC_API const char *dc_last_error(void);
/* A short constant name for a status ("DC_EFORMAT"). */
DC_API const char *dc_status_name(dc_status status);
/* The library's version, e.g. "0.1.0". */
DC_API const char *dc_version(void);

/* ---------------------------------------------------------------------------------------
 * Runtime
 * ------------------------------------------------------------------------------------- */

/* Number of CPU threads for tensor work. n <= 0 means the number of online cores, which is
 * also the default (environment variable DIFFCLIP_NUM_THREADS overrides the default).
 * Process-wide. */
DC_API dc_status dc_set_num_threads(int n);
DC_API int dc_get_num_threads(void);
/* 1 if a CUDA device can be used, else 0. */
DC_API int dc_cuda_available(void);

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
 * order, object and structured arrays, big-endian data and other dtypes are refused. */
DC_API dc_status dc_npy_read(const char *path, dc_tensor *out);
/* Writes any dtype but bfloat16 (which .npy lacks) with the version 1.0 header numpy writes;
 * replaces `path` atomically. */
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
 * instead). CMYK JPEGs are refused. */
DC_API dc_status dc_image_read(const char *path, dc_image *out);
/* Writes PNG or JPEG (quality 95) chosen by the extension (.png, .jpg, .jpeg, any case;
 * others are DC_EINVAL); atomic replace. */
DC_API dc_status dc_image_write(const char *path, const dc_image *img);
DC_API void dc_image_free(dc_image *img);

/* Centre-crops `img` to a square (torchvision's CenterCrop offsets), resizes it to
 * size x size exactly as Pillow's Image.resize(..., LANCZOS) (alias ANTIALIAS; Lanczos-3
 * whose support widens with the reduction factor; also used when enlarging) and returns a
 * 1x3xsize x size float32 tensor in [-1, 1]: (v / 255 - 0.5) * 2. */
DC_API dc_status dc_image_to_tensor(const dc_image *img, int size, dc_tensor *out);
/* Converts image `index` of an NCHW float32 tensor in [-1, 1] (C = 3) to an image, as
 * torchvision's save_image does: clamp to [0, 1], x * 255 + 0.5, truncate. */
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
 * ({'state_dict': sd}) or a list ([sd, ...]) is found; names are as the file holds them. */
DC_API dc_status dc_checkpoint_open(dc_checkpoint **out, const char *path);
DC_API void dc_checkpoint_free(dc_checkpoint *ckpt);
DC_API dc_container dc_checkpoint_container(const dc_checkpoint *ckpt);
DC_API size_t dc_checkpoint_count(const dc_checkpoint *ckpt);
/* Name of tensor i (NUL-terminated, owned by ckpt; "-" for an .npy file); NULL if i is out
 * of range. */
DC_API const char *dc_checkpoint_name(const dc_checkpoint *ckpt, size_t i);
/* Tensor i as stored (dtype, shape, data owned by ckpt: do not free). */
DC_API dc_status dc_checkpoint_tensor(const dc_checkpoint *ckpt, size_t i, dc_tensor *view);
/* Index of the tensor called `name`, or DC_EINVAL if there is none. */
DC_API dc_status dc_checkpoint_find(const dc_checkpoint *ckpt, const char *name, size_t *index);

typedef struct dc_named_tensor {
    const char *name;
    dc_tensor tensor;
} dc_named_tensor;

typedef enum dc_checkpoint_format {
    DC_FORMAT_AUTO = 0,          /* by extension: .safetensors, else torch.save zip */
    DC_FORMAT_TORCH_ZIP = 1,     /* readable by torch.load */
    DC_FORMAT_SAFETENSORS = 2
} dc_checkpoint_format;

/* Writes `count` tensors as a state dict (an OrderedDict in file order for torch.save);
 * replaces `path` atomically. */
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

#define DC_MODEL_OPTIONS_VERSION 1
typedef struct dc_model_options {
    unsigned version;
    const char *device;      /* "cpu", "cuda", "cuda:N" or "auto" (default: "auto") */
    /* DC_FLOAT32 (default), DC_BFLOAT16 (the CPU, where AVX512-BF16 makes it about twice as
     * fast, or CUDA) or DC_FLOAT16 (CUDA only): the dtype the UNet computes in. Inversion and
     * generation keep the latent and the step maths in float32 (docs/performance.md gives
     * the differences from float32). */
    dc_dtype dtype;
    int image_size;          /* 0: inferred (8 * 2^(levels - 1), true of every published model) */
    int head_channels;       /* ADM channels per attention head; 0: 64, as published */
} dc_model_options;

DC_API void dc_model_options_init(dc_model_options *options, unsigned version);

/* Loads a diffusion model from any checkpoint container; `options` may be NULL. The weights of
 * a loaded model are immutable: loading the same unchanged file (same device, inode, size and
 * modification time) with the same options again returns a handle that shares them, so that
 * several handles on one base model hold its weights once. Handles sharing weights may still
 * be used on different threads concurrently. */
DC_API dc_status dc_model_load(dc_model **out, const char *path,
                               const dc_model_options *options);
DC_API void dc_model_free(dc_model *model);

#define DC_MAX_LEVELS 12
typedef struct dc_model_info {
    dc_model_family family;
    int image_size;
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

DC_API dc_status dc_model_get_info(const dc_model *model, dc_model_info *info);
/* A human-readable description of what was inferred (several lines) into buf. */
DC_API dc_status dc_model_describe(const dc_model *model, char *buf, size_t size);

/* The raw network output for x (N, 3, H, W) float32 and t (N) float32 timesteps:
 * (N, out_channels, H, W) float32. */
DC_API dc_status dc_model_eps(dc_model *model, const dc_tensor *x, const dc_tensor *t,
                              dc_tensor *out);

/* ---------------------------------------------------------------------------------------
 * Progress
 * ------------------------------------------------------------------------------------- */

#define DC_PROGRESS_VERSION 1
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
    int num_timesteps;           /* T (default 1000) */
    double beta_start;           /* linear betas (default 1e-4 .. 0.02) */
    double beta_end;
    dc_progress_fn progress;     /* may be NULL */
    void *progress_user;
} dc_diffusion_options;

DC_API void dc_diffusion_options_init(dc_diffusion_options *options, unsigned version);

/* Deterministic DDIM inversion of x0 (N, 3, H, W) in [-1, 1] to a latent at t0, in `steps`
 * steps (steps - 1 model calls). */
DC_API dc_status dc_invert(dc_model *model, const dc_tensor *x0,
                           const dc_diffusion_options *options, dc_tensor *latent);
/* Generation from a latent at t0 back to an image (steps model calls). */
DC_API dc_status dc_generate(dc_model *model, const dc_tensor *latent,
                             const dc_diffusion_options *options, dc_tensor *out);
/* The stochastic forward x_t = sqrt(abar[t0-1]) x0 + sqrt(1 - abar[t0-1]) noise, with the
 * given noise (x0's shape) or, when noise is NULL, noise drawn with options->seed. */
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
DC_API dc_status dc_compare_images(const dc_tensor *a, const dc_tensor *b,
                                   dc_image_metrics *metrics);

/* ---------------------------------------------------------------------------------------
 * Latent cache: per image (x0, x_rec, x_lat) for one model and one set of parameters, kept
 * in one file (docs/formats.md) and reused when every parameter matches.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_latent_cache dc_latent_cache;

/* Opens (or prepares to create) the cache at `path` for `model`, inverting with
 * inversion->t0 and inversion->steps and reconstructing x_rec with `gen_steps` steps. A file
 * made with another model or other parameters is refused (DC_EINVAL naming the difference).
 * The model must outlive the cache. */
DC_API dc_status dc_latent_cache_open(dc_latent_cache **out, const char *path, dc_model *model,
                                      const dc_diffusion_options *inversion, int gen_steps);
DC_API void dc_latent_cache_free(dc_latent_cache *cache);
DC_API size_t dc_latent_cache_count(const dc_latent_cache *cache);
/* Finds x0 (1, 3, H, W) in the cache, or inverts and reconstructs it and appends it to the
 * file (atomically); *index receives its entry. */
DC_API dc_status dc_latent_cache_add(dc_latent_cache *cache, const dc_tensor *x0,
                                     size_t *index);
/* Entry `index`; any output may be NULL. */
DC_API dc_status dc_latent_cache_get(const dc_latent_cache *cache, size_t index, dc_tensor *x0,
                                     dc_tensor *x_rec, dc_tensor *x_lat);

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

/* Reads the vocabulary `vocab_path` (bpe_simple_vocab_16e6.txt.gz). */
DC_API dc_status dc_tokenizer_new(dc_tokenizer **out, const char *vocab_path);
DC_API void dc_tokenizer_free(dc_tokenizer *tok);
/* Tokenizes `count` NUL-terminated UTF-8 texts into `out`, an int64 [count, context_length]
 * tensor (allocated; release with dc_tensor_free): row i is 49406 (<|startoftext|>), the
 * BPE ids of texts[i], 49407 (<|endoftext|>), then zeros. A text needing more than
 * context_length tokens is DC_EINVAL naming its index, unless `truncate` is non-zero: then
 * it is cut to context_length tokens, the last one 49407. Invalid UTF-8 is DC_EINVAL. */
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

DC_API void dc_clip_options_init(dc_clip_options *options, unsigned version);
/* options may be NULL (defaults). */
DC_API dc_status dc_clip_load(dc_clip **out, const char *path, const dc_clip_options *options);
DC_API void dc_clip_free(dc_clip *clip);
/* The side of the square images encode_image takes (224 for ViT-B/16), and the feature
 * size (512). */
DC_API int dc_clip_input_size(const dc_clip *clip);
DC_API int dc_clip_embed_dim(const dc_clip *clip);

/* DiffusionCLIP's preprocessing of float32 images (N, 3, H, W) in [-1, 1]: (x + 1) / 2,
 * bicubic resize of the shorter side to the input size (no antialias), centre crop, CLIP's
 * mean and std. */
DC_API dc_status dc_clip_preprocess(dc_clip *clip, const dc_tensor *x, dc_tensor *out);
/* CLIP's own preprocessing of a photo (clip.load's transform for PIL images): the shorter
 * side resized to the input size S as torchvision's Resize(S, BICUBIC) does it on a PIL
 * image (Pillow's 8-bit bicubic resampling, reproduced bit for bit), centre crop S x S,
 * x / 255, CLIP's mean and std -> float32 (1, 3, S, S) for dc_clip_encode_image. */
DC_API dc_status dc_clip_preprocess_image(const dc_clip *clip, const dc_image *img,
                                          dc_tensor *out);
/* x: preprocessed float32 (N, 3, S, S) -> float32 (N, embed_dim), not normalised. */
DC_API dc_status dc_clip_encode_image(dc_clip *clip, const dc_tensor *x, dc_tensor *features);
/* tokens: int64 or int32 (N, 77) CLIP tokens -> float32 (N, embed_dim), not normalised. */
DC_API dc_status dc_clip_encode_text(dc_clip *clip, const dc_tensor *tokens,
                                     dc_tensor *features);
/* The directional CLIP loss of editing x_src (described by `source`) into x_trg (described
 * by `target`), both float32 (N, 3, H, W) in [-1, 1]. losses[0] = L_dir, losses[1] =
 * -log((2 - L_dir) / 2). If grad is not NULL it receives d loss / d x_trg (shape of x_trg) of
 * the options' loss form. The text direction (79 prompt templates) is computed once per
 * (source, target) and kept in the clip. */
DC_API dc_status dc_clip_loss(dc_clip *clip, dc_tokenizer *tokenizer, const char *source,
                              const char *target, const dc_tensor *x_src,
                              const dc_tensor *x_trg, double losses[2], dc_tensor *grad);

#define DC_IDNET_OPTIONS_VERSION 1
typedef struct dc_idnet_options {
    unsigned version;
    const char *device;          /* "cpu" (default), "cuda", "cuda:N" or "auto" */
} dc_idnet_options;

DC_API void dc_idnet_options_init(dc_idnet_options *options, unsigned version);
/* options may be NULL (defaults). */
DC_API dc_status dc_idnet_load(dc_idnet **out, const char *path,
                               const dc_idnet_options *options);
DC_API void dc_idnet_free(dc_idnet *net);
/* Identity features of aligned float32 faces (N, 3, H, W) in [-1, 1] (256 x 256 as in
 * DiffusionCLIP): the face crop [35:223, 32:220] (scaled for other sizes), average pooling to
 * 112 x 112, the network -> float32 (N, 512), L2-normalised. */
DC_API dc_status dc_idnet_features(dc_idnet *net, const dc_tensor *x, dc_tensor *features);
/* The identity loss between sources x0 and edits x_hat: *loss = mean of the per-sample
 * 1 - <f(x_hat), f(x0)>; per_sample (float32 (N,)) and grad (d loss / d x_hat) may be NULL. */
DC_API dc_status dc_idnet_id_loss(dc_idnet *net, const dc_tensor *x0, const dc_tensor *x_hat,
                                  double *loss, dc_tensor *per_sample, dc_tensor *grad);

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

/* Loads the network from a tfjs weights manifest and its weights file; weights_path NULL
 * reads the file(s) the manifest names, beside it. device: "cpu", "cuda", "cuda:N" or
 * "auto" (NULL: "auto"). */
DC_API dc_status dc_face_descriptor_load(dc_face_descriptor **out, const char *manifest_path,
                                         const char *weights_path, const char *device);
DC_API void dc_face_descriptor_free(dc_face_descriptor *net);
/* Crops `box` (it must lie inside the image; NULL: the centred largest square) and resizes
 * it to size x size with the Lanczos filter of dc_image_to_tensor. */
DC_API dc_status dc_face_crop(const dc_image *img, const dc_face_box *box, int size,
                              dc_image *out);
/* The descriptor of the face in `box` of img (NULL: the centred largest square), cropped and
 * resized to 150x150 as dc_face_crop does. A 150x150 image with box NULL is used as is, and
 * then the result is face-api's computeFaceDescriptor of the same pixels (face-api itself
 * pads other inputs to a square and resizes them bilinearly). */
DC_API dc_status dc_face_descriptor_compute(dc_face_descriptor *net, const dc_image *img,
                                            const dc_face_box *box,
                                            float descriptor[DC_FACE_DESCRIPTOR_SIZE]);
/* Euclidean distance between two descriptors (face-api's euclideanDistance). */
DC_API dc_status dc_face_distance(const float a[DC_FACE_DESCRIPTOR_SIZE],
                                  const float b[DC_FACE_DESCRIPTOR_SIZE], double *distance);

#ifdef __cplusplus
}
#endif
#endif /* DIFFCLIP_H */
