#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

enum { MAX_JSON_DEPTH = 64 };

void io_json_init(io_json *j, const uint8_t *text, size_t length, const char *label)
{
    j->p = j->start = text;
    j->end = text + length;
    j->label = label ? label : "json";
}

static int fail(const io_json *j, const char *what)
{
    return dci_err(DC_EFORMAT, "%s: JSON header: %s (at byte %zu)", j->label, what,
                   (size_t)(j->p - j->start));
}

static void skip_space(io_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int peek(io_json *j)
{
    skip_space(j);
    return j->p < j->end ? *j->p : -1;
}

static int expect(io_json *j, char c)
{
    if (peek(j) != c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return fail(j, what);
    }
    j->p++;
    return DC_OK;
}

int io_json_object_begin(io_json *j) { return expect(j, '{'); }
int io_json_array_begin(io_json *j) { return expect(j, '['); }

/* Before the next element of a container closed by `close`: handles ',' and the end. */
static int next_element(io_json *j, size_t *count, char close, int *done)
{
    int c = peek(j);
    *done = 0;
    if (c == close) {
        j->p++;
        *done = 1;
        return DC_OK;
    }
    if (*count > 0) {
        if (c != ',')
            return fail(j, "expected ',' or the end of a container");
        j->p++;
    }
    (*count)++;
    return DC_OK;
}

int io_json_array_next(io_json *j, size_t *count, int *done)
{
    return next_element(j, count, ']', done);
}

int io_json_object_next(io_json *j, size_t *count, char **key, int *done)
{
    *key = NULL;
    DCI_TRY(next_element(j, count, '}', done));
    if (*done)
        return DC_OK;
    DCI_TRY(io_json_string(j, key));
    int status = expect(j, ':');
    if (status != DC_OK) {
        free(*key);
        *key = NULL;
    }
    return status;
}

static int hex4(io_json *j, unsigned *value)
{
    if (j->end - j->p < 4)
        return fail(j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = j->p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(j, "bad \\u escape");
        v = v << 4 | (unsigned)d;
    }
    j->p += 4;
    *value = v;
    return DC_OK;
}

static size_t put_utf8(uint8_t *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static int escape(io_json *j, uint8_t *out, size_t *written)
{
    if (j->p >= j->end)
        return fail(j, "truncated string");
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *simple = memchr(from, *j->p, sizeof from - 1);
    j->p++;
    if (simple) {
        out[0] = (uint8_t)to[simple - from];
        *written = 1;
        return DC_OK;
    }
    if (j->p[-1] != 'u')
        return fail(j, "bad escape");
    unsigned cp;
    DCI_TRY(hex4(j, &cp));
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(j, "lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned low;
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
            return fail(j, "lone high surrogate");
        j->p += 2;
        DCI_TRY(hex4(j, &low));
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(j, "bad surrogate pair");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp == 0)
        return fail(j, "U+0000 in a string");
    *written = put_utf8(out, cp);
    return DC_OK;
}

/* Reads a string; decodes it into a new buffer when value is not NULL. Escapes never decode
 * to more bytes than they take, so the raw length bounds the decoded one. */
static int read_string(io_json *j, char **value)
{
    DCI_TRY(expect(j, '"'));
    const uint8_t *begin = j->p;
    uint8_t *out = NULL;
    size_t length = 0;
    if (value) {
        out = malloc((size_t)(j->end - begin) + 1);
        if (!out)
            return dci_err(DC_ENOMEM, "%s: out of memory", j->label);
    }
    int status = DC_OK;
    for (;;) {
        if (j->p >= j->end) {
            status = fail(j, "truncated string");
            break;
        }
        uint8_t c = *j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) {
            status = fail(j, "control character in a string");
            break;
        }
        if (c == '\\') {
            j->p++;
            uint8_t decoded[4];
            size_t n = 0;
            status = escape(j, decoded, &n);
            if (status != DC_OK)
                break;
            if (out)
                memcpy(out + length, decoded, n);
            length += n;
            continue;
        }
        /* A run of plain bytes, checked as UTF-8 once the string ends. */
        if (out)
            out[length] = c;
        length++;
        j->p++;
    }
    if (status == DC_OK && out && !io_utf8_valid(out, length))
        status = fail(j, "string is not UTF-8");
    if (status == DC_OK && !out && !io_utf8_valid(begin, (size_t)(j->p - 1 - begin)))
        status = fail(j, "string is not UTF-8");
    if (status != DC_OK) {
        free(out);
        return status;
    }
    if (out) {
        out[length] = '\0';
        *value = (char *)out;
    }
    return DC_OK;
}

int io_json_string(io_json *j, char **value)
{
    *value = NULL;
    return read_string(j, value);
}

int io_json_uint(io_json *j, uint64_t *value)
{
    int c = peek(j);
    if (c < '0' || c > '9')
        return fail(j, "expected a non-negative integer");
    uint64_t v = 0;
    const uint8_t *first = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        unsigned digit = (unsigned)(*j->p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return fail(j, "integer too large");
        v = v * 10 + digit;
        j->p++;
    }
    if (*first == '0' && j->p - first > 1)
        return fail(j, "leading zero");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return fail(j, "expected an integer");
    *value = v;
    return DC_OK;
}

static int skip_digits(io_json *j)
{
    const uint8_t *first = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > first ? DC_OK : fail(j, "bad number");
}

static int skip_number(io_json *j)
{
    if (*j->p == '-')
        j->p++;
    const uint8_t *first = j->p;
    DCI_TRY(skip_digits(j));
    if (*first == '0' && j->p - first > 1)
        return fail(j, "leading zero");
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        DCI_TRY(skip_digits(j));
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        DCI_TRY(skip_digits(j));
    }
    return DC_OK;
}

static int skip_literal(io_json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return fail(j, "bad literal");
    j->p += n;
    return DC_OK;
}

static int skip_value(io_json *j, int depth)
{
    if (depth > MAX_JSON_DEPTH)
        return fail(j, "nested too deeply");
    int c = peek(j);
    size_t count = 0;
    int done = 0;
    switch (c) {
    case '{':
        j->p++;
        for (;;) {
            DCI_TRY(next_element(j, &count, '}', &done));
            if (done)
                return DC_OK;
            DCI_TRY(read_string(j, NULL));
            DCI_TRY(expect(j, ':'));
            DCI_TRY(skip_value(j, depth + 1));
        }
    case '[':
        j->p++;
        for (;;) {
            DCI_TRY(next_element(j, &count, ']', &done));
            if (done)
                return DC_OK;
            DCI_TRY(skip_value(j, depth + 1));
        }
    case '"':
        return read_string(j, NULL);
    case 't':
        return skip_literal(j, "true");
    case 'f':
        return skip_literal(j, "false");
    case 'n':
        return skip_literal(j, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return skip_number(j);
        return fail(j, c < 0 ? "truncated" : "unexpected character");
    }
}

int io_json_skip(io_json *j) { return skip_value(j, 0); }

int io_json_finish(io_json *j)
{
    skip_space(j);
    return j->p == j->end ? DC_OK : fail(j, "data after the end");
}

int io_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            extra = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= extra)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += extra + 1;
    }
    return 1;
}

void io_json_write_string(io_buffer *b, const char *s)
{
    io_buffer_byte(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            io_buffer_byte(b, '\\');
            io_buffer_byte(b, c);
        } else if (c < 0x20) {
            io_buffer_printf(b, "\\u%04x", c);
        } else {
            io_buffer_byte(b, c);
        }
    }
    io_buffer_byte(b, '"');
}
