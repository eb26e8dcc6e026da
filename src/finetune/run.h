/* A fine-tuning run over the trainer (finetuner.h): epochs of batches from a latent cache,
 * the learning-rate schedule, progress reports, the weights saved after every epoch and a
 * killed run resumed; and the files of fine-tuned weights (a state dict, or a delta from the
 * base model) written and read. */
#ifndef DC_SRC_FINETUNE_RUN_H
#define DC_SRC_FINETUNE_RUN_H

#include "../cache/latent_cache.h"
#include "../nn/unet.h"
#include "diffclip.h"
#include "finetuner.h"

typedef struct ft_run {
    /* set by the caller; nothing owned */
    nn_unet *model;                      /* the trained copy of base's weights, float32 */
    const nn_unet *base;
    const char *base_fingerprint;        /* LATENT_CACHE_FINGERPRINT_SIZE, NUL-terminated */
    const latent_cache *cache;           /* the training images' latents */
    int64_t channels;                    /* of the cache's images; their size is the file's */
    const dc_finetune_options *options;  /* checked; indices below the cache's count */
    ft_trainer *trainer;                 /* over model */
    const latent_cache *test_cache;      /* options->test_images test images; its images have
                                          * test_channels channels */
    int64_t test_channels;
    int epoch_reports;                   /* send "finetune-epoch" reports: the caller's options
                                          * are of version 2 or later, which knows them */
    /* Data parallelism (ft_trainer's dist): this rank's cache entries are its share of the
     * group's list of group_images, rank r holding images r, r + W, ... */
    ct_dist *dist;                       /* not owned; NULL: one process */
    size_t group_images;
    /* the run in progress */
    dc_progress report;
    double started;
    long long steps_done, steps_total;
    double epoch_sums[4];                /* the epoch's clip, l1, id and total losses */
    long long epoch_optimised;           /* and how many Adam steps they sum */
} ft_run;

/* Trains from base's weights for every epoch with texts source -> target; after epoch e <
 * epochs the weights go to `path` with ".epochE" before its extension, after the last to
 * `path` (the previous epoch's file is then removed). options->resume continues from the
 * latest file a previous run left. Before the first epoch and after each, the test images
 * (if any) are edited into the epoch's grid and a "finetune-epoch" report goes out. In a
 * process group every rank calls it; rank 0 alone reads and writes the files (weights and
 * grids) and the others learn of its failures. */
int ft_run_train(ft_run *run, const char *source, const char *target, const char *path);

/* Writes model's weights: a delta from base (".delta", named by base_fingerprint), a
 * safetensors (".safetensors") or a torch.save zip state dict with base's key names. */
int ft_write_weights(const nn_unet *model, const nn_unet *base, const char *base_fingerprint,
                     const char *path);
/* Fine-tuned weights of base from a delta made for base_fingerprint (DC_EINVAL for another
 * base) or a state dict, on `device` in `dtype`; `fingerprint` receives the fingerprint of
 * what the file holds. */
int ft_read_weights(nn_unet **out, char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE],
                    const nn_unet *base, const char *base_fingerprint, const char *path,
                    int device, dc_dtype dtype);

#endif
