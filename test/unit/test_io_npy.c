/* .npy reading and writing: numpy's own bytes, round trips over every dtype and odd shapes,
 * the refusals the header grammar promises, and a hostile corpus derived from valid files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "harness.h"
#include "io/file.h"
#include "io/limits.h"
#include "io/npy.h"

/* np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)) with numpy 1.24. */
static const char NUMPY_F4_HEADER[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    "                                                          \n";
static const uint8_t NUMPY_F4_DATA[24] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40,
    0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40,
};
/* np.save(f, np.array([1, -2.5, 65504, 2**-24, inf, -0.0, 2**-14, 0.333], np.float16)). */
static const char NUMPY_F2_HEADER[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f2', 'fortran_order': False, 'shape': (8,), }"
    "                                                            \n";
static const uint8_t NUMPY_F2_DATA[16] = {
    0x00, 0x3c, 0x00, 0xc1, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c, 0x00, 0x80, 0x00, 0x04, 0x54, 0x35,
};

/* header + data in one buffer (static storage: tests run one at a time). */
static uint8_t file_buf[4096];

static size_t concat(const void *head, size_t head_len, const void *data, size_t data_len)
{
    memcpy(file_buf, head, head_len);
    memcpy(file_buf + head_len, data, data_len);
    return head_len + data_len;
}

static size_t numpy_f4_file(void)
{
    return concat(NUMPY_F4_HEADER, sizeof NUMPY_F4_HEADER - 1, NUMPY_F4_DATA,
                  sizeof NUMPY_F4_DATA);
}

/* A file of the given version whose header is `dict` (padded as numpy pads it). */
static size_t make_npy(int major, const char *dict, const void *data, size_t data_len)
{
    char head[1024];
    size_t preamble = major == 1 ? 10 : 12, n = strlen(dict);
    memcpy(head, "\x93NUMPY", 6);
    head[6] = (char)major;
    head[7] = 0;
    memcpy(head + preamble, dict, n);
    while ((preamble + n + 1) % 64)
        head[preamble + n++] = ' ';
    head[preamble + n++] = '\n';
    head[8] = (char)(n & 0xff);
    head[9] = (char)(n >> 8);
    if (major != 1)
        head[10] = head[11] = 0;
    return concat(head, preamble + n, data, data_len);
}

static int read_bytes(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    io_mapped_file f;
    if (io_map_file(path, &f) != DC_OK || f.size > cap)
        return 0;
    memcpy(buf, f.data, f.size);
    *len = f.size;
    io_unmap_file(&f);
    return 1;
}

TEST(reads_numpy_written_file)
{
    size_t n = numpy_f4_file();
    dc_tensor t;
    CHECK_OK(io_npy_read_buffer(file_buf, n, "a.npy", &t));
    CHECK(t.dtype == DC_FLOAT32 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3);
    const float *v = t.data;
    for (int i = 0; i < 6; i++)
        CHECK(v[i] == (float)i);
    dc_tensor_free(&t);
}

TEST(writer_reproduces_numpy_bytes)
{
    float values[6] = {0, 1, 2, 3, 4, 5};
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 2, .shape = {2, 3}, .data = values};
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "numpy_f4.npy");
    CHECK_OK(io_npy_write_file(path, &t));
    static uint8_t written[4096];
    size_t len, expected = numpy_f4_file();
    CHECK(read_bytes(path, written, sizeof written, &len));
    CHECK(len == expected && memcmp(written, file_buf, len) == 0);

    dc_tensor h = {.dtype = DC_FLOAT16, .ndim = 1, .shape = {8}, .data = (void *)NUMPY_F2_DATA};
    path_join(path, sizeof path, test_tmpdir(), "numpy_f2.npy");
    CHECK_OK(dc_npy_write(path, &h));
    expected = concat(NUMPY_F2_HEADER, sizeof NUMPY_F2_HEADER - 1, NUMPY_F2_DATA,
                      sizeof NUMPY_F2_DATA);
    CHECK(read_bytes(path, written, sizeof written, &len));
    CHECK(len == expected && memcmp(written, file_buf, len) == 0);
}

TEST(public_read_converts_float16_exactly)
{
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "half.npy");
    dc_tensor h = {.dtype = DC_FLOAT16, .ndim = 1, .shape = {8}, .data = (void *)NUMPY_F2_DATA};
    CHECK_OK(dc_npy_write(path, &h));
    dc_tensor t;
    CHECK_OK(dc_npy_read(path, &t));
    CHECK(t.dtype == DC_FLOAT32 && t.ndim == 1 && t.shape[0] == 8);
    const float expected[8] = {1.0f, -2.5f, 65504.0f, 5.9604644775390625e-08f, 1.0f / 0.0f,
                               -0.0f, 6.103515625e-05f, 0.3330078125f};
    const float *v = t.data;
    for (int i = 0; i < 8; i++)
        CHECKF(memcmp(&v[i], &expected[i], 4) == 0, "element %d: %g vs %g", i, v[i], expected[i]);
    dc_tensor_free(&t);
}

