/* The tfjs weights-manifest reader: decoding (float32, int32, uint8 / uint16 quantisation,
 * shards, groups, files beside the manifest) and hostile manifests and shards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/tfjs.h"

static int read_one(const char *json, const void *bin, size_t size, io_tfjs_weights *out)
{
    io_mapped_file shard = {.data = bin, .size = size};
    return io_tfjs_read_buffers((const uint8_t *)json, strlen(json), "m.json", &shard, 1, out);
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
}

/* float32 [2,3] | int32 [2] | uint8-quantised float32 [4] | uint16-quantised float32 [2] |
 * uint8-quantised int32 [3] | float32 scalar | float32 [0,5]. Unknown members are skipped. */
static const char MIXED[] =
    " [ {\"paths\": [\"a.bin\"], \"group_note\": {\"x\": [1, {\"y\": null}], \"z\": true},\n"
    "  \"weights\": [\n"
    "   {\"name\": \"conv/w\\u00e9\\\"\", \"shape\": [2, 3], \"dtype\": \"float32\"},\n"
    "   {\"name\": \"idx\", \"shape\": [2], \"dtype\": \"int32\", \"group\": \"model\"},\n"
    "   {\"shape\": [4], \"name\": \"q8\", \"dtype\": \"float32\",\n"
    "    \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -1.0E0}},\n"
    "   {\"name\": \"q16\", \"shape\": [2], \"dtype\": \"float32\",\n"
    "    \"quantization\": {\"min\": 2, \"scale\": 2.5e-1, \"dtype\": \"uint16\", \"original_dtype\": \"float32\"}},\n"
    "   {\"name\": \"qi\", \"shape\": [3], \"dtype\": \"int32\",\n"
    "    \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -1.25}},\n"
    "   {\"name\": \"s\", \"shape\": [], \"dtype\": \"float32\"},\n"
    "   {\"name\": \"e\", \"shape\": [0, 5], \"dtype\": \"float32\"}\n"
    "  ]}\n] ";

typedef struct mixed_bin {
    uint8_t bytes[64];
    size_t size;
} mixed_bin;

static mixed_bin mixed_shard(void)
{
    mixed_bin b = {{0}, 0};
    const float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.125f, 1e-3f};
    const int32_t idx[2] = {-7, 123456};
    const uint8_t q8[4] = {0, 1, 2, 255};
    const uint8_t q16[4] = {0x01, 0x00, 0x00, 0x01};   /* 1 and 256, little-endian */
    const uint8_t qi[3] = {0, 1, 5};                    /* -1.25 -> -1, -0.75 -> -1, 1.25 -> 1 */
    const float s = 42.0f;
    memcpy(b.bytes + b.size, w, sizeof w), b.size += sizeof w;
    memcpy(b.bytes + b.size, idx, sizeof idx), b.size += sizeof idx;
    memcpy(b.bytes + b.size, q8, sizeof q8), b.size += sizeof q8;
    memcpy(b.bytes + b.size, q16, sizeof q16), b.size += sizeof q16;
    memcpy(b.bytes + b.size, qi, sizeof qi), b.size += sizeof qi;
    memcpy(b.bytes + b.size, &s, sizeof s), b.size += sizeof s;
    return b;
}

TEST(decodes_float32_int32_and_quantised_weights)
{
    mixed_bin b = mixed_shard();
    io_tfjs_weights w;
    CHECK_OK(read_one(MIXED, b.bytes, b.size, &w));
    CHECK(w.count == 7);
    const io_tensor *t = io_tfjs_find(&w, "conv/w\xc3\xa9\"");
    CHECK(t == &w.tensors[0]);
    CHECK(t->value.dtype == DC_FLOAT32 && t->value.ndim == 2 && t->value.shape[0] == 2 &&
          t->value.shape[1] == 3);
    CHECK(((float *)t->value.data)[2] == 3.25f && ((float *)t->value.data)[5] == 1e-3f);
    t = io_tfjs_find(&w, "idx");
    CHECK(t && t->value.dtype == DC_INT32 && ((int32_t *)t->value.data)[1] == 123456 &&
          ((int32_t *)t->value.data)[0] == -7);
    t = io_tfjs_find(&w, "q8");
    CHECK(t && t->value.dtype == DC_FLOAT32);
    const float *q8 = t->value.data;
    CHECK(q8[0] == -1.0f && q8[1] == -0.5f && q8[2] == 0.0f && q8[3] == 126.5f);
    t = io_tfjs_find(&w, "q16");
    CHECK(t && ((float *)t->value.data)[0] == 2.25f && ((float *)t->value.data)[1] == 66.0f);
    t = io_tfjs_find(&w, "qi");
    CHECK(t && t->value.dtype == DC_INT32);
    const int32_t *qi = t->value.data;
    CHECK(qi[0] == -1 && qi[1] == -1 && qi[2] == 1);
    t = io_tfjs_find(&w, "s");
    CHECK(t && t->value.ndim == 0 && *(float *)t->value.data == 42.0f);
    t = io_tfjs_find(&w, "e");
    CHECK(t && t->value.ndim == 2 && t->value.shape[0] == 0 && t->value.data == NULL);
    CHECK(io_tfjs_find(&w, "missing") == NULL);
    io_tfjs_weights_free(&w);
    CHECK(w.count == 0 && w.tensors == NULL);
    io_tfjs_weights_free(&w);   /* twice is fine */
}

