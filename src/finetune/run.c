#include "run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/error.h"
#include "../diffusion/generator.h"
#include "../io/delta.h"
#include "../io/file.h"
#include "../io/image.h"

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

/* `path` with ".epochE" before the extension of its file name (or at its end), and
 * `extension` in place of that extension when not NULL. */
static char *epoch_file(const char *path, int epoch, const char *extension)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    size_t head = dot && dot != name ? (size_t)(dot - path) : strlen(path);
    const char *tail = extension ? extension : path + head;
    size_t n = head + strlen(tail) + 32;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s.epoch%d%s", (int)head, path, epoch, tail);
    return out;
}

static char *epoch_path(const char *path, int epoch) { return epoch_file(path, epoch, NULL); }

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
    return status == DC_OK ? ft_trainer_sync(run->trainer) : status;
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
        double losses[4] = {r->loss_clip, r->loss_l1, r->loss_id, r->loss_total};
        for (int i = 0; i < 4; i++)
            run->epoch_sums[i] += losses[i];
        run->epoch_optimised++;
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

/* Entries first..first+count-1 of `cache` (through `indices` when not NULL) as
 * (count, C, H, W) tensors on the model's device: the images, their cached reconstructions
 * (x_rec may be NULL) and their latents. */
static int load_entries(ft_run *run, const latent_cache *cache, int64_t c, const size_t *indices,
                        size_t first, size_t count, ct_tensor **x0, ct_tensor **x_rec,
                        ct_tensor **x_lat)
{
    int32_t h, w;
    latent_cache_size(cache, &h, &w);
    size_t per_image = (size_t)c * (size_t)h * (size_t)w;
    float *buffers = malloc(3 * count * per_image * sizeof *buffers);
    if (!buffers)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory for a batch");
    float *x0s = buffers, *lats = buffers + count * per_image;
    float *recs = buffers + 2 * count * per_image;
    int status = DC_OK;
    for (size_t k = 0; status == DC_OK && k < count; k++) {
        size_t i = first + k;
        size_t entry = indices ? indices[i] : i;
        status = latent_cache_get(cache, entry, x0s + k * per_image,
                                  x_rec ? recs + k * per_image : NULL, lats + k * per_image);
    }
    int64_t shape[4] = {(int64_t)count, c, h, w};
    int device = nn_unet_device(run->model);
    if (status == DC_OK)
        status = ct_from_host(x0, x0s, DC_FLOAT32, 4, shape, device);
    if (status == DC_OK)
        status = ct_from_host(x_lat, lats, DC_FLOAT32, 4, shape, device);
    if (status == DC_OK && x_rec)
        status = ct_from_host(x_rec, recs, DC_FLOAT32, 4, shape, device);
    free(buffers);
    return status;
}

/* The cache entries of images first..first+count-1 of the epoch. */
static int load_batch(ft_run *run, size_t first, size_t count, ct_tensor **x0,
                      ct_tensor **x_lat)
{
    return load_entries(run, run->cache, run->channels, run->options->image_indices, first,
                        count, x0, NULL, x_lat);
}

/* ---- the test images of an epoch ---- */

enum { GRID_GAP = 2 };

/* Rows of (original | reconstruction | edit), GRID_GAP white pixels between cells, as a PNG. */
static int write_grid(const char *path, ct_tensor *const columns[3])
{
    int64_t n = ct_size(columns[0], 0), c = ct_size(columns[0], 1);
    int64_t h = ct_size(columns[0], 2), w = ct_size(columns[0], 3);
    int64_t grid_h = n * h + (n - 1) * GRID_GAP, grid_w = 3 * w + 2 * GRID_GAP;
    size_t cell = (size_t)(c * h * w);
    float *cells = malloc(3 * (size_t)n * cell * sizeof *cells);
    dc_tensor grid = {0};
    int status = cells ? DC_OK : dci_err(DC_ENOMEM, "fine-tuning: out of memory for a grid");
    for (int k = 0; status == DC_OK && k < 3; k++)
        status = ct_to_host(columns[k], cells + (size_t)k * (size_t)n * cell,
                            (size_t)n * cell * sizeof *cells);
    grid = (dc_tensor){.dtype = DC_FLOAT32, .ndim = 4, .shape = {1, 3, grid_h, grid_w}};
    if (status == DC_OK && !(grid.data = malloc((size_t)(3 * grid_h * grid_w) * sizeof(float))))
        status = dci_err(DC_ENOMEM, "fine-tuning: out of memory for a grid");
    if (status == DC_OK) {
        float *out = grid.data;
        for (int64_t i = 0; i < 3 * grid_h * grid_w; i++)
            out[i] = 1.0f;
        for (int k = 0; k < 3; k++)
            for (int64_t r = 0; r < n; r++)
                for (int64_t ch = 0; ch < 3; ch++)
                    for (int64_t y = 0; y < h; y++) {
                        /* Grey images repeat their one channel. */
                        const float *src = cells + ((size_t)k * (size_t)n + (size_t)r) * cell +
                                           (size_t)((ch < c ? ch : 0) * h + y) * (size_t)w;
                        float *dst = out + (ch * grid_h + r * (h + GRID_GAP) + y) * grid_w +
                                     k * (w + GRID_GAP);
                        memcpy(dst, src, (size_t)w * sizeof *dst);
                    }
        dc_image image = {0};
        status = io_tensor_to_image(&grid, 0, &image);
        if (status == DC_OK)
            status = io_image_write_file(path, &image);
        dc_image_free(&image);
    }
    dc_tensor_free(&grid);
    free(cells);
    return status;
}