TEST(round_trips_every_dtype_and_shape)
{
    static const dc_dtype dtypes[] = {DC_FLOAT32, DC_FLOAT16, DC_FLOAT64, DC_INT64,
                                      DC_INT32,   DC_UINT8,   DC_BOOL};
    static const struct {
        int ndim;
        int64_t shape[DC_MAX_DIMS];
    } shapes[] = {
        {0, {0}}, {1, {0}}, {3, {2, 0, 3}}, {1, {7}}, {3, {2, 3, 4}},
        {8, {1, 2, 1, 2, 1, 2, 1, 2}}, {2, {1234567, 1}},
    };
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "round_trip.npy");
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            dc_tensor t = {.dtype = dtypes[d], .ndim = shapes[s].ndim};
            memcpy(t.shape, shapes[s].shape, sizeof t.shape);
            size_t bytes = (size_t)dc_tensor_numel(&t) * dc_dtype_size(t.dtype);
            uint8_t *data = malloc(bytes + 1);
            CHECK(data);
            for (size_t i = 0; i < bytes; i++)   /* bools must hold 0 or 1 */
                data[i] = (uint8_t)(t.dtype == DC_BOOL ? i % 3 == 0 : i * 131 + d);
            t.data = data;
            CHECK_OK(dc_npy_write(path, &t));
            dc_tensor back;
            int status = io_npy_read_file(path, &back);
            io_mapped_file f;
            int mapped = io_map_file(path, &f) == DC_OK;
            size_t file_size = f.size;
            if (mapped)
                io_unmap_file(&f);
            int same = status == DC_OK && back.dtype == t.dtype && back.ndim == t.ndim &&
                       memcmp(back.shape, t.shape, sizeof t.shape) == 0 &&
                       memcmp(back.data, data, bytes) == 0;
            free(data);
            dc_tensor_free(&back);
            CHECKF(same, "%s with %d dims: %s", dc_dtype_name(dtypes[d]), shapes[s].ndim,
                   dc_last_error());
            /* numpy aligns the data to 64 bytes. */
            CHECK(mapped && (file_size - bytes) % 64 == 0);
        }
    }
}

TEST(reads_versions_2_and_3_and_header_variants)
{
    static const struct {
        int major;
        const char *dict;
    } ok[] = {
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
        {1, "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}"},
        {1, "  {'descr':'<f4','fortran_order':False,'shape':(2,3,)}"},
        {1, "{'descr': '<f4',\n 'fortran_order': False,\n 'shape': (2L, 3L)}"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = make_npy(ok[i].major, ok[i].dict, NUMPY_F4_DATA, sizeof NUMPY_F4_DATA);
        dc_tensor t;
        int status = io_npy_read_buffer(file_buf, n, "v.npy", &t);
        CHECKF(status == DC_OK, "case %zu: %s", i, dc_last_error());
        CHECK(t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3 && ((float *)t.data)[5] == 5.0f);
        dc_tensor_free(&t);
    }
    /* Python 2's long suffix is not valid in a version 3 (UTF-8, Python 3) header. */
    size_t n = make_npy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L)}",
                        NUMPY_F4_DATA, sizeof NUMPY_F4_DATA);
    dc_tensor t;
    CHECK_STATUS(io_npy_read_buffer(file_buf, n, "v.npy", &t), DC_EFORMAT);
}

TEST(refuses_what_it_promises_to_refuse)
{
    static const struct {
        const char *dict;
        size_t data_len;
        const char *reason;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", 48, "object"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24, "big-endian"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", 24, "unsupported dtype"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", 24, "unsupported dtype"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", 24, "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", 24, "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", 24, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }", 24,
         "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, }", 24, "lacks 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", 24, "unexpected key"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24,
         "repeated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", 24, "needs 28 bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 24, "needs 20 bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
         24, "limit"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 24,
         "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", 24, "after the dict"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", 24, "True or False"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (6,), }", 24, "expected ','"},
        {"['descr', '<f4']", 24, "not a dict"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static uint8_t zeros[64];
        size_t n = make_npy(1, bad[i].dict, zeros, bad[i].data_len);
        dc_tensor t;
        int status = io_npy_read_buffer(file_buf, n, "bad.npy", &t);
        CHECKF(status == DC_EFORMAT && strstr(dc_last_error(), bad[i].reason) &&
                   strstr(dc_last_error(), "bad.npy") && t.data == NULL,
               "case %zu -> %d: %s", i, status, dc_last_error());
    }
    size_t n = numpy_f4_file();
    dc_tensor t;
    file_buf[6] = 4;
    CHECK_STATUS(io_npy_read_buffer(file_buf, n, "v4.npy", &t), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "version 4.0"));
    n = numpy_f4_file();
    file_buf[9] = 0x10;   /* header length 0x1076 > file */
    CHECK_STATUS(io_npy_read_buffer(file_buf, n, "long.npy", &t), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "truncated .npy header"));
    n = numpy_f4_file();
    file_buf[0] = 0x92;
    CHECK_STATUS(io_npy_read_buffer(file_buf, n, "magic.npy", &t), DC_EFORMAT);
    n = numpy_f4_file();   /* trailing bytes after the data */
    CHECK_STATUS(io_npy_read_buffer(file_buf, n + 1, "extra.npy", &t), DC_EFORMAT);
}

