/* NumPy .npy reading and writing (format versions 1.0, 2.0 and 3.0; see numpy/lib/format.py).
 * The header is a Python dict literal; it is parsed here with a small strict grammar instead of
 * an evaluator: exactly the keys 'descr', 'fortran_order' and 'shape', each once. */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "file.h"
#include "limits.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .npy reader and writer assume a little-endian host"
#endif

static const uint8_t NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
enum { NPY_PREAMBLE_V1 = 10, NPY_PREAMBLE_V2 = 12, NPY_ALIGN = 64, NPY_GROWTH_AXIS_DIGITS = 21 };

/* descr type codes (without the byte-order character) and our dtypes. */
static const struct npy_type {
    const char *code;
    dc_dtype dtype;
} NPY_TYPES[] = {
    {"f4", DC_FLOAT32}, {"f2", DC_FLOAT16}, {"f8", DC_FLOAT64}, {"i8", DC_INT64},
    {"i4", DC_INT32},   {"u1", DC_UINT8},   {"b1", DC_BOOL},
};

static const char *npy_type_code(dc_dtype dtype)
{
    for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++)
        if (NPY_TYPES[i].dtype == dtype)
            return NPY_TYPES[i].code;
    return NULL;
}

/* Bytes of a C-ordered array, or 0 (false) when any partial product exceeds the limit, so
 * that dc_tensor_numel can never overflow on a shape we accepted. Dims are non-negative. */
static int shape_bytes(dc_dtype dtype, int ndim, const int64_t *shape, uint64_t *bytes)
{
    *bytes = dc_dtype_size(dtype);
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(*bytes, (uint64_t)shape[i], bytes) ||
            *bytes > IO_MAX_TENSOR_BYTES)
            return 0;
    return 1;
}

/* ---- header parsing ---------------------------------------------------------------- */

typedef struct header_parser {
    const char *p, *end;
    const char *start;   /* for positions in messages */
    const char *label;
    int allow_long_suffix; /* Python 2 wrote shapes as (3L, 4L); numpy still reads them */
} header_parser;

static int parse_fail(header_parser *hp, const char *what)
{
    return dci_err(DC_EFORMAT, "%s: malformed .npy header at offset %zu: %s", hp->label,
                   (size_t)(hp->p - hp->start), what);
}

static void skip_space(header_parser *hp)
{
    while (hp->p < hp->end && (*hp->p == ' ' || *hp->p == '\t' || *hp->p == '\n' || *hp->p == '\r'))
        hp->p++;
}

static int accept_char(header_parser *hp, char c)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == c) {
        hp->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes, copied into buf (NUL-terminated). */
static int parse_string(header_parser *hp, char *buf, size_t cap)
{
    skip_space(hp);
    if (hp->p >= hp->end || (*hp->p != '\'' && *hp->p != '"'))
        return parse_fail(hp, "expected a quoted string");
    char quote = *hp->p++;
    size_t n = 0;
    while (hp->p < hp->end && *hp->p != quote) {
        if (*hp->p == '\\' || *hp->p == '\n')
            return parse_fail(hp, "unsupported character in a string");
        if (n + 1 >= cap)
            return parse_fail(hp, "string too long");
        buf[n++] = *hp->p++;
    }
    if (hp->p >= hp->end)
        return parse_fail(hp, "unterminated string");
    hp->p++;
    buf[n] = '\0';
    return DC_OK;
}

static int parse_bool(header_parser *hp, int *value)
{
    skip_space(hp);
    size_t left = (size_t)(hp->end - hp->p);
    if (left >= 4 && memcmp(hp->p, "True", 4) == 0) {
        hp->p += 4;
        *value = 1;
    } else if (left >= 5 && memcmp(hp->p, "False", 5) == 0) {
        hp->p += 5;
        *value = 0;
    } else {
        return parse_fail(hp, "expected True or False");
    }
    return DC_OK;
}

static int parse_dim(header_parser *hp, int64_t *value)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == '-')
        return parse_fail(hp, "negative dimension");
    if (hp->p >= hp->end || *hp->p < '0' || *hp->p > '9')
        return parse_fail(hp, "expected a dimension");
    if (*hp->p == '0' && hp->p + 1 < hp->end && hp->p[1] >= '0' && hp->p[1] <= '9')
        return parse_fail(hp, "dimension with a leading zero");
    int64_t v = 0;
    while (hp->p < hp->end && *hp->p >= '0' && *hp->p <= '9') {
        int digit = *hp->p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return parse_fail(hp, "dimension too large");
        v = v * 10 + digit;
        hp->p++;
    }
    if (hp->allow_long_suffix && hp->p < hp->end && *hp->p == 'L')
        hp->p++;
    *value = v;
    return DC_OK;
}

