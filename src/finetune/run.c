#include "run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/error.h"
#include "../io/delta.h"
#include "../io/file.h"

_Static_assert(IO_DELTA_BASE_ID_SIZE == LATENT_CACHE_FINGERPRINT_SIZE,
               "a delta names its base model by the model's fingerprint");

/* ---- files of fine-tuned weights ---- */

int ft_write_weights(const nn_unet *model, const nn_unet *base, const char *base_fingerprint,
                     const char *path)
{
    if (io_has_extension(path, ".delta"))
        return nn_unet_write_delta(model, base, base_fingerprint, path);
    /* The model's names (no "module." prefix, as the published code saves
     * model.module.state_dict()). */
    io_state_dict sd;
    DCI_TRY(nn_unet_export(model, &sd));
    dc_named_tensor *named;
    int status = io_state_dict_named(&sd, &named);
    if (status == DC_OK) {
        status = io_checkpoint_write_by_extension(path, named, sd.count);
        free(named);
    }
    io_state_dict_free(&sd);
    return status;
}

int ft_read_weights(nn_unet **out, char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE],
                    const nn_unet *base, const char *base_fingerprint, const char *path,
                    int device, dc_dtype dtype)
{
    *out = NULL;
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    io_state_dict sd;
    int status;
    if (io_delta_detect(file.data, file.size)) {
        char base_id[IO_DELTA_BASE_ID_SIZE];
        status = io_delta_read_buffer(file.data, file.size, path, base_id, &sd);
        if (status == DC_OK && strcmp(base_id, base_fingerprint) != 0)
            status = dci_err(DC_EINVAL, "%s: a delta for another base model (made for %s, "
                             "this base is %s)", path, base_id, base_fingerprint);
        if (status == DC_OK)
            status = nn_unet_apply_delta(out, base, &sd, path, device, dtype);
    } else {
        status = io_checkpoint_read_buffer(file.data, file.size, path, &sd);
        if (status == DC_OK)
            status = nn_unet_load_like(out, &sd, path, base, device, dtype);
    }
    io_unmap_file(&file);
    if (status == DC_OK)
        status = latent_cache_fingerprint_state_dict(&sd, fingerprint);
    io_state_dict_free(&sd);
    if (status != DC_OK) {
        nn_unet_free(*out);
        *out = NULL;
    }
    return status;
}