/* Group 0's weight spans its two shards; group 1 has its own shard. */
static const char SHARDED[] =
    "[{\"paths\": [\"g0-1\", \"g0-2\"], \"weights\": [\n"
    "   {\"name\": \"a\", \"shape\": [3], \"dtype\": \"float32\"}]},\n"
    " {\"weights\": [{\"name\": \"b\", \"shape\": [1], \"dtype\": \"int32\"}],\n"
    "  \"paths\": [\"sub/g1\"]}]";

TEST(reads_weights_across_shards_and_groups)
{
    const float a[3] = {1.0f, 2.0f, 3.0f};
    const int32_t bv = 99;
    io_mapped_file shards[3] = {{(const uint8_t *)a, 5}, {(const uint8_t *)a + 5, 7},
                                {(const uint8_t *)&bv, 4}};
    io_tfjs_weights w;
    CHECK_OK(io_tfjs_read_buffers((const uint8_t *)SHARDED, strlen(SHARDED), "s", shards, 3, &w));
    CHECK(w.count == 2);
    CHECK(memcmp(w.tensors[0].value.data, a, sizeof a) == 0);
    CHECK(*(int32_t *)w.tensors[1].value.data == 99);
    io_tfjs_weights_free(&w);

    CHECK_STATUS(io_tfjs_read_buffers((const uint8_t *)SHARDED, strlen(SHARDED), "s", shards, 2,
                                      &w), DC_EINVAL);
    shards[1].size = 6;   /* group 0 one byte short */
    CHECK_STATUS(io_tfjs_read_buffers((const uint8_t *)SHARDED, strlen(SHARDED), "s", shards, 3,
                                      &w), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "g0-1"));
    CHECK(w.count == 0 && w.tensors == NULL);
}

TEST(reads_files_beside_the_manifest_or_a_given_weights_file)
{
    char dir[512], path[600], other[600], shard[600];
    snprintf(dir, sizeof dir, "%s/tfjs", test_tmpdir());
    snprintf(path, sizeof path, "mkdir -p %s/sub", dir);
    CHECK(system(path) == 0);
    mixed_bin b = mixed_shard();
    write_file(path_join(path, sizeof path, dir, "m.json"), MIXED, strlen(MIXED));
    write_file(path_join(shard, sizeof shard, dir, "a.bin"), b.bytes, b.size);
    write_file(path_join(other, sizeof other, dir, "renamed.bin"), b.bytes, b.size);

    io_tfjs_weights w;
    CHECK_OK(io_tfjs_read_files(path, NULL, &w));
    CHECK(w.count == 7 && *(float *)io_tfjs_find(&w, "s")->value.data == 42.0f);
    io_tfjs_weights_free(&w);
    CHECK_OK(io_tfjs_read_files(path, other, &w));
    CHECK(w.count == 7);
    io_tfjs_weights_free(&w);

    write_file(shard, b.bytes, b.size - 1);   /* truncated */
    CHECK_STATUS(io_tfjs_read_files(path, NULL, &w), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "a.bin") && strstr(dc_last_error(), "hold"));
    b.bytes[b.size++] = 0;                     /* one byte too many */
    write_file(shard, b.bytes, b.size);
    CHECK_STATUS(io_tfjs_read_files(path, NULL, &w), DC_EFORMAT);
    CHECK_STATUS(io_tfjs_read_files(path, path_join(other, sizeof other, dir, "none.bin"), &w),
                 DC_EIO);
    CHECK_STATUS(io_tfjs_read_files(path_join(other, sizeof other, dir, "none.json"), NULL, &w),
                 DC_EIO);

    /* Several shards: only beside the manifest. */
    write_file(path_join(path, sizeof path, dir, "s.json"), SHARDED, strlen(SHARDED));
    CHECK_STATUS(io_tfjs_read_files(path, shard, &w), DC_EINVAL);
    const float a[3] = {4.0f, 5.0f, 6.0f};
    const int32_t bv = -3;
    write_file(path_join(other, sizeof other, dir, "g0-1"), a, 8);
    write_file(path_join(other, sizeof other, dir, "g0-2"), (const uint8_t *)a + 8, 4);
    write_file(path_join(other, sizeof other, dir, "sub/g1"), &bv, 4);
    CHECK_OK(io_tfjs_read_files(path, NULL, &w));
    CHECK(((float *)w.tensors[0].value.data)[2] == 6.0f && *(int32_t *)w.tensors[1].value.data == -3);
    io_tfjs_weights_free(&w);
    CHECK_STATUS(io_tfjs_read_files(NULL, NULL, &w), DC_EINVAL);
    CHECK_STATUS(io_tfjs_read_files(path, NULL, NULL), DC_EINVAL);
}

