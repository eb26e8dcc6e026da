/* The zip reader on archives built here (stored, deflated, ZIP64, padded local headers,
 * comments) and on hostile variants of them; the writer's alignment and ZIP64 records. */
#include <string.h>

#include "harness.h"
#include "io/file.h"
#include "io/limits.h"
#include "io/zip.h"
#include "io_fixtures.h"

enum { HOSTILE_MEMORY = 256u << 20 };

static uint8_t pattern[5000];

static const struct {
    const char *name;
    const uint8_t *data;
    size_t size;
    int deflated;
    uint16_t padding;
} sample_entries[] = {
    {"arch/a.txt", (const uint8_t *)"hello, zip", 10, 0, 0},
    {"arch/data/0", pattern, sizeof pattern, 1, 0},
    {"arch/data/1", pattern + 7, 100, 0, 37},
    {"arch/empty", (const uint8_t *)"", 0, 1, 0},
};
enum { SAMPLE_COUNT = sizeof sample_entries / sizeof sample_entries[0] };

static void build_sample(io_buffer *out, int zip64, const char *comment)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i % 251 * 7 + i / 500);
    fx_zip z = {.zip64 = zip64};
    for (int i = 0; i < SAMPLE_COUNT; i++)
        fx_zip_add(&z, sample_entries[i].name, sample_entries[i].data, sample_entries[i].size,
                   sample_entries[i].deflated, sample_entries[i].padding);
    fx_zip_finish(&z, comment);
    *out = z.out;
}

/* Opens and reads every sample entry: DC_OK only when all are present and identical. */
static int read_sample(const uint8_t *data, size_t size, int *identical)
{
    io_zip zip;
    *identical = 1;
    int status = io_zip_open(&zip, data, size, "sample.zip");
    for (int i = 0; status == DC_OK && i < SAMPLE_COUNT; i++) {
        const uint8_t *bytes;
        size_t n;
        status = io_zip_read_named(&zip, sample_entries[i].name, &bytes, &n);
        if (status == DC_OK && (n != sample_entries[i].size ||
                                (n && memcmp(bytes, sample_entries[i].data, n) != 0)))
            *identical = 0;
    }
    if (status == DC_OK && zip.count != SAMPLE_COUNT)
        *identical = 0;
    io_zip_close(&zip);
    return status;
}

TEST(stored_and_deflated_entries_read_back)
{
    io_buffer zip;
    build_sample(&zip, 0, NULL);
    int identical;
    CHECK(io_zip_is_zip(zip.data, zip.size));
    CHECK_OK(read_sample(zip.data, zip.size, &identical));
    CHECK(identical);
    io_zip z;
    CHECK_OK(io_zip_open(&z, zip.data, zip.size, "sample.zip"));
    CHECK(io_zip_find(&z, "arch/missing") == NULL);
    const uint8_t *bytes;
    size_t n;
    CHECK_STATUS(io_zip_read_named(&z, "arch/missing", &bytes, &n), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "sample.zip: missing arch/missing") != NULL);
    io_zip_close(&z);
    io_buffer_free(&zip);
}

TEST(zip64_records_and_comments_are_read)
{
    io_buffer zip;
    build_sample(&zip, 1, "a comment after the end record");
    int identical;
    CHECK_OK(read_sample(zip.data, zip.size, &identical));
    CHECK(identical);
    io_buffer_free(&zip);
}

TEST(crc_mismatch_is_refused)
{
    io_buffer zip;
    build_sample(&zip, 0, NULL);
    uint8_t *text = memmem(zip.data, zip.size, "hello, zip", 10);
    CHECK(text != NULL);
    text[0] ^= 1;
    int identical;
    CHECK_STATUS(read_sample(zip.data, zip.size, &identical), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "arch/a.txt: CRC-32 mismatch") != NULL);
    io_buffer_free(&zip);
}

/* Every failure is a format error with a message naming the file, never DC_ENOMEM. */
static int clean_failure(int status)
{
    return status == DC_EFORMAT && strncmp(dc_last_error(), "sample.zip: ", 12) == 0;
}

TEST(every_truncation_fails_cleanly)
{
    io_buffer zip;
    build_sample(&zip, 1, NULL);
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    for (size_t n = 0; n < zip.size; n++) {
        int identical;
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, zip.data, n);
        int status = read_sample(copy, n, &identical);
        free(copy);
        if (!clean_failure(status)) {
            fx_unlimit_memory();
            CHECKF(0, "truncated to %zu bytes: status %d (%s)", n, status, dc_last_error());
        }
    }
    fx_unlimit_memory();
    io_buffer_free(&zip);
}

TEST(bit_flips_never_give_wrong_data)
{
    io_buffer zip;
    build_sample(&zip, 0, "c");
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    size_t accepted = 0, refused = 0;
    for (size_t i = 0; i < zip.size; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            zip.data[i] ^= (uint8_t)(1u << bit);
            int identical;
            int status = read_sample(zip.data, zip.size, &identical);
            zip.data[i] ^= (uint8_t)(1u << bit);
            if (status == DC_OK && !identical) {
                fx_unlimit_memory();
                CHECKF(0, "flip of bit %d at %zu gave wrong data", bit, i);
            }
            if (status != DC_OK && !clean_failure(status)) {
                fx_unlimit_memory();
                CHECKF(0, "flip at %zu: status %d (%s)", i, status, dc_last_error());
            }
            status == DC_OK ? accepted++ : refused++;
        }
    }
    fx_unlimit_memory();
    CHECK(refused > accepted);  /* most bytes matter: sizes, offsets, CRCs, data */
    io_buffer_free(&zip);
}

