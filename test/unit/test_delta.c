/* The weights-delta file (src/io/delta.c): round trip, and refusal of damaged or hostile
 * files (every truncation, flipped bytes, lying sizes) without crashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "harness.h"
#include "io/bytes.h"
#include "io/delta.h"

static const char base_id[IO_DELTA_BASE_ID_SIZE] = "0123456789abcdef-base";

static uint16_t halfs_a[6] = {0x0000, 0x3c00, 0xbc00, 0x0001, 0x7bff, 0x8400};
static uint16_t halfs_b[3] = {0x1234, 0x1234, 0x1234};

static int write_sample(const char *path)
{
    dc_named_tensor t[3] = {
        {"down.0.weight", {.dtype = DC_FLOAT16, .ndim = 2, .shape = {2, 3}, .data = halfs_a}},
        {"temb.dense.0.bias", {.dtype = DC_FLOAT16, .ndim = 1, .shape = {3}, .data = halfs_b}},
        {"empty", {.dtype = DC_FLOAT16, .ndim = 2, .shape = {0, 4}, .data = NULL}},
    };
    return io_delta_write(path, base_id, t, 3);
}

TEST(delta_round_trip)
{
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "a.delta");
    CHECK_OK(write_sample(path));
    char id[IO_DELTA_BASE_ID_SIZE];
    io_state_dict sd;
    CHECK_OK(io_delta_read_file(path, id, &sd));
    CHECK(strcmp(id, base_id) == 0);
    CHECK(sd.count == 3);
    CHECK(strcmp(sd.tensors[0].name, "down.0.weight") == 0);
    CHECK(sd.tensors[0].value.dtype == DC_FLOAT16 && sd.tensors[0].value.ndim == 2 &&
          sd.tensors[0].value.shape[0] == 2 && sd.tensors[0].value.shape[1] == 3);
    CHECK(memcmp(sd.tensors[0].value.data, halfs_a, sizeof halfs_a) == 0);
    CHECK(memcmp(sd.tensors[1].value.data, halfs_b, sizeof halfs_b) == 0);
    CHECK(strcmp(sd.tensors[2].name, "empty") == 0 && sd.tensors[2].value.shape[0] == 0);
    io_state_dict_free(&sd);
}

TEST(delta_writer_refuses_bad_input)
{
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "bad.delta");
    float f32[2] = {1, 2};
    dc_named_tensor t = {"x", {.dtype = DC_FLOAT32, .ndim = 1, .shape = {2}, .data = f32}};
    CHECK_STATUS(io_delta_write(path, base_id, &t, 1), DC_EINVAL);
    char long_id[IO_DELTA_BASE_ID_SIZE];
    memset(long_id, 'a', sizeof long_id);
    t.tensor.dtype = DC_FLOAT16;
    CHECK_STATUS(io_delta_write(path, long_id, &t, 1), DC_EINVAL);
    dc_named_tensor twice[2] = {t, t};
    CHECK_STATUS(io_delta_write(path, base_id, twice, 2), DC_EINVAL);
}

TEST(damaged_delta_files_are_refused)
{
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "b.delta");
    CHECK_OK(write_sample(path));
    size_t size;
    uint8_t *good = test_read_file(path, &size);
    CHECK(good);
    uint8_t *copy = malloc(size + 16);
    CHECK(copy);
    char id[IO_DELTA_BASE_ID_SIZE];
    io_state_dict sd;
    /* Every truncation. */
    for (size_t n = 0; n < size; n++) {
        memcpy(copy, good, n);
        CHECKF(io_delta_read_buffer(copy, n, "t", id, &sd) == DC_EFORMAT, "length %zu", n);
        CHECK(sd.count == 0 && sd.tensors == NULL);
    }
    /* Every single flipped byte (the header, names, shapes and data are CRC-checked; sizes
     * are checked against the file). */
    for (size_t i = 0; i < size; i++) {
        memcpy(copy, good, size);
        copy[i] ^= 0x5a;
        int st = io_delta_read_buffer(copy, size, "t", id, &sd);
        CHECKF(st == DC_EFORMAT || st == DC_ENOMEM, "byte %zu: status %d", i, st);
        io_state_dict_free(&sd);
    }
    /* Trailing bytes. */
    memcpy(copy, good, size);
    memset(copy + size, 0, 16);
    CHECK_STATUS(io_delta_read_buffer(copy, size + 16, "t", id, &sd), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "after the last tensor") != NULL);
    /* A huge tensor count with a valid header CRC. */
    memcpy(copy, good, size);
    io_put_le32(copy + 12, 0xffffffffu);
    io_put_le32(copy + 60, (uint32_t)crc32(0, copy, 60));
    CHECK_STATUS(io_delta_read_buffer(copy, size, "t", id, &sd), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "tensors") != NULL);
    free(copy);
    free(good);
    CHECK_STATUS(io_delta_read_buffer((const uint8_t *)"DCWDELTA", 8, "t", id, &sd),
                 DC_EFORMAT);
    CHECK(!io_delta_detect((const uint8_t *)"PK\3\4", 4));
}