/* One float32 weight of `shape` in a one-shard manifest around `weight_extra` members. */
static int read_weight_json(const char *weight, const void *bin, size_t size)
{
    char json[1024];
    snprintf(json, sizeof json, "[{\"paths\": [\"w.bin\"], \"weights\": [%s]}]", weight);
    io_tfjs_weights w;
    int status = read_one(json, bin, size, &w);
    io_tfjs_weights_free(&w);
    return status;
}

TEST(refuses_malformed_json)
{
    static const char *const bad[] = {
        "",
        "{}",
        "[",
        "[{\"paths\": [], \"weights\": []},]",
        "[{\"paths\": [], \"weights\": []}] x",
        "[{\"paths\": [], \"weights\": [],}]",
        "[{'paths': [], \"weights\": []}]",
        "[{\"paths\": [] \"weights\": []}]",
        "[{\"paths\": [], \"weights\": []}] /* c */",
        "[{\"paths\": [], \"weights\": [], \"x\": NaN}]",
        "[{\"paths\": [], \"weights\": [], \"x\": 01}]",
        "[{\"paths\": [], \"weights\": [], \"x\": 1.}]",
        "[{\"paths\": [], \"weights\": [], \"x\": -}]",
        "[{\"paths\": [], \"weights\": [], \"x\": 1e}]",
        "[{\"paths\": [], \"weights\": [], \"x\": 1e999}]",
        "[{\"paths\": [], \"weights\": [], \"x\": tru}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\\x\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\\ud800\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\\udc00\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\\ud800\\u0041\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\\u12\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"a\tb\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\xc3\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\xc0\xaf\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"\xed\xa0\x80\"}]",
        "[{\"paths\": [], \"weights\": [], \"x\": \"unterminated}]",
        "[{\"paths\": []}]",
        "[{\"weights\": []}]",
        "[{\"paths\": [], \"paths\": [], \"weights\": []}]",
        "[{\"paths\": [1], \"weights\": []}]",
        "[{\"paths\": [\"../up.bin\"], \"weights\": []}]",
        "[{\"paths\": [\"a/../../up.bin\"], \"weights\": []}]",
        "[{\"paths\": [\"/etc/passwd\"], \"weights\": []}]",
        "[{\"paths\": [\"\"], \"weights\": []}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        io_tfjs_weights w;
        int status = read_one(bad[i], "", 0, &w);
        CHECKF(status == DC_EFORMAT, "case %zu (%s) -> %d (%s)", i, bad[i], status,
               dc_last_error());
        CHECK(w.count == 0 && w.tensors == NULL);
    }
    /* Nesting in a skipped member is bounded. */
    char deep[600] = "[{\"paths\": [], \"weights\": [], \"x\": ";
    for (int i = 0; i < 200; i++)
        strcat(deep, "[");
    io_tfjs_weights w;
    CHECK_STATUS(read_one(deep, "", 0, &w), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "nested too deeply"));
    /* A name with U+0000 would not be one C string. */
    CHECK_STATUS(read_weight_json("{\"name\": \"a\\u0000b\", \"shape\": [], \"dtype\": \"float32\"}",
                                  "\0\0\0\0", 4), DC_EFORMAT);
    /* But escapes and surrogate pairs decode: U+1F600. */
    static const char emoji[] = "[{\"paths\": [], \"weights\": [{\"name\": \"\\ud83d\\ude00\\/\", "
                                "\"shape\": [0], \"dtype\": \"float32\"}]}]";
    CHECK_OK(io_tfjs_read_buffers((const uint8_t *)emoji, strlen(emoji), "u", NULL, 0, &w));
    CHECK(w.count == 1 && strcmp(w.tensors[0].name, "\xf0\x9f\x98\x80/") == 0);
    io_tfjs_weights_free(&w);
    /* Empty manifests and groups are valid, and need no shard. */
    CHECK_OK(io_tfjs_read_buffers((const uint8_t *)"[]", 2, "e", NULL, 0, &w));
    CHECK(w.count == 0);
    io_tfjs_weights_free(&w);
}

