/* A structural check of a dlib shape predictor file (shape_predictor::serialize: version,
 * initial_shape, forests, anchor_idx, deltas, in dlib's serialize.h encodings) before dlib
 * reads it. dlib's deserializer resizes vectors to whatever count the file declares and the
 * predictor indexes with the file's indices unchecked; here every count is walked against the
 * bytes present and every index is checked against what it indexes, so that a truncated,
 * corrupt or hostile file is refused with a message instead of an allocation or a crash. */
#include <stdint.h>

#include "../core/error.h"
#include "face.h"

typedef struct reader {
    const uint8_t *start, *p, *end;
    const char *label;
} reader;

static int truncated(const reader *r, const char *what)
{
    return dci_err(DC_EFORMAT, "%s: not a dlib shape predictor (truncated or corrupt at byte "
                   "%td, reading %s)", r->label, r->p - r->start, what);
}

/* dlib's integer encoding: a control byte (bit 7: negative, low 4 bits: 1..max_bytes
 * little-endian bytes follow; unsigned types refuse the sign bit). */
static int read_int(reader *r, int is_signed, int max_bytes, int64_t *value, const char *what)
{
    if (r->p >= r->end)
        return truncated(r, what);
    unsigned control = *r->p++;
    int negative = is_signed && (control & 0x80);
    unsigned size = is_signed ? control & 0x0F : control & 0x8F;
    if (size == 0 || size > (unsigned)max_bytes || (size_t)(r->end - r->p) < size)
        return truncated(r, what);
    uint64_t v = 0;
    for (unsigned i = size; i-- > 0;)
        v = v << 8 | r->p[i];
    r->p += size;
    if ((is_signed && v > INT64_MAX) || (!is_signed && v > INT64_MAX))
        return truncated(r, what);
    *value = negative ? -(int64_t)v : (int64_t)v;
    return DC_OK;
}

static int read_count(reader *r, int64_t *count, const char *what)
{
    DCI_TRY(read_int(r, 0, 8, count, what));
    /* every element takes at least one byte */
    if (*count > r->end - r->p)
        return truncated(r, what);
    return DC_OK;
}

/* A float in dlib's binary form (mantissa int64, exponent int16); the older text form, which
 * no released predictor uses, is refused. */
static int skip_float(reader *r, const char *what)
{
    int64_t v;
    if (r->p < r->end && (*r->p & 0x70) != 0)
        return dci_err(DC_EFORMAT, "%s: a float in dlib's old text encoding (%s); only the "
                       "binary encoding is read", r->label, what);
    DCI_TRY(read_int(r, 1, 8, &v, what));
    return read_int(r, 1, 2, &v, what);
}

/* A matrix<float,0,1> of `rows` rows (rows < 0: any, returned in *rows). */
static int skip_column(reader *r, int64_t *rows, const char *what)
{
    int64_t nr, nc;
    DCI_TRY(read_int(r, 1, 8, &nr, what));
    DCI_TRY(read_int(r, 1, 8, &nc, what));
    if (nr < 0)
        nr = -nr;
    if (nc < 0)
        nc = -nc;
    if (nc != 1 || (*rows >= 0 && nr != *rows) || nr > r->end - r->p)
        return dci_err(DC_EFORMAT, "%s: %s is a %lld x %lld matrix, expected a column of %lld",
                       r->label, what, (long long)nr, (long long)nc, (long long)*rows);
    for (int64_t i = 0; i < nr; i++)
        DCI_TRY(skip_float(r, what));
    *rows = nr;
    return DC_OK;
}

#define MAX_LEVELS 1024

int face_predictor_check(const uint8_t *data, size_t size, const char *label, int parts)
{
    reader r = {data, data, data + size, label};
    int64_t version, rows = -1, levels, count;
    DCI_TRY(read_int(&r, 1, 4, &version, "the version"));
    if (version != 1)
        return dci_err(DC_EFORMAT, "%s: not a dlib shape predictor (version %lld)", label,
                       (long long)version);
    DCI_TRY(skip_column(&r, &rows, "the initial shape"));
    if (rows != 2 * (int64_t)parts)
        return dci_err(DC_EFORMAT, "%s: a shape predictor of %lld landmarks, expected %d",
                       label, (long long)(rows / 2), parts);

    DCI_TRY(read_count(&r, &levels, "the cascade"));
    if (levels < 1 || levels > MAX_LEVELS)
        return dci_err(DC_EFORMAT, "%s: %lld cascade levels (1..%d)", label, (long long)levels,
                       MAX_LEVELS);
    /* the largest split index of each level, checked once the feature counts are known */
    int64_t max_index[MAX_LEVELS];
    for (int64_t level = 0; level < levels; level++) {
        int64_t trees;
        max_index[level] = -1;
        DCI_TRY(read_count(&r, &trees, "a forest"));
        for (int64_t t = 0; t < trees; t++) {
            int64_t splits, leaves;
            DCI_TRY(read_count(&r, &splits, "a tree's splits"));
            for (int64_t s = 0; s < splits; s++) {
                int64_t a, b;
                DCI_TRY(read_int(&r, 0, 8, &a, "a split"));
                DCI_TRY(read_int(&r, 0, 8, &b, "a split"));
                DCI_TRY(skip_float(&r, "a split threshold"));
                if (a > max_index[level])
                    max_index[level] = a;
                if (b > max_index[level])
                    max_index[level] = b;
            }
            DCI_TRY(read_count(&r, &leaves, "a tree's leaves"));
            /* the predictor walks 2i+1 / 2i+2 down the splits and reads leaf i - splits */
            if (leaves != splits + 1)
                return dci_err(DC_EFORMAT, "%s: a tree with %lld splits has %lld leaves "
                               "(expected %lld)", label, (long long)splits, (long long)leaves,
                               (long long)splits + 1);
            for (int64_t l = 0; l < leaves; l++)
                DCI_TRY(skip_column(&r, &rows, "a leaf"));
        }
    }

    int64_t features[MAX_LEVELS];
    DCI_TRY(read_count(&r, &count, "the anchor indices"));
    if (count != levels)
        return dci_err(DC_EFORMAT, "%s: %lld anchor index sets for %lld cascade levels", label,
                       (long long)count, (long long)levels);
    for (int64_t level = 0; level < levels; level++) {
        DCI_TRY(read_count(&r, &features[level], "anchor indices"));
        if (features[level] <= max_index[level])
            return dci_err(DC_EFORMAT, "%s: a split reads feature %lld of %lld", label,
                           (long long)max_index[level], (long long)features[level]);
        for (int64_t i = 0; i < features[level]; i++) {
            int64_t anchor;
            DCI_TRY(read_int(&r, 0, 8, &anchor, "an anchor index"));
            if (anchor >= parts)
                return dci_err(DC_EFORMAT, "%s: anchor landmark %lld of %d", label,
                               (long long)anchor, parts);
        }
    }
    DCI_TRY(read_count(&r, &count, "the deltas"));
    if (count != levels)
        return dci_err(DC_EFORMAT, "%s: %lld delta sets for %lld cascade levels", label,
                       (long long)count, (long long)levels);
    for (int64_t level = 0; level < levels; level++) {
        DCI_TRY(read_count(&r, &count, "deltas"));
        if (count != features[level])
            return dci_err(DC_EFORMAT, "%s: %lld deltas for %lld anchor indices", label,
                           (long long)count, (long long)features[level]);
        for (int64_t i = 0; i < 2 * count; i++)
            DCI_TRY(skip_float(&r, "a delta"));
    }
    return DC_OK;
}