TEST(random_bytes_are_refused)
{
    uint64_t state = 0x9E3779B97F4A7C15ull;
    uint8_t buf[400];
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(round % 397) + 1;
        for (size_t i = 0; i < n; i++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            buf[i] = (uint8_t)state;
        }
        if (round % 2 && n > 30)  /* half start like a zip and end like one */
            memcpy(buf, "PK\x03\x04", 4), memcpy(buf + n - 22, "PK\x05\x06", 4);
        io_zip zip;
        int status = io_zip_open(&zip, buf, n, "sample.zip");
        for (size_t e = 0; status == DC_OK && e < zip.count; e++) {
            const uint8_t *data;
            size_t size;
            io_zip_read(&zip, &zip.entries[e], &data, &size);
        }
        io_zip_close(&zip);
        if (status != DC_OK && !clean_failure(status)) {
            fx_unlimit_memory();
            CHECKF(0, "round %d: status %d (%s)", round, status, dc_last_error());
        }
    }
    fx_unlimit_memory();
}

/* Offset of the last occurrence of a 4-byte signature. */
static size_t last_signature(const io_buffer *b, uint32_t signature)
{
    for (size_t p = b->size - 4; p > 0; p--)
        if (io_le32(b->data + p) == signature)
            return p;
    return 0;
}

TEST(huge_declared_counts_sizes_and_offsets_are_refused)
{
    io_buffer zip;
    int identical;
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);

    build_sample(&zip, 1, NULL);
    size_t record = last_signature(&zip, 0x06064b50);
    io_put_le64(zip.data + record + 24, (uint64_t)IO_MAX_ZIP_ENTRIES + 1);
    io_put_le64(zip.data + record + 32, (uint64_t)IO_MAX_ZIP_ENTRIES + 1);
    int status = read_sample(zip.data, zip.size, &identical);
    CHECKF(status == DC_EFORMAT && strstr(dc_last_error(), "limit"), "%s", dc_last_error());
    io_put_le64(zip.data + record + 24, UINT64_MAX);
    io_put_le64(zip.data + record + 32, UINT64_MAX);
    CHECK(clean_failure(read_sample(zip.data, zip.size, &identical)));
    io_buffer_free(&zip);

    build_sample(&zip, 0, NULL);
    size_t end = last_signature(&zip, 0x06054b50);
    io_put_le32(zip.data + end + 16, 0x7FFFFFF0u);  /* central directory offset */
    CHECK(clean_failure(read_sample(zip.data, zip.size, &identical)));
    io_buffer_free(&zip);

    /* Central directory fields of the deflated entry arch/data/0 (the second). */
    build_sample(&zip, 0, NULL);
    size_t directory = io_le32(zip.data + last_signature(&zip, 0x06054b50) + 16);
    size_t second = directory + 46 + strlen(sample_entries[0].name);
    CHECK(io_le32(zip.data + second) == 0x02014b50);
    io_put_le32(zip.data + second + 24, 0xFFFFFFF0u);  /* uncompressed size */
    status = read_sample(zip.data, zip.size, &identical);
    CHECKF(status == DC_EFORMAT && strstr(dc_last_error(), "implausible"), "%s", dc_last_error());
    io_put_le32(zip.data + second + 24, sizeof pattern);
    io_put_le32(zip.data + second + 20, 0x7FFFFFF0u);  /* compressed size */
    CHECK(clean_failure(read_sample(zip.data, zip.size, &identical)));
    io_put_le32(zip.data + second + 20, 0);
    CHECK(clean_failure(read_sample(zip.data, zip.size, &identical)));
    io_put_le32(zip.data + second + 42, 0xFFFFFF00u);  /* local header offset */
    CHECK(clean_failure(read_sample(zip.data, zip.size, &identical)));
    io_buffer_free(&zip);

    fx_unlimit_memory();
}

static void check_written(const char *path, int force_zip64)
{
    io_zip_writer w;
    CHECK_OK(io_zip_writer_begin(&w, path));
    w.force_zip64 = force_zip64;
    for (int i = 0; i < SAMPLE_COUNT; i++)
        CHECK_OK(io_zip_writer_add(&w, sample_entries[i].name, sample_entries[i].data,
                                   sample_entries[i].size));
    CHECK_OK(io_zip_writer_finish(&w));
    io_mapped_file file;
    CHECK_OK(io_map_file(path, &file));
    int identical;
    int status = read_sample(file.data, file.size, &identical);
    io_zip zip;
    CHECK_OK(io_zip_open(&zip, file.data, file.size, path));
    for (size_t i = 0; i < zip.count; i++) {
        const uint8_t *local = file.data + zip.entries[i].local_offset;
        uint64_t start = zip.entries[i].local_offset + 30 + io_le16(local + 26) + io_le16(local + 28);
        CHECKF(start % 64 == 0, "%s data at %llu", zip.entries[i].name, (unsigned long long)start);
    }
    io_zip_close(&zip);
    io_unmap_file(&file);
    CHECK_OK(status);
    CHECK(identical);
}

TEST(writer_aligns_data_and_reads_back)
{
    char path[512];
    check_written(path_join(path, sizeof path, test_tmpdir(), "written.zip"), 0);
    if (test_failed())
        return;
    check_written(path_join(path, sizeof path, test_tmpdir(), "written64.zip"), 1);
}