TEST(refuses_bad_weight_entries)
{
    static const uint8_t zeros[64];
    static const char *const bad[] = {
        "{\"shape\": [1], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [1]}",
        "{\"name\": \"a\", \"name\": \"b\", \"shape\": [1], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float16\"}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"string\"}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": 5}",
        "{\"name\": \"a\", \"shape\": [-1], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [2.5], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [1e3], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [1,1,1,1,1,1,1,1,1], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [4294967296, 4294967296], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [99999999999999999999], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [17179869184], \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": 1, \"dtype\": \"float32\"}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\", "
        "\"quantization\": {\"dtype\": \"float16\"}}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\", "
        "\"quantization\": {\"dtype\": \"uint8\", \"min\": 0}}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\", "
        "\"quantization\": {\"dtype\": \"uint8\", \"scale\": 1, \"min\": 0, \"min\": 1}}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"int32\", "
        "\"quantization\": {\"dtype\": \"uint8\", \"scale\": 1e10, \"min\": 1e10}}",
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"}, "
        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int status = read_weight_json(bad[i], zeros, 4);
        CHECKF(status == DC_EFORMAT, "case %zu (%s) -> %d (%s)", i, bad[i], status,
               dc_last_error());
    }
    CHECK_STATUS(read_weight_json("{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float16\"}",
                                  zeros, 2), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "\"a\"") && strstr(dc_last_error(), "float16"));
    /* A name longer than IO_MAX_NAME_LENGTH. */
    char *entry = malloc(6000);
    CHECK(entry);
    strcpy(entry, "{\"name\": \"");
    memset(entry + strlen(entry), 'n', 5000);
    strcpy(entry + 10 + 5000, "\", \"shape\": [1], \"dtype\": \"float32\"}");
    char *json = malloc(6200);
    snprintf(json, 6200, "[{\"paths\": [\"w.bin\"], \"weights\": [%s]}]", entry);
    io_tfjs_weights w;
    int status = read_one(json, zeros, 4, &w);
    free(entry);
    free(json);
    CHECK_STATUS(status, DC_EFORMAT);
}

/* Every proper prefix of a valid manifest is refused, and no byte flip crashes the reader. */
TEST(survives_truncated_and_corrupted_manifests)
{
    mixed_bin b = mixed_shard();
    size_t n = strlen(MIXED);
    char *copy = malloc(n + 1);
    CHECK(copy);
    io_mapped_file shard = {.data = b.bytes, .size = b.size};
    size_t prefixes_ok = 0, flips_ok = 0;
    for (size_t len = 0; len < n; len++) {
        io_tfjs_weights w;
        int status = io_tfjs_read_buffers((const uint8_t *)MIXED, len, "p", &shard, 1, &w);
        /* A prefix that cuts only trailing whitespace is the whole manifest. */
        if (status == DC_OK && strspn(MIXED + len, " \n") == n - len)
            prefixes_ok++;
        else if (status != DC_EFORMAT && status != DC_EINVAL) {
            free(copy);
            CHECKF(0, "prefix %zu -> %d", len, status);
        }
        io_tfjs_weights_free(&w);
    }
    for (size_t at = 0; at < n; at++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, MIXED, n + 1);
            copy[at] ^= (char)(1 << bit);
            io_tfjs_weights w;
            int status = io_tfjs_read_buffers((const uint8_t *)copy, n, "f", &shard, 1, &w);
            if (status == DC_OK) {
                flips_ok++;
                size_t bytes = 0;
                for (size_t i = 0; i < w.count; i++)
                    bytes += (size_t)dc_tensor_numel(&w.tensors[i].value);
                if (!(w.count <= 7 && bytes <= 64)) {
                    io_tfjs_weights_free(&w);
                    free(copy);
                    CHECKF(0, "flip at %zu bit %d decoded %zu weights", at, bit, w.count);
                }
            } else if (status != DC_EFORMAT && status != DC_EINVAL) {
                free(copy);
                CHECKF(0, "flip at %zu bit %d -> %d", at, bit, status);
            }
            io_tfjs_weights_free(&w);
        }
    }
    free(copy);
    CHECK(prefixes_ok == 1);      /* only the cut of the final space */
    CHECK(flips_ok > 0);          /* e.g. in names: the reader is not refusing everything */
}