/* `path` with ".epochE" before the extension of its file name (or at its end). */
static char *epoch_path(const char *path, int epoch)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    size_t head = dot && dot != name ? (size_t)(dot - path) : strlen(path);
    size_t n = strlen(path) + 32;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s.epoch%d%s", (int)head, path, epoch, path + head);
    return out;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int remove_file(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return dci_err(DC_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return DC_OK;
}

/* ---- training ---- */

/* Copies every weight of `from` into the trained model. */
static int set_weights(ft_run *run, const nn_unet *from)
{
    for (size_t i = 0; i < nn_unet_tensor_count(run->model); i++)
        DCI_TRY(ct_copy_(nn_unet_tensor(run->model, i), nn_unet_tensor(from, i)));
    return DC_OK;
}

static int load_weights(ft_run *run, const char *path)
{
    nn_unet *saved;
    char fingerprint[LATENT_CACHE_FINGERPRINT_SIZE];
    DCI_TRY(ft_read_weights(&saved, fingerprint, run->base, run->base_fingerprint, path,
                            nn_unet_device(run->model), DC_FLOAT32));
    int status = set_weights(run, saved);
    nn_unet_free(saved);
    return status;
}

static int report_step(void *user, const ft_step_report *r)
{
    ft_run *run = user;
    dc_progress *p = &run->report;
    if (r->optimised) {
        p->loss_clip = r->loss_clip;
        p->loss_l1 = r->loss_l1;
        p->loss_id = r->loss_id;
        p->loss_total = r->loss_total;
        p->grad_norm = r->grad_norm;
    }
    p->step = (int)r->step + 1;
    p->steps = (int)r->steps;
    run->steps_done++;
    double elapsed = dci_now() - run->started;
    p->seconds_per_image = elapsed * (double)r->steps / (double)run->steps_done;
    p->eta_seconds = elapsed * (double)(run->steps_total - run->steps_done) /
                     (double)run->steps_done;
    const dc_finetune_options *o = run->options;
    return o->progress ? o->progress(o->progress_user, p) : 0;
}

/* The cache entries of images first..first+count-1 of the epoch as (count, C, H, W). */
static int load_batch(ft_run *run, size_t first, size_t count, ct_tensor **x0,
                      ct_tensor **x_lat)
{
    int32_t h, w;
    latent_cache_size(run->cache, &h, &w);
    int64_t c = run->channels;
    size_t per_image = (size_t)c * (size_t)h * (size_t)w;
    float *buffers = malloc(2 * count * per_image * sizeof *buffers);
    if (!buffers)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory for a batch");
    float *x0s = buffers, *lats = buffers + count * per_image;
    int status = DC_OK;
    for (size_t k = 0; status == DC_OK && k < count; k++) {
        size_t i = first + k;
        size_t entry = run->options->image_indices ? run->options->image_indices[i] : i;
        status = latent_cache_get(run->cache, entry, x0s + k * per_image, NULL,
                                  lats + k * per_image);
    }
    int64_t shape[4] = {(int64_t)count, c, h, w};
    int device = nn_unet_device(run->model);
    if (status == DC_OK)
        status = ct_from_host(x0, x0s, DC_FLOAT32, 4, shape, device);
    if (status == DC_OK)
        status = ct_from_host(x_lat, lats, DC_FLOAT32, 4, shape, device);
    free(buffers);
    return status;
}

/* In a process group of W ranks with batch size B, whole batch k is images k*W*B ..
 * (k+1)*W*B - 1 of the group's list; this rank's part of it (its entries k*B, k*B + 1, ...)
 * and its share of the whole batch. A rank with no image there trains its first image with
 * share 0, which keeps it in step with the others' collectives. */
typedef struct batch_part {
    size_t first, count;
    double share;
} batch_part;

static batch_part part_of_batch(const ft_run *run, size_t k, size_t images)
{
    size_t batch = (size_t)run->options->batch_size;
    size_t world = (size_t)ct_dist_world(run->dist), rank = (size_t)ct_dist_rank(run->dist);
    size_t whole_first = k * batch * world;
    size_t whole = images - whole_first < batch * world ? images - whole_first : batch * world;
    size_t mine = 0;
    while (mine < batch && whole_first + mine * world + rank < images)
        mine++;
    if (mine == 0)
        return (batch_part){0, 1, 0.0};
    return (batch_part){k * batch, mine, (double)mine / (double)whole};
}

static int train_epoch(ft_run *run, size_t images, size_t batches)
{
    for (size_t k = 0; k < batches; k++) {
        batch_part part = part_of_batch(run, k, images);
        run->report.image = (int)k + 1;
        run->trainer->share = part.share;
        size_t mark = ct_pool_begin();
        ct_tensor *x0 = NULL, *x_lat = NULL;
        int status = load_batch(run, part.first, part.count, &x0, &x_lat);
        if (status == DC_OK)
            status = ft_trainer_step(run->trainer, x0, x_lat);
        ct_pool_end(mark, NULL, 0);
        DCI_TRY(status);
    }
    return DC_OK;
}

/* In a process group: every rank learns whether rank 0's `status` (a file read or written)
 * failed, and fails with it. Elsewhere the status itself. */
static int rank0_outcome(ft_run *run, int status, const char *what)
{
    if (!run->dist)
        return status;
    double failed = ct_dist_rank(run->dist) == 0 && status != DC_OK;
    int reduced = ct_dist_allreduce_f64(run->dist, &failed, 1);
    if (status != DC_OK)
        return status;
    DCI_TRY(reduced);
    if (failed > 0)
        return dci_err(DC_EIO, "rank %d: rank 0 failed to %s", ct_dist_rank(run->dist), what);
    return DC_OK;
}

static int is_writer(const ft_run *run) { return ct_dist_rank(run->dist) == 0; }

/* After epoch `done` (1-based): the epoch file, or `path` after the last epoch; then the
 * previous epoch's file goes. Only rank 0 writes. */
static int save_epoch(ft_run *run, const char *path, int done)
{
    int status = DC_OK;
    if (is_writer(run)) {
        int last = done == run->options->epochs;
        char *saved = last ? NULL : epoch_path(path, done);
        char *previous = done > 1 ? epoch_path(path, done - 1) : NULL;
        status = (!last && !saved) || (done > 1 && !previous)
                     ? dci_err(DC_ENOMEM, "fine-tuning: out of memory")
                     : ft_write_weights(run->model, run->base, run->base_fingerprint,
                                        last ? path : saved);
        if (status == DC_OK && previous)
            status = remove_file(previous);
        free(saved);
        free(previous);
    }
    return rank0_outcome(run, status, "write the weights");
}

/* The epochs from `start` on, saving after each. */
static int train_epochs(ft_run *run, int start, const char *path)
{
    const dc_finetune_options *o = run->options;
    size_t available = run->dist ? run->group_images
                       : o->image_indices ? o->image_count : latent_cache_count(run->cache);
    size_t images = available < (size_t)o->images ? available : (size_t)o->images;
    if (images == 0)
        return dci_err(DC_EINVAL, "fine-tuning: the latent cache holds no training image");
    size_t whole = (size_t)o->batch_size * (size_t)ct_dist_world(run->dist);
    size_t batches = (images + whole - 1) / whole;
    double lr = o->learning_rate * pow(o->lr_gamma, start);
    run->report.images = (int)batches;
    run->started = dci_now();
    run->steps_done = 0;
    run->steps_total = (long long)(o->epochs - start) * (long long)batches * o->train_steps;
    /* Ranks draw different noise (eta > 0): one process draws one batch's. */
    DCI_TRY(ct_manual_seed(o->seed + (uint64_t)ct_dist_rank(run->dist)));
    for (int epoch = start; epoch < o->epochs; epoch++, lr *= o->lr_gamma) {
        ft_trainer_set_lr(run->trainer, lr);
        run->report.epoch = epoch + 1;
        run->report.learning_rate = lr;
        DCI_TRY(train_epoch(run, images, batches));
        DCI_TRY(save_epoch(run, path, epoch + 1));
    }
    return DC_OK;
}

/* With `resume`: the final file, or the latest epoch file, that a previous run left. */
static int resume_point(ft_run *run, const char *path, int *start)
{
    *start = 0;
    if (file_exists(path)) {
        DCI_TRY(load_weights(run, path));
        *start = run->options->epochs;
        return DC_OK;
    }
    for (int epoch = run->options->epochs - 1; epoch >= 1 && *start == 0; epoch--) {
        char *saved = epoch_path(path, epoch);
        if (!saved)
            return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
        int status = DC_OK;
        if (file_exists(saved)) {
            status = load_weights(run, saved);
            *start = epoch;
        }
        free(saved);
        DCI_TRY(status);
    }
    return DC_OK;
}

/* In a process group, rank 0 finds the resume point and the others get it with its
 * weights. */
static int group_resume_point(ft_run *run, const char *path, int *start)
{
    int status = is_writer(run) ? resume_point(run, path, start) : DC_OK;
    DCI_TRY(rank0_outcome(run, status, "read the files to resume from"));
    int32_t epoch = *start;
    DCI_TRY(ct_dist_broadcast_bytes(run->dist, &epoch, sizeof epoch));
    *start = epoch;
    if (*start == 0)
        return DC_OK;
    return ct_dist_broadcast_(run->dist, run->trainer->params, nn_unet_tensor_count(run->model));
}

int ft_run_train(ft_run *run, const char *source, const char *target, const char *path)
{
    memset(&run->report, 0, sizeof run->report);
    run->report.version = DC_PROGRESS_VERSION;
    run->report.stage = "finetune";
    run->report.epochs = run->options->epochs;
    run->trainer->on_step = report_step;
    run->trainer->user = run;
    run->trainer->dist = run->dist;
    run->trainer->share = 1.0;
    DCI_TRY(set_weights(run, run->base));
    DCI_TRY(ft_trainer_begin(run->trainer, source, target));
    int start = 0;
    if (run->options->resume)
        DCI_TRY(run->dist ? group_resume_point(run, path, &start)
                          : resume_point(run, path, &start));
    if (start >= run->options->epochs)
        return DC_OK;
    return train_epochs(run, start, path);
}