/* A tuple of non-negative ints: (), (n,), (n, m), (n, m,) ... */
static int parse_shape(header_parser *hp, int *ndim, int64_t shape[DC_MAX_DIMS])
{
    if (!accept_char(hp, '('))
        return parse_fail(hp, "shape is not a tuple");
    *ndim = 0;
    if (accept_char(hp, ')'))
        return DC_OK;
    for (;;) {
        if (*ndim == DC_MAX_DIMS)
            return dci_err(DC_EFORMAT, "%s: more than %d dimensions", hp->label, DC_MAX_DIMS);
        DCI_TRY(parse_dim(hp, &shape[(*ndim)++]));
        if (accept_char(hp, ',')) {
            if (accept_char(hp, ')'))
                return DC_OK;
        } else if (accept_char(hp, ')')) {
            /* "(3)" is the int 3 in Python, not a tuple. */
            return *ndim > 1 ? DC_OK : parse_fail(hp, "shape is not a tuple");
        } else {
            return parse_fail(hp, "expected ',' or ')' in shape");
        }
    }
}

static int parse_descr(header_parser *hp, dc_dtype *dtype)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == '[')
        return dci_err(DC_EFORMAT, "%s: structured arrays are not supported", hp->label);
    char descr[16];
    DCI_TRY(parse_string(hp, descr, sizeof descr));
    if (descr[0] == '|' && descr[1] == 'O')
        return dci_err(DC_EFORMAT, "%s: object arrays are not supported", hp->label);
    if (descr[0] == '>')
        return dci_err(DC_EFORMAT, "%s: big-endian arrays ('%s') are not supported", hp->label,
                       descr);
    for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++) {
        if (strcmp(descr + 1, NPY_TYPES[i].code) != 0)
            continue;
        /* '|' (no byte order) is what numpy writes for one-byte types only. */
        int one_byte = dc_dtype_size(NPY_TYPES[i].dtype) == 1;
        if (descr[0] == '<' || (descr[0] == '|' && one_byte)) {
            *dtype = NPY_TYPES[i].dtype;
            return DC_OK;
        }
    }
    return dci_err(DC_EFORMAT,
                   "%s: unsupported dtype '%s' (supported: <f4 <f2 <f8 <i8 <i4 |u1 |b1)",
                   hp->label, descr);
}

