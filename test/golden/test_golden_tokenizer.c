/* Conformance: CLIP tokens of golden/tokenizer (truncate=True) and golden/clip_vit, exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The whole file, NUL-terminated, or NULL. */
static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *bigger = realloc(data, cap);
            if (!bigger) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = bigger;
        }
        got = fread(data + n, 1, 4096, f);
        n += got;
    } while (got > 0);
    fclose(f);
    data[n] = '\0';
    *size = n;
    return data;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A JSON array of strings, decoded in place (an escape is never shorter than what it
 * stands for) into `texts` (at most `cap`); the count, or -1. */
static int parse_string_array(char *json, char **texts, int cap)
{
    static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";  /* escape, character */
    char *p = strchr(json, '['), *out;
    int count = 0;
    if (!p)
        return -1;
    for (p++;;) {
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',')
            p++;
        if (*p == ']')
            return count;
        if (*p != '"' || count == cap)
            return -1;
        texts[count++] = out = ++p;
        while (*p != '"') {
            if (!*p)
                return -1;
            if (*p != '\\') {
                *out++ = *p++;
                continue;
            }
            char e = p[1];
            const char *simple = e ? strchr(escapes, e) : NULL;
            p += 2;
            if (simple && (simple - escapes) % 2 == 0) {
                *out++ = simple[1];
            } else if (e == 'u') {
                unsigned cp, low;
                if (sscanf(p, "%4x", &cp) != 1)
                    return -1;
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (p[0] != '\\' || p[1] != 'u' || sscanf(p + 2, "%4x", &low) != 1)
                        return -1;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
                out += put_utf8(out, cp);
            } else {
                return -1;
            }
        }
        *out = '\0';
        p++;
    }
}

/* A C-ordered little-endian int64 .npy of shape [rows, cols]; data is malloc'd. */
static int64_t *read_int64_npy(const char *path, int64_t *rows, int64_t *cols)
{
    size_t size;
    char *file = read_all(path, &size);
    int64_t *data = NULL;
    if (file && size > 10 && memcmp(file, "\x93NUMPY", 6) == 0 && file[6] == 1) {
        size_t header = (size_t)(unsigned char)file[8] | (size_t)(unsigned char)file[9] << 8;
        char *shape = strstr(file + 10, "'shape': (");
        long long r, c;
        if (10 + header <= size && strstr(file + 10, "'<i8'") &&
            strstr(file + 10, "'fortran_order': False") && shape &&
            sscanf(shape, "'shape': (%lld, %lld)", &r, &c) == 2 && r >= 0 && c >= 0 &&
            size - 10 - header == (size_t)(r * c) * sizeof(int64_t)) {
            data = malloc((size_t)(r * c) * sizeof *data + 1);
            memcpy(data, file + 10 + header, (size_t)(r * c) * sizeof *data);
            *rows = r;
            *cols = c;
        }
    }
    free(file);
    return data;
}

static void check_case(const char *name)
{
    char dir[1024], path[1200], vocab[1024];
    if (!golden_case(name, dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    size_t size;
    char *json = read_all(path_join(path, sizeof path, dir, "strings.json"), &size);
    CHECK(json);
    char *texts[64];
    int count = parse_string_array(json, texts, 64);
    int64_t rows = 0, cols = 0;
    int64_t *golden = read_int64_npy(path_join(path, sizeof path, dir, "tokens.npy"), &rows, &cols);
    if (count < 1 || !golden || rows != count || cols != 77) {
        free(json);
        free(golden);
        CHECKF(0, "%s: cannot read strings.json (%d) or tokens.npy [%lld, %lld]", name, count,
               (long long)rows, (long long)cols);
    }
    dc_tokenizer *tok = NULL;
    dc_tensor tokens = {0};
    int status = dc_tokenizer_new(&tok, vocab);
    if (status == DC_OK)
        status = dc_tokenize(tok, (const char *const *)texts, (size_t)count, 77, 1, &tokens);
    int mismatch = -1;
    for (int i = 0; status == DC_OK && i < count && mismatch < 0; i++)
        if (memcmp((int64_t *)tokens.data + i * 77, golden + i * 77, 77 * sizeof *golden) != 0)
            mismatch = i;
    dc_tensor_free(&tokens);
    dc_tokenizer_free(tok);
    free(json);
    free(golden);
    CHECK_OK(status);
    CHECKF(mismatch < 0, "%s: row %d of %d differs", name, mismatch, count);
}

TEST(golden_tokenizer_strings) { check_case("tokenizer"); }

TEST(golden_clip_vit_strings) { check_case("clip_vit"); }
