#include "group.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

/* What ranks must agree on, each compared by a 64-bit FNV-1a hash. */
enum { AGREE_MODEL, AGREE_TEXTS, AGREE_NUMBERS, AGREE_COUNT };
static const char *const agree_names[AGREE_COUNT] = {"base model", "texts",
                                                     "fine-tuning numbers"};
/* A rank's row in the reduced table: a flag per item above, then its image count. */
enum { ROW = AGREE_COUNT + 1 };

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

static uint64_t fnv_string(uint64_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }
static uint64_t fnv_int(uint64_t h, int64_t v) { return fnv(h, &v, sizeof v); }
static uint64_t fnv_double(uint64_t h, double v) { return fnv(h, &v, sizeof v); }

static void hash_run(uint64_t out[AGREE_COUNT], const char *fingerprint,
                     const dc_finetune_options *o)
{
    const uint64_t basis = 14695981039346656037u;
    out[AGREE_MODEL] = fnv_string(basis, fingerprint);
    uint64_t h = fnv_int(basis, (int64_t)o->text_pairs);
    for (size_t i = 0; i < o->text_pairs; i++)
        h = fnv_string(fnv_string(h, o->source_texts[i]), o->target_texts[i]);
    out[AGREE_TEXTS] = h;
    const int64_t ints[] = {o->t0,        o->inv_steps, o->train_steps, o->epochs,
                            o->images,    o->batch_size, (int64_t)o->loss_form,
                            (int64_t)o->grad_mode, (int64_t)o->seed, o->resume,
                            o->world_size, (int64_t)o->dtype};
    const double doubles[] = {o->eta,         o->learning_rate, o->lr_gamma,
                              o->clip_weight, o->l1_weight,     o->id_weight};
    h = basis;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        h = fnv_int(h, ints[i]);
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++)
        h = fnv_double(h, doubles[i]);
    out[AGREE_NUMBERS] = h;
}

/* Appends to msg (n bytes) at *used; a message too long is cut. */
static void append(char *msg, size_t n, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(msg + *used, n - *used, fmt, ap);
    va_end(ap);
    if (k > 0)
        *used = *used + (size_t)k < n ? *used + (size_t)k : n - 1;
}

/* "rank 1: other texts than rank 0's, 3 training images where ..." for each rank that
 * differs; the length written. */
static size_t describe(char *msg, size_t n, const double *table, int world, size_t total)
{
    size_t used = 0;
    msg[0] = '\0';
    for (int r = 0; r < world; r++) {
        const double *row = table + (size_t)r * ROW;
        size_t share = (total + (size_t)world - 1 - (size_t)r) / (size_t)world;
        int count_differs = row[AGREE_COUNT] != (double)share, differs = count_differs;
        for (int i = 0; i < AGREE_COUNT; i++)
            differs |= row[i] != 0;
        if (!differs)
            continue;
        append(msg, n, &used, "%srank %d has", used ? "; " : "", r);
        const char *sep = " ";
        for (int i = 0; i < AGREE_COUNT; i++)
            if (row[i] != 0) {
                append(msg, n, &used, "%sother %s than rank 0", sep, agree_names[i]);
                sep = ", ";
            }
        if (count_differs)
            append(msg, n, &used, "%s%.0f training images where its share of %zu is %zu", sep,
                   row[AGREE_COUNT], total, share);
    }
    return used;
}

int ft_group_check(ct_dist *d, const char *fingerprint, const dc_finetune_options *o,
                   size_t local_images, size_t *group_images)
{
    int world = ct_dist_world(d), rank = ct_dist_rank(d);
    uint64_t mine[AGREE_COUNT], rank0[AGREE_COUNT];
    hash_run(mine, fingerprint, o);
    memcpy(rank0, mine, sizeof rank0);
    DCI_TRY(ct_dist_broadcast_bytes(d, rank0, sizeof rank0));
    double *table = calloc((size_t)world * ROW, sizeof *table);
    if (!table)
        return dci_err(DC_ENOMEM, "fine-tuning: out of memory");
    for (int i = 0; i < AGREE_COUNT; i++)
        table[(size_t)rank * ROW + i] = mine[i] != rank0[i];
    table[(size_t)rank * ROW + AGREE_COUNT] = (double)local_images;
    int status = ct_dist_allreduce_f64(d, table, (size_t)world * ROW);
    size_t total = 0;
    for (int r = 0; status == DC_OK && r < world; r++)
        total += (size_t)table[(size_t)r * ROW + AGREE_COUNT];
    char msg[1024];
    if (status == DC_OK && describe(msg, sizeof msg, table, world, total) > 0)
        status = dci_err(DC_EINVAL, "rank %d of %d: the ranks do not start the same "
                         "fine-tuning: %s", rank, world, msg);
    else if (status == DC_OK && total < (size_t)world)
        status = dci_err(DC_EINVAL, "rank %d of %d: %zu training images for %d ranks: each "
                         "rank needs one at least", rank, world, total, world);
    free(table);
    if (status == DC_OK)
        *group_images = total;
    return status;
}