static int parse_header(header_parser *hp, dc_tensor *out)
{
    enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };
    unsigned seen = 0;
    int fortran_order = 0;
    /* Python's literal_eval strips leading spaces and tabs. */
    while (hp->p < hp->end && (*hp->p == ' ' || *hp->p == '\t'))
        hp->p++;
    if (hp->p >= hp->end || *hp->p != '{')
        return parse_fail(hp, "header is not a dict");
    hp->p++;
    while (!accept_char(hp, '}')) {
        char key[32];
        DCI_TRY(parse_string(hp, key, sizeof key));
        if (!accept_char(hp, ':'))
            return parse_fail(hp, "expected ':'");
        unsigned bit;
        if (strcmp(key, "descr") == 0) {
            bit = KEY_DESCR;
            DCI_TRY(parse_descr(hp, &out->dtype));
        } else if (strcmp(key, "fortran_order") == 0) {
            bit = KEY_FORTRAN;
            DCI_TRY(parse_bool(hp, &fortran_order));
        } else if (strcmp(key, "shape") == 0) {
            bit = KEY_SHAPE;
            DCI_TRY(parse_shape(hp, &out->ndim, out->shape));
        } else {
            return dci_err(DC_EFORMAT, "%s: unexpected key '%s' in the .npy header", hp->label,
                           key);
        }
        if (seen & bit)
            return dci_err(DC_EFORMAT, "%s: key '%s' repeated in the .npy header", hp->label, key);
        seen |= bit;
        if (!accept_char(hp, ',')) {
            if (accept_char(hp, '}'))
                break;
            return parse_fail(hp, "expected ',' or '}'");
        }
    }
    skip_space(hp);
    if (hp->p != hp->end)
        return parse_fail(hp, "unexpected text after the dict");
    if (seen != (KEY_DESCR | KEY_FORTRAN | KEY_SHAPE))
        return dci_err(DC_EFORMAT, "%s: the .npy header lacks '%s'", hp->label,
                       !(seen & KEY_DESCR) ? "descr" : !(seen & KEY_FORTRAN) ? "fortran_order"
                                                                               : "shape");
    if (fortran_order)
        return dci_err(DC_EFORMAT,
                       "%s: Fortran-ordered arrays are not supported (save a C-contiguous array, "
                       "e.g. np.ascontiguousarray)",
                       hp->label);
    return DC_OK;
}

/* ---- reading --------------------------------------------------------------------------- */

