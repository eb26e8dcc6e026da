/* Conformance: CLIP tokens of golden/tokenizer (truncate=True) and golden/clip_vit, exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/file.h"
#include "io/json.h"
#include "io/npy.h"

enum { MAX_TEXTS = 64, CONTEXT = 77 };

/* The JSON array of strings at `path` into texts (malloc'd each); the count, or -1. */
static int read_texts(const char *path, char **texts)
{
    io_mapped_file file;
    if (io_map_file(path, &file) != DC_OK)
        return -1;
    io_json j;
    io_json_init(&j, file.data, file.size, path);
    size_t count = 0;
    int done = 0, ok = io_json_array_begin(&j) == DC_OK;
    while (ok && io_json_array_next(&j, &count, &done) == DC_OK && !done)
        ok = count <= MAX_TEXTS && io_json_string(&j, &texts[count - 1]) == DC_OK;
    ok = ok && done && io_json_finish(&j) == DC_OK;
    io_unmap_file(&file);
    return ok ? (int)count : -1;
}

static void check_case(const char *name)
{
    char dir[1024], path[1200], vocab[1024];
    if (!golden_case(name, dir, sizeof dir) ||
        !clip_data_path("bpe_simple_vocab_16e6.txt.gz", vocab, sizeof vocab))
        return;
    char *texts[MAX_TEXTS] = {0};
    int count = read_texts(path_join(path, sizeof path, dir, "strings.json"), texts);
    dc_tensor golden = {0}, tokens = {0};
    int read = io_npy_read_file(path_join(path, sizeof path, dir, "tokens.npy"), &golden);
    dc_tokenizer *tok = NULL;
    int status = DC_EINVAL, mismatch = -1;
    if (count >= 1 && read == DC_OK && golden.dtype == DC_INT64 && golden.ndim == 2 &&
        golden.shape[0] == count && golden.shape[1] == CONTEXT) {
        status = dc_tokenizer_new(&tok, vocab);
        if (status == DC_OK)
            status = dc_tokenize(tok, (const char *const *)texts, (size_t)count, CONTEXT, 1,
                                 &tokens);
        const int64_t *want = golden.data;
        for (int i = 0; status == DC_OK && i < count && mismatch < 0; i++)
            if (memcmp((int64_t *)tokens.data + i * CONTEXT, want + i * CONTEXT,
                       CONTEXT * sizeof *want) != 0)
                mismatch = i;
    } else {
        test_fail_at(__FILE__, __LINE__, "%s: cannot read strings.json (%d) or tokens.npy",
                     name, count);
    }
    dc_tensor_free(&tokens);
    dc_tensor_free(&golden);
    dc_tokenizer_free(tok);
    for (int i = 0; i < MAX_TEXTS; i++)
        free(texts[i]);
    CHECK_OK(status);
    CHECKF(mismatch < 0, "%s: row %d of %d differs", name, mismatch, count);
}

TEST(golden_tokenizer_strings) { check_case("tokenizer"); }

TEST(golden_clip_vit_strings) { check_case("clip_vit"); }