TEST(hostile_corpus_never_crashes)
{
    static uint8_t original[4096];
    size_t n = numpy_f4_file();
    memcpy(original, file_buf, n);
    dc_tensor t;
    /* Every truncation fails with a message. */
    for (size_t len = 0; len < n; len++) {
        int status = io_npy_read_buffer(original, len, "cut.npy", &t);
        CHECKF(status != DC_OK && t.data == NULL && strstr(dc_last_error(), "cut.npy"),
               "truncated to %zu -> %d", len, status);
    }
    /* Every bit flip either fails with a message or yields a consistent array. */
    size_t ok = 0;
    for (size_t bit = 0; bit < n * 8; bit++) {
        memcpy(file_buf, original, n);
        file_buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        dci_err_clear();
        int status = io_npy_read_buffer(file_buf, n, "flip.npy", &t);
        if (status == DC_OK) {
            ok++;
            CHECK((size_t)dc_tensor_numel(&t) * dc_dtype_size(t.dtype) <= n);
            dc_tensor_free(&t);
        } else {
            CHECK(t.data == NULL && strstr(dc_last_error(), "flip.npy"));
        }
    }
    CHECK(ok > 0 && ok < n * 8);   /* data bits flip harmlessly, header bits mostly do not */
    /* Random headers behind a valid preamble. */
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t len = 10 + round % 120;
        memcpy(file_buf, original, 10);
        file_buf[8] = (uint8_t)(len - 10);
        file_buf[9] = 0;
        for (size_t i = 10; i < len; i++) {
            seed = seed * 1664525u + 1013904223u;
            /* Mostly header punctuation, so the parser gets deep. */
            static const char alphabet[] = "{}()',: 0123456789<|f4i8u1b1descrshapeTrueFalse\n";
            file_buf[i] = round % 2 ? (uint8_t)(seed >> 24)
                                    : (uint8_t)alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        int status = io_npy_read_buffer(file_buf, len, "random.npy", &t);
        if (status == DC_OK)
            dc_tensor_free(&t);
        else
            CHECK(strstr(dc_last_error(), "random.npy"));
    }
}

TEST(write_errors_name_the_file)
{
    float v = 1;
    dc_tensor t = {.dtype = DC_BFLOAT16, .ndim = 1, .shape = {1}, .data = &v};
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "w.npy");
    CHECK_STATUS(dc_npy_write(path, &t), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "w.npy") && strstr(dc_last_error(), "bfloat16"));
    t.dtype = DC_FLOAT32;
    t.shape[0] = -1;
    CHECK_STATUS(dc_npy_write(path, &t), DC_EINVAL);
    t.shape[0] = 1;
    t.ndim = DC_MAX_DIMS + 1;
    CHECK_STATUS(dc_npy_write(path, &t), DC_EINVAL);
    t.ndim = 1;
    t.data = NULL;
    CHECK_STATUS(dc_npy_write(path, &t), DC_EINVAL);
    t.data = &v;
    CHECK_STATUS(dc_npy_write(NULL, &t), DC_EINVAL);
    CHECK_STATUS(dc_npy_write(path, NULL), DC_EINVAL);
    path_join(path, sizeof path, test_tmpdir(), "no/such/dir/w.npy");
    CHECK_STATUS(dc_npy_write(path, &t), DC_EIO);
    CHECK(strstr(dc_last_error(), "no/such/dir/w.npy"));

    dc_tensor r;
    CHECK_STATUS(dc_npy_read(NULL, &r), DC_EINVAL);
    CHECK_STATUS(dc_npy_read(path, NULL), DC_EINVAL);
    CHECK_STATUS(dc_npy_read(path, &r), DC_EIO);
    CHECK(strstr(dc_last_error(), "no/such/dir/w.npy") && r.data == NULL);
}