/* The test images edited with the current weights (generation from their latents, no
 * graph), their direction score and, at `grid`, their grid. */
static int edit_test_images(ft_run *run, size_t count, const char *grid, double *score)
{
    const dc_finetune_options *o = run->options;
    ct_tensor *columns[3] = {NULL, NULL, NULL}, *x_lat, *edit;
    DCI_TRY(load_entries(run, run->test_cache, run->test_channels, NULL, 0, count, &columns[0],
                         &columns[1], &x_lat));
    df_generate_options g;
    df_generate_options_init(&g);
    g.t0 = o->t0;
    g.n_steps = o->test_steps > 0 ? o->test_steps : o->inv_steps;
    ct_scope *no_grad = NULL;
    DCI_TRY(ct_grad_mode_begin(&no_grad, 0));
    int status = df_generate(run->trainer->schedule, nn_unet_eps, run->model, x_lat, &g, &edit);
    ct_scope_end(no_grad);
    DCI_TRY(status);
    columns[2] = edit;
    DCI_TRY(ft_trainer_direction_score(run->trainer, columns[0], edit, score));
    return write_grid(grid, columns);
}

/* The "finetune-epoch" report of epoch `epoch` (0: before the first), with the test
 * images' grid and score when there are test images. */
static int report_epoch(ft_run *run, const char *path, int epoch)
{
    const dc_finetune_options *o = run->options;
    dc_progress *p = &run->report;
    size_t available = run->test_cache ? latent_cache_count(run->test_cache) : 0;
    size_t count = o->test_images < available ? o->test_images : available;
    char *grid = NULL;
    double score = 0;
    int status = DC_OK;
    /* In a process group rank 0 alone edits its test images and writes the grid. */
    if (count > 0 && ct_dist_rank(run->dist) == 0) {
        grid = epoch_file(path, epoch, ".test.png");
        size_t mark = ct_pool_begin();
        status = grid ? edit_test_images(run, count, grid, &score)
                      : dci_err(DC_ENOMEM, "fine-tuning: out of memory");
        ct_pool_end(mark, NULL, 0);
    }
    if (status == DC_OK) {
        double n = run->epoch_optimised ? (double)run->epoch_optimised : 1.0;
        p->stage = "finetune-epoch";
        p->epoch = epoch;
        p->epoch_loss_clip = run->epoch_sums[0] / n;
        p->epoch_loss_l1 = run->epoch_sums[1] / n;
        p->epoch_loss_id = run->epoch_sums[2] / n;
        p->epoch_loss_total = run->epoch_sums[3] / n;
        p->test_direction = score;
        p->test_grid = grid;
        if (run->epoch_reports && o->progress && o->progress(o->progress_user, p))
            status = dci_err(DC_ECANCELLED, "fine-tuning: cancelled after epoch %d", epoch);
        p->stage = "finetune";
        p->test_grid = NULL;
    }
    free(grid);
    memset(run->epoch_sums, 0, sizeof run->epoch_sums);
    run->epoch_optimised = 0;
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
    DCI_TRY(report_epoch(run, path, start));
    DCI_TRY(ct_manual_seed(o->seed + (uint64_t)ct_dist_rank(run->dist)));
    for (int epoch = start; epoch < o->epochs; epoch++, lr *= o->lr_gamma) {
        ft_trainer_set_lr(run->trainer, lr);
        run->report.epoch = epoch + 1;
        run->report.learning_rate = lr;
        DCI_TRY(train_epoch(run, images, batches));
        DCI_TRY(save_epoch(run, path, epoch + 1));
        DCI_TRY(report_epoch(run, path, epoch + 1));
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
    memset(run->epoch_sums, 0, sizeof run->epoch_sums);
    run->epoch_optimised = 0;
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