int io_npy_read_buffer(const uint8_t *data, size_t size, const char *label, dc_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (!label)
        label = "<npy>";
    if (!data && size)
        return dci_err(DC_EINVAL, "%s: NULL buffer", label);
    if (size < NPY_PREAMBLE_V1 || memcmp(data, NPY_MAGIC, sizeof NPY_MAGIC) != 0)
        return dci_err(DC_EFORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", label);
    int major = data[6], minor = data[7];
    size_t preamble, header_len;
    if (major == 1 && minor == 0) {
        preamble = NPY_PREAMBLE_V1;
        header_len = (size_t)data[8] | (size_t)data[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        preamble = NPY_PREAMBLE_V2;
        if (size < preamble)
            return dci_err(DC_EFORMAT, "%s: truncated .npy preamble", label);
        header_len = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
                     (size_t)data[11] << 24;
    } else {
        return dci_err(DC_EFORMAT, "%s: unsupported .npy format version %d.%d", label, major,
                       minor);
    }
    if (header_len > IO_MAX_HEADER_BYTES)
        return dci_err(DC_EFORMAT, "%s: .npy header of %zu bytes is over the limit", label,
                       header_len);
    if (header_len > size - preamble)
        return dci_err(DC_EFORMAT, "%s: truncated .npy header (%zu bytes declared, %zu present)",
                       label, header_len, size - preamble);

    const char *header = (const char *)data + preamble;
    header_parser hp = {.p = header, .end = header + header_len, .start = header,
                        .label = label, .allow_long_suffix = major < 3};
    int status = parse_header(&hp, out);
    if (status != DC_OK) {
        memset(out, 0, sizeof *out);
        return status;
    }

    uint64_t bytes;
    if (!shape_bytes(out->dtype, out->ndim, out->shape, &bytes)) {
        int ndim = out->ndim;
        memset(out, 0, sizeof *out);
        return dci_err(DC_EFORMAT, "%s: %d-d shape declares more than the limit of %llu bytes",
                       label, ndim, (unsigned long long)IO_MAX_TENSOR_BYTES);
    }
    size_t present = size - preamble - header_len;
    if (bytes != present) {
        memset(out, 0, sizeof *out);
        return dci_err(DC_EFORMAT, "%s: shape needs %llu bytes of data but the file holds %zu",
                       label, (unsigned long long)bytes, present);
    }
    out->data = malloc(bytes ? (size_t)bytes : 1);
    if (!out->data) {
        memset(out, 0, sizeof *out);
        return dci_err(DC_ENOMEM, "%s: out of memory for %llu bytes", label,
                       (unsigned long long)bytes);
    }
    memcpy(out->data, header + header_len, (size_t)bytes);
    return DC_OK;
}

int io_npy_read_file(const char *path, dc_tensor *out)
{
    memset(out, 0, sizeof *out);
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    int status = io_npy_read_buffer(file.data, file.size, path, out);
    io_unmap_file(&file);
    return status;
}

/* ---- writing --------------------------------------------------------------------------- */

/* The header numpy 1.24 writes (format.py _write_array_header): keys sorted, repr(shape),
 * spare spaces so the first axis can grow to 21 digits in place, then spaces and '\n' up to
 * a multiple of 64 bytes including the 10-byte preamble. */
static size_t format_header(char *buf, size_t cap, const char *descr, const dc_tensor *t)
{
    size_t n = (size_t)snprintf(buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int i = 0; i < t->ndim; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    n += (size_t)snprintf(buf + n, cap - n, "%s), }", t->ndim == 1 ? "," : "");
    if (t->ndim > 0) {
        char first[24];
        size_t digits = (size_t)snprintf(first, sizeof first, "%lld", (long long)t->shape[0]);
        for (size_t i = digits; i < NPY_GROWTH_AXIS_DIGITS; i++)
            buf[n++] = ' ';
    }
    size_t pad = NPY_ALIGN - (NPY_PREAMBLE_V1 + n + 1) % NPY_ALIGN;
    memset(buf + n, ' ', pad);
    n += pad;
    buf[n++] = '\n';
    return n;
}

int io_npy_write_file(const char *path, const dc_tensor *t)
{
    if (!path || !t)
        return dci_err(DC_EINVAL, "io_npy_write_file: NULL argument");
    const char *code = npy_type_code(t->dtype);
    if (!code)
        return dci_err(DC_EINVAL, "%s: dtype %s cannot be written to .npy", path,
                       dc_dtype_name(t->dtype) ? dc_dtype_name(t->dtype) : "(unknown)");
    if (t->ndim < 0 || t->ndim > DC_MAX_DIMS)
        return dci_err(DC_EINVAL, "%s: ndim %d is out of range 0..%d", path, t->ndim, DC_MAX_DIMS);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return dci_err(DC_EINVAL, "%s: negative dimension %lld", path, (long long)t->shape[i]);
    uint64_t bytes;
    if (!shape_bytes(t->dtype, t->ndim, t->shape, &bytes))
        return dci_err(DC_EINVAL, "%s: array is over the limit of %llu bytes", path,
                       (unsigned long long)IO_MAX_TENSOR_BYTES);
    if (bytes && !t->data)
        return dci_err(DC_EINVAL, "%s: tensor data is NULL", path);

    char descr[4] = {dc_dtype_size(t->dtype) == 1 ? '|' : '<', code[0], code[1], '\0'};
    /* The dict is under 64 + 8 * 22 bytes; padding adds at most 21 + 64. */
    char header[512];
    size_t header_len = format_header(header, sizeof header, descr, t);
    uint8_t preamble[NPY_PREAMBLE_V1] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                         (uint8_t)(header_len & 0xff), (uint8_t)(header_len >> 8)};

    io_atomic_file file;
    DCI_TRY(io_atomic_begin(&file, path));
    int status = io_atomic_write(&file, preamble, sizeof preamble);
    if (status == DC_OK)
        status = io_atomic_write(&file, header, header_len);
    if (status == DC_OK)
        status = io_atomic_write(&file, t->data, (size_t)bytes);
    if (status != DC_OK) {
        io_atomic_abort(&file);
        return status;
    }
    return io_atomic_commit(&file);
}
