/* TensorFlow.js weights manifests and shards (see tfjs.h). The JSON reader pulls one value
 * at a time, as the manifest's fixed layout needs, instead of building a tree. */
#include "tfjs.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "limits.h"

/* Members we do not know are skipped; their nesting is bounded so skipping cannot recurse
 * without limit. */
enum { JSON_MAX_DEPTH = 64, JSON_MAX_NUMBER_CHARS = 128 };

/* ---- a strict JSON pull reader ------------------------------------------------------- */

typedef struct json_reader {
    const uint8_t *start, *p, *end;
    const char *label;
    locale_t c_locale;               /* numbers use '.' whatever the process locale is */
} json_reader;

static int json_error(const json_reader *j, const char *what)
{
    return dci_err(DC_EFORMAT, "%s: bad weights manifest at byte %zu: %s", j->label,
                   (size_t)(j->p - j->start), what);
}

static void json_space(json_reader *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Consumes `c` (after whitespace) when it comes next. */
static int json_take(json_reader *j, char c)
{
    json_space(j);
    if (j->p < j->end && *j->p == (uint8_t)c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int json_begin(json_reader *j, char open)
{
    if (!json_take(j, open))
        return json_error(j, open == '[' ? "expected an array" : "expected an object");
    return DC_OK;
}

/* Call before each element of an array or object whose opening bracket was read; *done is 1
 * at the closing bracket. `count` starts at 0 and counts the elements. */
static int json_next(json_reader *j, char close, size_t *count, int *done)
{
    *done = json_take(j, close);
    if (*done)
        return DC_OK;
    if (*count > 0 && !json_take(j, ','))
        return json_error(j, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
    (*count)++;
    return DC_OK;
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int json_hex4(json_reader *j, unsigned *code)
{
    if (j->end - j->p < 4)
        return json_error(j, "truncated \\u escape");
    *code = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(j->p[i]);
        if (h < 0)
            return json_error(j, "bad \\u escape");
        *code = *code << 4 | (unsigned)h;
    }
    j->p += 4;
    return DC_OK;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if malformed
 * (overlong forms, surrogates and code points past U+10FFFF are malformed). */
static size_t utf8_sequence(const uint8_t *s, size_t n)
{
    size_t len;
    uint32_t code, min;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, code = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, code = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, code = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        code = code << 6 | (s[i] & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return len;
}

static size_t utf8_encode(uint32_t code, uint8_t *out)
{
    if (code < 0x80) {
        out[0] = (uint8_t)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (uint8_t)(0xc0 | code >> 6);
        out[1] = (uint8_t)(0x80 | (code & 0x3f));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (uint8_t)(0xe0 | code >> 12);
        out[1] = (uint8_t)(0x80 | (code >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (code & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | code >> 18);
    out[1] = (uint8_t)(0x80 | (code >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (code >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (code & 0x3f));
    return 4;
}

/* A string value: *value gets a malloc'd NUL-terminated copy of at most `max_bytes` bytes
 * (U+0000 is refused so that the copy is one C string); value NULL only checks it. */
static int json_string(json_reader *j, char **value, size_t max_bytes)
{
    if (value)
        *value = NULL;
    json_space(j);
    if (j->p >= j->end || *j->p != '"')
        return json_error(j, "expected a string");
    j->p++;
    uint8_t *buf = NULL;
    if (value && !(buf = malloc(max_bytes + 4)))
        return dci_err(DC_ENOMEM, "%s: out of memory", j->label);
    size_t len = 0;
    int status = DC_OK;
    for (;;) {
        if (j->p >= j->end) {
            status = json_error(j, "unterminated string");
            break;
        }
        uint8_t piece[4];
        size_t piece_len = 1;
        uint8_t c = *j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) {
            status = json_error(j, "control character in a string");
            break;
        }
        if (c == '\\') {
            if (j->end - j->p < 2) {
                status = json_error(j, "truncated escape");
                break;
            }
            uint8_t e = j->p[1];
            j->p += 2;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                piece[0] = (uint8_t)"\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            } else if (e == 'u') {
                unsigned code, low;
                if ((status = json_hex4(j, &code)) != DC_OK)
                    break;
                if (code >= 0xdc00 && code <= 0xdfff) {
                    status = json_error(j, "unpaired surrogate in a \\u escape");
                    break;
                }
                if (code >= 0xd800 && code <= 0xdbff) {
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') {
                        status = json_error(j, "unpaired surrogate in a \\u escape");
                        break;
                    }
                    j->p += 2;
                    if ((status = json_hex4(j, &low)) != DC_OK)
                        break;
                    if (low < 0xdc00 || low > 0xdfff) {
                        status = json_error(j, "unpaired surrogate in a \\u escape");
                        break;
                    }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                }
                if (code == 0) {
                    status = json_error(j, "U+0000 in a string");
                    break;
                }
                piece_len = utf8_encode(code, piece);
            } else {
                j->p--;
                status = json_error(j, "bad escape");
                break;
            }
        } else {
            piece_len = utf8_sequence(j->p, (size_t)(j->end - j->p));
            if (piece_len == 0) {
                status = json_error(j, "malformed UTF-8 in a string");
                break;
            }
            memcpy(piece, j->p, piece_len);
            j->p += piece_len;
        }
        if (buf) {
            if (len + piece_len > max_bytes) {
                status = dci_err(DC_EFORMAT, "%s: a string of the weights manifest is longer "
                                             "than %zu bytes", j->label, max_bytes);
                break;
            }
            memcpy(buf + len, piece, piece_len);
            len += piece_len;
        }
    }
    if (status != DC_OK) {
        free(buf);
        return status;
    }
    if (buf) {
        buf[len] = '\0';
        uint8_t *fitted = realloc(buf, len + 1);   /* many short names must not keep max_bytes */
        *value = (char *)(fitted ? fitted : buf);
    }
    return DC_OK;
}

static int is_digit(const json_reader *j)
{
    return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

/* A finite number (RFC 8259 grammar), converted by strtod in the C locale. */
static int json_number(json_reader *j, double *value)
{
    json_space(j);
    const uint8_t *first = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (!is_digit(j))
        return json_error(j, "expected a number");
    if (*j->p == '0')
        j->p++;
    else
        while (is_digit(j))
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!is_digit(j))
            return json_error(j, "expected a digit after '.'");
        while (is_digit(j))
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!is_digit(j))
            return json_error(j, "expected a digit in an exponent");
        while (is_digit(j))
            j->p++;
    }
    size_t n = (size_t)(j->p - first);
    if (n > JSON_MAX_NUMBER_CHARS)
        return json_error(j, "number too long");
    char text[JSON_MAX_NUMBER_CHARS + 1];
    memcpy(text, first, n);
    text[n] = '\0';
    *value = strtod_l(text, NULL, j->c_locale);
    if (!isfinite(*value))
        return json_error(j, "number out of range");
    return DC_OK;
}

/* A non-negative integer written without fraction or exponent. */
static int json_uint(json_reader *j, uint64_t *value)
{
    json_space(j);
    if (!is_digit(j))
        return json_error(j, "expected a non-negative integer");
    *value = 0;
    if (*j->p == '0') {
        j->p++;
    } else {
        while (is_digit(j)) {
            unsigned d = (unsigned)(*j->p - '0');
            if (*value > (UINT64_MAX - d) / 10)
                return json_error(j, "integer too large");
            *value = *value * 10 + d;
            j->p++;
        }
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return json_error(j, "expected an integer");
    return DC_OK;
}

static int json_literal(json_reader *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return json_error(j, "expected a value");
    j->p += n;
    return DC_OK;
}

/* Checks and skips any value nested at most JSON_MAX_DEPTH - depth levels. */
static int json_skip(json_reader *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return json_error(j, "nested too deeply");
    json_space(j);
    if (j->p >= j->end)
        return json_error(j, "expected a value");
    size_t count = 0;
    int done;
    switch (*j->p) {
    case '{':
        j->p++;
        for (;;) {
            DCI_TRY(json_next(j, '}', &count, &done));
            if (done)
                return DC_OK;
            DCI_TRY(json_string(j, NULL, 0));
            if (!json_take(j, ':'))
                return json_error(j, "expected ':'");
            DCI_TRY(json_skip(j, depth + 1));
        }
    case '[':
        j->p++;
        for (;;) {
            DCI_TRY(json_next(j, ']', &count, &done));
            if (done)
                return DC_OK;
            DCI_TRY(json_skip(j, depth + 1));
        }
    case '"':
        return json_string(j, NULL, 0);
    case 't':
        return json_literal(j, "true");
    case 'f':
        return json_literal(j, "false");
    case 'n':
        return json_literal(j, "null");
    default: {
        double ignored;
        return json_number(j, &ignored);
    }
    }
}

/* The next member's key of an object whose '{' was read (*key NULL and *done 1 at '}'), with
 * its ':' consumed. */
static int json_member(json_reader *j, size_t *count, char **key, int *done)
{
    *key = NULL;
    DCI_TRY(json_next(j, '}', count, done));
    if (*done)
        return DC_OK;
    DCI_TRY(json_string(j, key, IO_MAX_NAME_LENGTH));
    if (!json_take(j, ':')) {
        free(*key);
        *key = NULL;
        return json_error(j, "expected ':'");
    }
    return DC_OK;
}

/* ---- the manifest ----------------------------------------------------------------------- */

typedef struct tfjs_entry {
    char *name;
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    uint64_t numel;
    dc_dtype dtype;                  /* DC_FLOAT32 or DC_INT32 */
    unsigned stored_size;            /* bytes per element in the shard: 4, or 1 / 2 quantised */
    double scale, min;
} tfjs_entry;

typedef struct tfjs_group {
    size_t first_path, path_count;
    size_t first_entry, entry_count;
    uint64_t bytes;                  /* what its weights take in its shards */
} tfjs_group;

typedef struct tfjs_manifest {
    tfjs_entry *entries;
    size_t entry_count, entry_capacity;
    char **paths;
    size_t path_count, path_capacity;
    tfjs_group *groups;
    size_t group_count, group_capacity;
} tfjs_manifest;

static void manifest_free(tfjs_manifest *m)
{
    for (size_t i = 0; i < m->entry_count; i++)
        free(m->entries[i].name);
    for (size_t i = 0; i < m->path_count; i++)
        free(m->paths[i]);
    free(m->entries);
    free(m->paths);
    free(m->groups);
    memset(m, 0, sizeof *m);
}

/* Room for one more item in a growing array of at most IO_MAX_TENSORS items. */
static int reserve_one(void **items, size_t *capacity, size_t count, size_t item_size,
                       const char *label)
{
    if (count < *capacity)
        return DC_OK;
    if (count >= IO_MAX_TENSORS)
        return dci_err(DC_EFORMAT, "%s: the weights manifest lists more than %u items", label,
                       IO_MAX_TENSORS);
    size_t grown = *capacity ? *capacity * 2 : 16;
    void *p = realloc(*items, grown * item_size);
    if (!p)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    *items = p;
    *capacity = grown;
    return DC_OK;
}

static int duplicate_member(json_reader *j, const char *key)
{
    return dci_err(DC_EFORMAT, "%s: bad weights manifest at byte %zu: \"%s\" given twice",
                   j->label, (size_t)(j->p - j->start), key);
}

/* Shard names must stay below the manifest's directory: relative, no ".." component. */
static int check_path(const json_reader *j, const char *path)
{
    int escapes = !*path || path[0] == '/';
    for (const char *c = path; *c && !escapes; c = strchr(c, '/') ? strchr(c, '/') + 1 : "")
        escapes = strncmp(c, "..", 2) == 0 && (c[2] == '/' || c[2] == '\0');
    if (escapes)
        return dci_err(DC_EFORMAT, "%s: weights path \"%s\" is empty, absolute or has a \"..\" "
                       "component", j->label, path);
    return DC_OK;
}

static int parse_paths(json_reader *j, tfjs_manifest *m)
{
    DCI_TRY(json_begin(j, '['));
    size_t count = 0;
    int done;
    for (;;) {
        DCI_TRY(json_next(j, ']', &count, &done));
        if (done)
            return DC_OK;
        DCI_TRY(reserve_one((void **)&m->paths, &m->path_capacity, m->path_count,
                            sizeof *m->paths, j->label));
        DCI_TRY(json_string(j, &m->paths[m->path_count], IO_MAX_NAME_LENGTH));
        m->path_count++;
        DCI_TRY(check_path(j, m->paths[m->path_count - 1]));
    }
}

static int parse_shape(json_reader *j, tfjs_entry *e)
{
    DCI_TRY(json_begin(j, '['));
    size_t count = 0;
    int done;
    for (;;) {
        DCI_TRY(json_next(j, ']', &count, &done));
        if (done)
            return DC_OK;
        if (count > DC_MAX_DIMS)
            return json_error(j, "a shape has more than 8 dimensions");
        uint64_t dim = 0;
        DCI_TRY(json_uint(j, &dim));
        if (dim > IO_MAX_TENSOR_BYTES)
            return json_error(j, "a dimension is too large");
        e->shape[e->ndim++] = (int64_t)dim;
    }
}

/* "quantization": {"dtype": "uint8" | "uint16", "scale": s, "min": m}. */
static int parse_quantization(json_reader *j, tfjs_entry *e, char **dtype)
{
    DCI_TRY(json_begin(j, '{'));
    int have_scale = 0, have_min = 0;
    size_t count = 0;
    int done;
    char *key;
    for (;;) {
        DCI_TRY(json_member(j, &count, &key, &done));
        if (done)
            break;
        int status;
        if (strcmp(key, "dtype") == 0)
            status = *dtype ? duplicate_member(j, key) : json_string(j, dtype, 64);
        else if (strcmp(key, "scale") == 0)
            status = have_scale++ ? duplicate_member(j, key) : json_number(j, &e->scale);
        else if (strcmp(key, "min") == 0)
            status = have_min++ ? duplicate_member(j, key) : json_number(j, &e->min);
        else
            status = json_skip(j, 3);
        free(key);
        DCI_TRY(status);
    }
    if (!*dtype || !have_scale || !have_min)
        return json_error(j, "a quantization lacks \"dtype\", \"scale\" or \"min\"");
    return DC_OK;
}

/* Checks a parsed entry's dtype and size; *bytes gets what it takes in the shard. */
static int check_entry(const json_reader *j, tfjs_entry *e, const char *dtype,
                       const char *quant_dtype, uint64_t *bytes)
{
    if (strcmp(dtype, "float32") == 0)
        e->dtype = DC_FLOAT32;
    else if (strcmp(dtype, "int32") == 0)
        e->dtype = DC_INT32;
    else
        return dci_err(DC_EFORMAT, "%s: weight \"%s\" has dtype \"%s\" (float32 and int32 are "
                                   "supported)", j->label, e->name, dtype);
    e->stored_size = 4;
    if (quant_dtype) {
        if (strcmp(quant_dtype, "uint8") == 0)
            e->stored_size = 1;
        else if (strcmp(quant_dtype, "uint16") == 0)
            e->stored_size = 2;
        else
            return dci_err(DC_EFORMAT, "%s: weight \"%s\" is quantised as \"%s\" (uint8 and "
                                       "uint16 are supported)", j->label, e->name, quant_dtype);
    }
    e->numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        uint64_t dim = (uint64_t)e->shape[d];
        if (dim != 0 && e->numel > IO_MAX_TENSOR_BYTES / 4 / dim)
            return dci_err(DC_EFORMAT, "%s: weight \"%s\" is larger than %llu bytes", j->label,
                           e->name, (unsigned long long)IO_MAX_TENSOR_BYTES);
        e->numel *= dim;
    }
    *bytes = e->numel * e->stored_size;
    return DC_OK;
}

static int parse_entry(json_reader *j, tfjs_entry *e, uint64_t *bytes)
{
    memset(e, 0, sizeof *e);
    DCI_TRY(json_begin(j, '{'));
    char *dtype = NULL, *quant_dtype = NULL, *key;
    int have_shape = 0, have_quant = 0, status = DC_OK;
    size_t count = 0;
    int done;
    for (;;) {
        if ((status = json_member(j, &count, &key, &done)) != DC_OK || done)
            break;
        if (strcmp(key, "name") == 0)
            status = e->name ? duplicate_member(j, key)
                             : json_string(j, &e->name, IO_MAX_NAME_LENGTH);
        else if (strcmp(key, "shape") == 0)
            status = have_shape++ ? duplicate_member(j, key) : parse_shape(j, e);
        else if (strcmp(key, "dtype") == 0)
            status = dtype ? duplicate_member(j, key) : json_string(j, &dtype, 64);
        else if (strcmp(key, "quantization") == 0)
            status = have_quant++ ? duplicate_member(j, key)
                                  : parse_quantization(j, e, &quant_dtype);
        else
            status = json_skip(j, 3);
        free(key);
        if (status != DC_OK)
            break;
    }
    if (status == DC_OK && (!e->name || !have_shape || !dtype))
        status = json_error(j, "a weight lacks \"name\", \"shape\" or \"dtype\"");
    if (status == DC_OK)
        status = check_entry(j, e, dtype, quant_dtype, bytes);
    free(dtype);
    free(quant_dtype);
    return status;
}

static int parse_weights(json_reader *j, tfjs_manifest *m, tfjs_group *g)
{
    DCI_TRY(json_begin(j, '['));
    g->first_entry = m->entry_count;
    size_t count = 0;
    int done;
    for (;;) {
        DCI_TRY(json_next(j, ']', &count, &done));
        if (done)
            break;
        DCI_TRY(reserve_one((void **)&m->entries, &m->entry_capacity, m->entry_count,
                            sizeof *m->entries, j->label));
        uint64_t bytes = 0;
        tfjs_entry *e = &m->entries[m->entry_count];
        int status = parse_entry(j, e, &bytes);
        if (status != DC_OK) {
            free(e->name);
            return status;
        }
        m->entry_count++;
        g->bytes += bytes;
        if (g->bytes > IO_MAX_TOTAL_BYTES)
            return dci_err(DC_EFORMAT, "%s: the weights take more than %llu bytes", j->label,
                           (unsigned long long)IO_MAX_TOTAL_BYTES);
    }
    g->entry_count = m->entry_count - g->first_entry;
    return DC_OK;
}

static int parse_group(json_reader *j, tfjs_manifest *m)
{
    DCI_TRY(reserve_one((void **)&m->groups, &m->group_capacity, m->group_count,
                        sizeof *m->groups, j->label));
    tfjs_group *g = &m->groups[m->group_count++];
    memset(g, 0, sizeof *g);
    DCI_TRY(json_begin(j, '{'));
    int have_paths = 0, have_weights = 0;
    size_t count = 0;
    int done;
    char *key;
    for (;;) {
        DCI_TRY(json_member(j, &count, &key, &done));
        if (done)
            break;
        int status;
        if (strcmp(key, "paths") == 0) {
            g->first_path = m->path_count;
            status = have_paths++ ? duplicate_member(j, key) : parse_paths(j, m);
            g->path_count = m->path_count - g->first_path;
        } else if (strcmp(key, "weights") == 0) {
            status = have_weights++ ? duplicate_member(j, key) : parse_weights(j, m, g);
        } else {
            status = json_skip(j, 2);
        }
        free(key);
        DCI_TRY(status);
    }
    if (!have_paths || !have_weights)
        return json_error(j, "a weight group lacks \"paths\" or \"weights\"");
    return DC_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_unique_names(const tfjs_manifest *m, const char *label)
{
    if (m->entry_count < 2)
        return DC_OK;
    char **names = malloc(m->entry_count * sizeof *names);
    if (!names)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < m->entry_count; i++)
        names[i] = m->entries[i].name;
    qsort(names, m->entry_count, sizeof *names, compare_names);
    int status = DC_OK;
    for (size_t i = 1; i < m->entry_count && status == DC_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            status = dci_err(DC_EFORMAT, "%s: weight \"%s\" is listed twice", label, names[i]);
    free(names);
    return status;
}

static int parse_manifest(const uint8_t *text, size_t size, const char *label,
                          tfjs_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (size > IO_MAX_HEADER_BYTES)
        return dci_err(DC_EFORMAT, "%s: weights manifest larger than %u bytes", label,
                       IO_MAX_HEADER_BYTES);
    json_reader j = {.start = text, .p = text, .end = text + size, .label = label};
    j.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!j.c_locale)
        return dci_err(DC_ENOMEM, "%s: cannot make the C locale", label);
    int status = json_begin(&j, '[');
    size_t count = 0;
    int done = 0;
    while (status == DC_OK && !done) {
        status = json_next(&j, ']', &count, &done);
        if (status == DC_OK && !done)
            status = parse_group(&j, m);
    }
    freelocale(j.c_locale);
    if (status == DC_OK) {
        json_space(&j);
        if (j.p != j.end)
            status = json_error(&j, "text after the manifest");
    }
    if (status == DC_OK)
        status = check_unique_names(m, label);
    if (status != DC_OK)
        manifest_free(m);
    return status;
}

/* ---- decoding the shards ---------------------------------------------------------------- */

/* JavaScript's Math.round: halves go up. */
static double js_round(double v)
{
    double r = floor(v);
    return v - r >= 0.5 ? r + 1 : r;
}

static int decode_entry(const tfjs_entry *e, const uint8_t *src, const char *label,
                        io_tensor *out)
{
    out->value = (dc_tensor){.dtype = e->dtype, .ndim = e->ndim};
    memcpy(out->value.shape, e->shape, sizeof e->shape);
    size_t n = (size_t)e->numel;
    if (n == 0)
        return DC_OK;
    void *data = malloc(n * 4);
    if (!data)
        return dci_err(DC_ENOMEM, "%s: out of memory for weight \"%s\"", label, e->name);
    out->value.data = data;
    if (e->stored_size == 4) {
        memcpy(data, src, n * 4);
        return DC_OK;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned q = e->stored_size == 1 ? src[i] : (unsigned)(src[2 * i] | src[2 * i + 1] << 8);
        double v = (double)q * e->scale + e->min;
        if (e->dtype == DC_FLOAT32) {
            ((float *)data)[i] = (float)v;
            continue;
        }
        v = js_round(v);
        if (!(v >= INT32_MIN && v <= INT32_MAX))
            return dci_err(DC_EFORMAT, "%s: int32 weight \"%s\" dequantises out of range",
                           label, e->name);
        ((int32_t *)data)[i] = (int32_t)v;
    }
    return DC_OK;
}

/* The group's shards back to back: the one shard itself, or a concatenated copy. */
static int group_bytes(const tfjs_group *g, const io_mapped_file *shards, const char *label,
                       const uint8_t **data, size_t *size, uint8_t **copy)
{
    *copy = NULL;
    *size = 0;
    for (size_t i = 0; i < g->path_count; i++) {
        if (shards[g->first_path + i].size > SIZE_MAX - *size)
            return dci_err(DC_EFORMAT, "%s: shards too large", label);
        *size += shards[g->first_path + i].size;
    }
    if (g->path_count == 1 || *size == 0) {
        *data = g->path_count ? shards[g->first_path].data : NULL;
        return DC_OK;
    }
    if (*size != g->bytes)   /* checked again by the caller; avoids copying a wrong file */
        return DC_OK;
    if (!(*copy = malloc(*size)))
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    size_t at = 0;
    for (size_t i = 0; i < g->path_count; i++) {
        const io_mapped_file *s = &shards[g->first_path + i];
        if (s->size)
            memcpy(*copy + at, s->data, s->size);
        at += s->size;
    }
    *data = *copy;
    return DC_OK;
}

static int decode(const tfjs_manifest *m, const io_mapped_file *shards,
                  const char *const *shard_names, const char *label, io_tfjs_weights *out)
{
    io_tensor *tensors = calloc(m->entry_count ? m->entry_count : 1, sizeof *tensors);
    if (!tensors)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    *out = (io_tfjs_weights){.count = m->entry_count, .tensors = tensors};
    for (size_t gi = 0; gi < m->group_count; gi++) {
        const tfjs_group *g = &m->groups[gi];
        const uint8_t *data = NULL;
        size_t size;
        uint8_t *copy;
        DCI_TRY(group_bytes(g, shards, label, &data, &size, &copy));
        if (size != g->bytes) {
            free(copy);
            return dci_err(DC_EFORMAT, "%s: the weights of group %zu take %llu bytes but its "
                           "%zu shard(s) (%s%s) hold %zu", label, gi,
                           (unsigned long long)g->bytes, g->path_count,
                           g->path_count ? shard_names[g->first_path] : "none",
                           g->path_count > 1 ? ", ..." : "", size);
        }
        size_t at = 0;
        for (size_t i = 0; i < g->entry_count; i++) {
            const tfjs_entry *e = &m->entries[g->first_entry + i];
            io_tensor *t = &tensors[g->first_entry + i];
            int status = decode_entry(e, data ? data + at : NULL, label, t);
            if (status == DC_OK && !(t->name = strdup(e->name)))
                status = dci_err(DC_ENOMEM, "%s: out of memory", label);
            if (status != DC_OK) {
                free(copy);
                return status;
            }
            at += (size_t)(e->numel * e->stored_size);
        }
        free(copy);
    }
    return DC_OK;
}

/* ---- entry points ----------------------------------------------------------------------- */

int io_tfjs_read_buffers(const uint8_t *manifest, size_t manifest_size, const char *label,
                         const io_mapped_file *shards, size_t nshards, io_tfjs_weights *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "tfjs: output is NULL");
    memset(out, 0, sizeof *out);
    if (!label)
        label = "<tfjs manifest>";
    if ((!manifest && manifest_size) || (!shards && nshards))
        return dci_err(DC_EINVAL, "%s: NULL buffer", label);
    tfjs_manifest m;
    DCI_TRY(parse_manifest(manifest, manifest_size, label, &m));
    int status = DC_OK;
    if (nshards != m.path_count)
        status = dci_err(DC_EINVAL, "%s: the manifest lists %zu shard(s), %zu given", label,
                         m.path_count, nshards);
    if (status == DC_OK)
        status = decode(&m, shards, (const char *const *)m.paths, label, out);
    manifest_free(&m);
    if (status != DC_OK)
        io_tfjs_weights_free(out);
    return status;
}

/* dir of `manifest_path` (with its '/') followed by `name`. */
static char *sibling_path(const char *manifest_path, const char *name)
{
    const char *slash = strrchr(manifest_path, '/');
    size_t dir = slash ? (size_t)(slash - manifest_path) + 1 : 0, n = strlen(name);
    char *path = malloc(dir + n + 1);
    if (path) {
        memcpy(path, manifest_path, dir);
        memcpy(path + dir, name, n + 1);
    }
    return path;
}

int io_tfjs_read_files(const char *manifest_path, const char *weights_path,
                       io_tfjs_weights *out)
{
    if (!out)
        return dci_err(DC_EINVAL, "tfjs: output is NULL");
    memset(out, 0, sizeof *out);
    if (!manifest_path)
        return dci_err(DC_EINVAL, "tfjs: manifest path is NULL");
    io_mapped_file text;
    DCI_TRY(io_map_file(manifest_path, &text));
    tfjs_manifest m;
    int status = parse_manifest(text.data, text.size, manifest_path, &m);
    io_unmap_file(&text);
    DCI_TRY(status);

    if (weights_path && m.path_count != 1) {
        status = dci_err(DC_EINVAL, "%s: the manifest lists %zu shards; give no weights path "
                         "to read them beside it", manifest_path, m.path_count);
        manifest_free(&m);
        return status;
    }
    io_mapped_file *shards = calloc(m.path_count ? m.path_count : 1, sizeof *shards);
    char **names = calloc(m.path_count ? m.path_count : 1, sizeof *names);
    if (!shards || !names)
        status = dci_err(DC_ENOMEM, "%s: out of memory", manifest_path);
    for (size_t i = 0; status == DC_OK && i < m.path_count; i++) {
        names[i] = weights_path ? strdup(weights_path) : sibling_path(manifest_path, m.paths[i]);
        if (!names[i])
            status = dci_err(DC_ENOMEM, "%s: out of memory", manifest_path);
        else
            status = io_map_file(names[i], &shards[i]);
    }
    if (status == DC_OK)
        status = decode(&m, shards, (const char *const *)names, manifest_path, out);
    for (size_t i = 0; names && i < m.path_count; i++) {
        if (shards)
            io_unmap_file(&shards[i]);
        free(names[i]);
    }
    free(shards);
    free(names);
    manifest_free(&m);
    if (status != DC_OK)
        io_tfjs_weights_free(out);
    return status;
}

void io_tfjs_weights_free(io_tfjs_weights *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].value.data);
    }
    free(w->tensors);
    memset(w, 0, sizeof *w);
}

const io_tensor *io_tfjs_find(const io_tfjs_weights *w, const char *name)
{
    for (size_t i = 0; w && name && i < w->count; i++)
        if (w->tensors[i].name && strcmp(w->tensors[i].name, name) == 0)
            return &w->tensors[i];
    return NULL;
}
