/* Checkpoint containers on fixtures built here: torch.save zips (stored and deflated, with
 * strided, offset, expanded and shared views of every dtype), the legacy container, TorchScript
 * archives, safetensors and .npy; state dict discovery; the writers; the public API; and a
 * hostile corpus (truncations, bit flips, garbage, refused globals, huge or out-of-range
 * sizes, offsets and views). */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "io/checkpoint.h"
#include "io/limits.h"
#include "io_fixtures.h"

/* Above the 256 MiB that expanded views may add to a file's tensors. */
enum { HOSTILE_MEMORY = 512u << 20 };

/* ---- fixtures ---- */

static const float floats[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t bools[3] = {1, 0, 1};
static const uint16_t halves[2] = {0x3c00, 0xc000};    /* 1.0, -2.0 */
static const uint16_t bfloats[2] = {0x3f80, 0x4040};   /* 1.0, 3.0 */
static const double doubles[2] = {0.5, -1e300};
static const int64_t longs[3] = {-1, 1ll << 40, 7};
static const int32_t ints[2] = {-5, 123456};
static const uint8_t bytes_u8[4] = {0, 255, 7, 9};

typedef struct storage_fixture {
    const char *key, *storage_class;
    const void *data;
    size_t size, element;
} storage_fixture;

static const storage_fixture storages[] = {
    {"0", "FloatStorage", floats, sizeof floats, 4},
    {"1", "BoolStorage", bools, sizeof bools, 1},
    {"2", "HalfStorage", halves, sizeof halves, 2},
    {"3", "BFloat16Storage", bfloats, sizeof bfloats, 2},
    {"4", "DoubleStorage", doubles, sizeof doubles, 8},
    {"5", "LongStorage", longs, sizeof longs, 8},
    {"6", "IntStorage", ints, sizeof ints, 4},
    {"7", "ByteStorage", bytes_u8, sizeof bytes_u8, 1},
};
enum { STORAGE_COUNT = sizeof storages / sizeof storages[0] };

typedef struct view_fixture {
    const char *name;
    int storage;
    int64_t offset;
    int ndim;
    int64_t shape[3], stride[3];
    float expected[12];      /* for the float views */
    int64_t expected_numel;
} view_fixture;

static const view_fixture views[] = {
    {"plain", 0, 0, 2, {3, 4}, {4, 1}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 12},
    {"transposed", 0, 0, 2, {4, 3}, {1, 4}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, 12},
    {"slice", 0, 5, 2, {2, 2}, {4, 1}, {5, 6, 9, 10}, 4},
    {"step", 0, 1, 2, {2, 2}, {6, 2}, {1, 3, 7, 9}, 4},
    {"expand", 0, 2, 2, {3, 2}, {0, 1}, {2, 3, 2, 3, 2, 3}, 6},
    {"expand3", 0, 4, 3, {2, 1, 3}, {0, 7, 0}, {4, 4, 4, 4, 4, 4}, 6},
    {"scalar", 0, 11, 0, {0}, {0}, {11}, 1},
    {"empty", 0, 0, 2, {0, 5}, {5, 1}, {0}, 0},
    {"flags", 1, 0, 1, {3}, {1}, {0}, 3},
    {"half", 2, 0, 1, {2}, {1}, {0}, 2},
    {"bf16", 3, 0, 1, {2}, {1}, {0}, 2},
    {"double", 4, 0, 1, {2}, {1}, {0}, 2},
    {"long", 5, 0, 1, {3}, {1}, {0}, 3},
    {"int", 6, 1, 1, {1}, {1}, {0}, 1},
    {"module.bytes", 7, 0, 2, {2, 2}, {1, 2}, {0}, 4},
};
enum { VIEW_COUNT = sizeof views / sizeof views[0] };

static int64_t storage_numel(int s) { return (int64_t)(storages[s].size / storages[s].element); }

/* OrderedDict of every view (and a non-tensor entry, skipped by readers). With `legacy`, the
 * storages use the legacy persistent id (six items). */
static void pickle_views(io_buffer *b, int legacy)
{
    pk_lit(b, "\x80\x02");
    pk_global(b, "collections", "OrderedDict");
    pk_lit(b, ")R(");
    pk_str(b, "version");
    pk_int(b, 3);
    for (int i = 0; i < VIEW_COUNT; i++) {
        const view_fixture *v = &views[i];
        const storage_fixture *s = &storages[v->storage];
        pk_str(b, v->name);
        if (!legacy) {
            pk_tensor(b, s->storage_class, s->key, storage_numel(v->storage), v->offset, v->ndim,
                      v->shape, v->stride);
            continue;
        }
        pk_global(b, "torch._utils", "_rebuild_tensor_v2");
        pk_lit(b, "((");
        pk_str(b, "storage");
        pk_global(b, "torch", s->storage_class);
        pk_str(b, s->key);
        pk_str(b, "cpu");
        pk_int(b, storage_numel(v->storage));
        pk_lit(b, "NtQ");
        pk_int(b, v->offset);
        pk_int_tuple(b, v->shape, v->ndim);
        pk_int_tuple(b, v->stride, v->ndim);
        pk_op(b, 0x89);
        pk_global(b, "collections", "OrderedDict");
        pk_lit(b, ")RtR");
    }
    pk_lit(b, "u.");
}

/* A torch.save-like zip of FOLDER/data.pkl and the storages. */
static void torch_zip(io_buffer *out, const io_buffer *pickle, int deflated)
{
    fx_zip z = {0};
    fx_zip_add(&z, "model/data.pkl", pickle->data, pickle->size, deflated, 0);
    for (int i = 0; i < STORAGE_COUNT; i++) {
        char name[64];
        snprintf(name, sizeof name, "model/data/%s", storages[i].key);
        fx_zip_add(&z, name, storages[i].data, storages[i].size, deflated, (uint16_t)(13 + i));
    }
    fx_zip_add(&z, "model/version", "3\n", 2, 0, 0);
    fx_zip_finish(&z, NULL);
    *out = z.out;
}

static void views_zip(io_buffer *out, int deflated)
{
    io_buffer pickle = {0};
    pickle_views(&pickle, 0);
    torch_zip(out, &pickle, deflated);
    io_buffer_free(&pickle);
}

/* The legacy container holding pickle_views(legacy) and the storages. */
static void views_legacy(io_buffer *out)
{
    pk_lit(out, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    pk_lit(out, "\x80\x02M\xe9\x03.");
    pk_lit(out, "\x80\x02}(");
    pk_str(out, "little_endian");
    pk_lit(out, "\x88u.");
    pickle_views(out, 1);
    pk_lit(out, "\x80\x02](");
    for (int i = 0; i < STORAGE_COUNT; i++)
        pk_str(out, storages[i].key);
    pk_lit(out, "e.");
    for (int i = 0; i < STORAGE_COUNT; i++) {
        fx_le64(out, (uint64_t)storage_numel(i));
        io_buffer_append(out, storages[i].data, storages[i].size);
    }
}

/* Element `k` of view v, gathered by hand from its storage. */
static const uint8_t *view_element(const view_fixture *v, int64_t k)
{
    int64_t index = v->offset;
    for (int d = v->ndim - 1; d >= 0; d--) {
        index += (k % v->shape[d]) * v->stride[d];
        k /= v->shape[d];
    }
    const storage_fixture *s = &storages[v->storage];
    return (const uint8_t *)s->data + index * (int64_t)s->element;
}

static const dc_dtype storage_dtypes[] = {DC_FLOAT32, DC_BOOL,  DC_FLOAT16, DC_BFLOAT16,
                                          DC_FLOAT64, DC_INT64, DC_INT32,   DC_UINT8};

static void check_views(const io_state_dict *sd)
{
    CHECKF(sd->count == VIEW_COUNT, "%zu tensors", sd->count);
    for (int i = 0; i < VIEW_COUNT; i++) {
        const view_fixture *v = &views[i];
        const dc_tensor *t = &sd->tensors[i].value;
        CHECKF(strcmp(sd->tensors[i].name, v->name) == 0, "%s", sd->tensors[i].name);
        CHECK(t->dtype == storage_dtypes[v->storage] && t->ndim == v->ndim);
        for (int d = 0; d < v->ndim; d++)
            CHECK(t->shape[d] == v->shape[d]);
        CHECK(dc_tensor_numel(t) == v->expected_numel);
        CHECK((t->data == NULL) == (v->expected_numel == 0));
        size_t element = dc_dtype_size(t->dtype);
        for (int64_t k = 0; k < v->expected_numel; k++) {
            const uint8_t *got = (const uint8_t *)t->data + k * (int64_t)element;
            CHECKF(memcmp(got, view_element(v, k), element) == 0, "%s[%lld]", v->name,
                   (long long)k);
            if (v->storage == 0)
                CHECK(((const float *)t->data)[k] == v->expected[k]);
        }
    }
}

TEST(torch_zip_views_become_dense_copies)
{
    for (int deflated = 0; deflated < 2; deflated++) {
        io_buffer zip;
        views_zip(&zip, deflated);
        io_state_dict sd;
        CHECK_OK(io_checkpoint_read_buffer(zip.data, zip.size, "model.pt", &sd));
        CHECK(sd.container == DC_CONTAINER_TORCH_ZIP);
        check_views(&sd);
        io_state_dict_free(&sd);
        io_buffer_free(&zip);
        if (test_failed())
            return;
    }
}

TEST(legacy_container_reads_like_the_zip)
{
    io_buffer file = {0};
    views_legacy(&file);
    io_state_dict sd;
    CHECK_OK(io_checkpoint_read_buffer(file.data, file.size, "model.pt", &sd));
    CHECK(sd.container == DC_CONTAINER_TORCH_LEGACY);
    check_views(&sd);
    io_state_dict_free(&sd);
    io_buffer_free(&file);
}

/* The views state dict wrapped as `before` OD `after`, in a zip. */
static int read_wrapped(const char *before, const char *after, io_state_dict *sd)
{
    io_buffer inner = {0}, pickle = {0};
    pickle_views(&inner, 0);
    pk_lit(&pickle, "\x80\x02");
    io_buffer_append(&pickle, before, strlen(before));
    /* the views pickle without its PROTO and STOP */
    io_buffer_append(&pickle, inner.data + 2, inner.size - 3);
    io_buffer_append(&pickle, after, strlen(after));
    io_buffer zip;
    torch_zip(&zip, &pickle, 0);
    int status = io_checkpoint_read_buffer(zip.data, zip.size, "model.pt", sd);
    io_buffer_free(&inner);
    io_buffer_free(&pickle);
    io_buffer_free(&zip);
    return status;
}

TEST(state_dict_is_found_in_dicts_and_lists)
{
    static const struct {
        const char *before, *after;
    } wrappers[] = {
        {"}(\x8c\x05" "epochK\x01\x8c\x0astate_dict", "u."},
        {"}(\x8c\x05" "epochK\x01\x8c\x05model", "\x8c\x03opt}u."},
        {"](", "K\x05" "e."},
        {"(K\x01", "t."},
    };
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++) {
        io_state_dict sd;
        CHECK_OK(read_wrapped(wrappers[i].before, wrappers[i].after, &sd));
        check_views(&sd);
        io_state_dict_free(&sd);
        if (test_failed())
            return;
    }
    /* No dict of tensors anywhere; an empty OrderedDict is an empty state dict. */
    io_buffer pickle = {0}, zip;
    pk_lit(&pickle, "\x80\x02}(\x8c\x01" "aK\x01u.");
    torch_zip(&zip, &pickle, 0);
    io_state_dict sd;
    CHECK_STATUS(io_checkpoint_read_buffer(zip.data, zip.size, "model.pt", &sd), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "model.pt: no state dict") != NULL);
    io_buffer_free(&pickle);
    io_buffer_free(&zip);
    pk_lit(&pickle, "\x80\x02");
    pk_global(&pickle, "collections", "OrderedDict");
    pk_lit(&pickle, ")R.");
    torch_zip(&zip, &pickle, 0);
    CHECK_OK(io_checkpoint_read_buffer(zip.data, zip.size, "model.pt", &sd));
    CHECK(sd.count == 0);
    io_state_dict_free(&sd);
    io_buffer_free(&pickle);
    io_buffer_free(&zip);
}

/* ---- TorchScript ---- */

static const char script_code[] =
    "class Net(Module):\n"
    "  __parameters__ = [\"weight\", ]\n"
    "  __buffers__ = [\"running\", ]\n"
    "  weight : Tensor\n"
    "  extra : Tensor\n"
    "  running : Tensor\n"
    "  sub : __torch__.m.Sub\n"
    "  def forward(self: __torch__.m.Net) -> Tensor:\n"
    "    return self.weight\n"
    "class Sub(Module):\n"
    "  __parameters__ = [\"bias\", \"missing\", ]\n"
    "  __buffers__ = []\n"
    "  bias : Tensor\n"
    "class Helper:\n"
    "  __parameters__ = [\"x\", ]\n";

/* Net{training, weight, extra (a plain tensor attribute), running, helper, sub: Sub{bias,
 * missing: None}} */
static void script_archive(io_buffer *out, const char *code, const char *root_class)
{
    int64_t two[] = {2}, one[] = {1}, scalar[1] = {0};
    io_buffer p = {0};
    pk_lit(&p, "\x80\x02");
    pk_global(&p, "__torch__.m", root_class);
    pk_lit(&p, ")\x81}(");
    pk_str(&p, "training");
    pk_op(&p, 0x88);
    pk_str(&p, "weight");
    pk_tensor(&p, "FloatStorage", "0", 12, 0, 1, two, one);
    pk_str(&p, "extra");
    pk_tensor(&p, "FloatStorage", "0", 12, 3, 0, scalar, scalar);
    pk_str(&p, "running");
    pk_tensor(&p, "LongStorage", "5", 3, 1, 1, two, one);
    pk_str(&p, "helper");
    pk_global(&p, "__torch__.m", "Helper");
    pk_lit(&p, ")\x81}(");
    pk_str(&p, "x");
    pk_tensor(&p, "FloatStorage", "0", 12, 0, 1, one, one);
    pk_lit(&p, "ub");
    pk_str(&p, "sub");
    pk_global(&p, "__torch__.m", "Sub");
    pk_lit(&p, ")\x81}(");
    pk_str(&p, "bias");
    pk_tensor(&p, "FloatStorage", "0", 12, 10, 1, two, one);
    pk_str(&p, "missing");
    pk_op(&p, 'N');
    pk_lit(&p, "ubub.");
    fx_zip z = {0};
    fx_zip_add(&z, "ts/data.pkl", p.data, p.size, 0, 0);
    fx_zip_add(&z, "ts/code/__torch__/m.py", code, strlen(code), 1, 0);
    fx_zip_add(&z, "ts/constants.pkl", "\x80\x02).", 4, 0, 0);
    fx_zip_add(&z, "ts/data/0", floats, sizeof floats, 0, 20);
    fx_zip_add(&z, "ts/data/5", longs, sizeof longs, 0, 20);
    fx_zip_finish(&z, NULL);
    *out = z.out;
    io_buffer_free(&p);
}

TEST(torchscript_state_dict_is_parameters_and_buffers)
{
    io_buffer zip;
    script_archive(&zip, script_code, "Net");
    io_state_dict sd;
    CHECK_OK(io_checkpoint_read_buffer(zip.data, zip.size, "clip.pt", &sd));
    CHECK(sd.container == DC_CONTAINER_TORCHSCRIPT);
    CHECKF(sd.count == 3, "%zu tensors", sd.count);
    CHECK(strcmp(sd.tensors[0].name, "weight") == 0);
    CHECK(strcmp(sd.tensors[1].name, "running") == 0);
    CHECK(strcmp(sd.tensors[2].name, "sub.bias") == 0);
    CHECK(((float *)sd.tensors[2].value.data)[1] == 11.0f);
    CHECK(((int64_t *)sd.tensors[1].value.data)[0] == (1ll << 40));
    io_state_dict_free(&sd);
    io_buffer_free(&zip);

    /* A module whose class the code does not define. */
    script_archive(&zip, script_code, "Unknown");
    CHECK_STATUS(io_checkpoint_read_buffer(zip.data, zip.size, "clip.pt", &sd), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "clip.pt: TorchScript class __torch__.m.Unknown has no "
                                  "definition") != NULL);
    io_buffer_free(&zip);
    script_archive(&zip, "class Net(Module):\n  __parameters__ = [\"weight\", \n", "Net");
    CHECK_STATUS(io_checkpoint_read_buffer(zip.data, zip.size, "clip.pt", &sd), DC_EFORMAT);
    io_buffer_free(&zip);
}

/* ---- safetensors and .npy ---- */

static void safetensors_file(io_buffer *out, const char *header, const void *data, size_t size)
{
    fx_le64(out, strlen(header));
    io_buffer_append(out, header, strlen(header));
    io_buffer_append(out, data, size);
}

TEST(safetensors_headers_are_read_strictly)
{
    static const char good[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"extra\":[1,{}]},"
        "\"b\\u00e9\":{\"shape\":[],\"dtype\":\"I64\",\"data_offsets\":[24,32]}}  ";
    io_buffer f = {0};
    safetensors_file(&f, good, floats, 32);
    io_state_dict sd;
    CHECK_OK(io_checkpoint_read_buffer(f.data, f.size, "m.safetensors", &sd));
    CHECK(sd.container == DC_CONTAINER_SAFETENSORS && sd.count == 2);
    CHECK(strcmp(sd.tensors[1].name, "b\xc3\xa9") == 0 && sd.tensors[1].value.ndim == 0);
    CHECK(((float *)sd.tensors[0].value.data)[5] == 5.0f);
    io_state_dict_free(&sd);
    io_buffer_free(&f);

    static const char *const bad[] = {
        "{\"a\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[16,48]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,0]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        "{\"\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"a\\u0000\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"__metadata__\":{\"format\":1}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[[[[[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        safetensors_file(&f, bad[i], floats, 40);
        int status = io_checkpoint_read_buffer(f.data, f.size, "m.safetensors", &sd);
        io_buffer_free(&f);
        CHECKF(status == DC_EFORMAT && strncmp(dc_last_error(), "m.safetensors: ", 15) == 0,
               "header %zu: status %d (%s)", i, status, dc_last_error());
    }
    /* A header of 128 bytes: the file starts with byte 0x80, like a pickle. */
    char padded[129];
    snprintf(padded, sizeof padded, "%-128s",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}");
    safetensors_file(&f, padded, floats, 8);
    CHECK(f.data[0] == 0x80);
    CHECK_OK(io_checkpoint_read_buffer(f.data, f.size, "m.safetensors", &sd));
    CHECK(sd.container == DC_CONTAINER_SAFETENSORS && sd.count == 1);
    io_state_dict_free(&sd);
    io_buffer_free(&f);
    /* A declared header length past the end of the file. */
    fx_le64(&f, 1ull << 40);
    pk_lit(&f, "{}");
    CHECK_STATUS(io_checkpoint_read_buffer(f.data, f.size, "m.safetensors", &sd), DC_EFORMAT);
    io_buffer_free(&f);
}

TEST(npy_files_are_one_tensor_named_dash)
{
    static const char header[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    io_buffer f = {0};
    pk_lit(&f, "\x93NUMPY\x01\x00");
    size_t length = sizeof header - 1 + 1;
    length += (64 - (10 + length) % 64) % 64;
    fx_le16(&f, (uint16_t)length);
    io_buffer_append(&f, header, sizeof header - 1);
    while (f.size < 10 + length - 1)
        io_buffer_byte(&f, ' ');
    io_buffer_byte(&f, '\n');
    io_buffer_append(&f, floats, 24);
    io_state_dict sd;
    CHECK_OK(io_checkpoint_read_buffer(f.data, f.size, "x.npy", &sd));
    CHECK(sd.container == DC_CONTAINER_NPY && sd.count == 1);
    CHECK(strcmp(sd.tensors[0].name, "-") == 0 && sd.tensors[0].value.shape[1] == 3);
    CHECK(((float *)sd.tensors[0].value.data)[4] == 4.0f);
    io_state_dict_free(&sd);
    io_buffer_free(&f);
}

/* ---- writers ---- */

static void all_dtypes(dc_named_tensor *t)
{
    static const char *const names[] = {"f32", "b", "f16", "bf16", "f64", "i64", "i32", "u8"};
    for (int i = 0; i < STORAGE_COUNT; i++) {
        t[i].name = names[i];
        t[i].tensor.dtype = storage_dtypes[i];
        t[i].tensor.ndim = 1;
        t[i].tensor.shape[0] = storage_numel(i);
        t[i].tensor.data = (void *)storages[i].data;
    }
    t[0].tensor.ndim = 2;  /* 3 x 4 */
    t[0].tensor.shape[0] = 3;
    t[0].tensor.shape[1] = 4;
    t[STORAGE_COUNT] = (dc_named_tensor){"scalar", {DC_FLOAT32, 0, {0}, (void *)(floats + 7)}};
    t[STORAGE_COUNT + 1] = (dc_named_tensor){"empty.\xc3\xa9", {DC_INT64, 2, {0, 4}, NULL}};
}

static void check_round_trip(const char *file, dc_container container)
{
    enum { COUNT = STORAGE_COUNT + 2 };
    dc_named_tensor t[COUNT];
    all_dtypes(t);
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), file);
    CHECK_OK(container == DC_CONTAINER_SAFETENSORS ? io_checkpoint_write_safetensors(path, t, COUNT)
                                                   : io_checkpoint_write_torch(path, t, COUNT));
    io_state_dict sd;
    CHECK_OK(io_checkpoint_read_file(path, &sd));
    CHECK(sd.container == container && sd.count == COUNT);
    for (int i = 0; i < COUNT; i++) {
        const dc_tensor *a = &t[i].tensor, *b = &sd.tensors[i].value;
        CHECK(strcmp(sd.tensors[i].name, t[i].name) == 0);
        CHECK(a->dtype == b->dtype && a->ndim == b->ndim);
        CHECK(memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0);
        size_t n = (size_t)dc_tensor_numel(a) * dc_dtype_size(a->dtype);
        CHECK(n == 0 || memcmp(a->data, b->data, n) == 0);
    }
    io_state_dict_free(&sd);
}

TEST(written_torch_zip_and_safetensors_read_back_identical)
{
    check_round_trip("all.pt", DC_CONTAINER_TORCH_ZIP);
    if (!test_failed())
        check_round_trip("all.safetensors", DC_CONTAINER_SAFETENSORS);
}

TEST(writers_refuse_bad_tensors)
{
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "bad.pt");
    float x = 1;
    dc_named_tensor t[2] = {{"a", {DC_FLOAT32, 1, {1}, &x}}, {"a", {DC_FLOAT32, 1, {1}, &x}}};
    CHECK_STATUS(io_checkpoint_write_torch(path, t, 2), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "duplicate tensor name a") != NULL);
    t[1].name = "b";
    t[1].tensor.data = NULL;
    CHECK_STATUS(io_checkpoint_write_safetensors(path, t, 2), DC_EINVAL);
    t[1].tensor.data = &x;
    t[1].tensor.dtype = (dc_dtype)42;
    CHECK_STATUS(io_checkpoint_write_torch(path, t, 2), DC_EINVAL);
    t[1].tensor.dtype = DC_FLOAT32;
    t[1].tensor.ndim = 9;
    CHECK_STATUS(io_checkpoint_write_torch(path, t, 2), DC_EINVAL);
    t[1].tensor.ndim = 1;
    t[1].tensor.shape[0] = -1;
    CHECK_STATUS(io_checkpoint_write_torch(path, t, 2), DC_EINVAL);
    t[1].tensor.shape[0] = 1;
    t[1].name = "\xff";
    CHECK_STATUS(io_checkpoint_write_torch(path, t, 2), DC_EINVAL);
    t[1].name = "__metadata__";
    CHECK_STATUS(io_checkpoint_write_safetensors(path, t, 2), DC_EINVAL);
    CHECK_STATUS(io_checkpoint_write_torch(NULL, t, 2), DC_EINVAL);
    path_join(path, sizeof path, test_tmpdir(), "no/such/dir/x.pt");
    CHECK_STATUS(io_checkpoint_write_torch(path, t, 1), DC_EIO);
    CHECK(strstr(dc_last_error(), path) != NULL);
}

/* ---- the public API ---- */

TEST(public_api_opens_finds_and_writes)
{
    enum { COUNT = STORAGE_COUNT + 2 };
    dc_named_tensor t[COUNT];
    all_dtypes(t);
    char pt[512], st[512];
    path_join(pt, sizeof pt, test_tmpdir(), "api.pt");
    path_join(st, sizeof st, test_tmpdir(), "api.safetensors");
    CHECK_OK(dc_checkpoint_write(pt, DC_FORMAT_AUTO, t, COUNT));
    CHECK_OK(dc_checkpoint_write(st, DC_FORMAT_AUTO, t, COUNT));
    dc_checkpoint *a, *b;
    CHECK_OK(dc_checkpoint_open(&a, pt));
    CHECK_OK(dc_checkpoint_open(&b, st));
    CHECK(dc_checkpoint_container(a) == DC_CONTAINER_TORCH_ZIP);
    CHECK(dc_checkpoint_container(b) == DC_CONTAINER_SAFETENSORS);
    CHECK(dc_checkpoint_count(a) == COUNT);
    CHECK(strcmp(dc_checkpoint_name(a, 3), "bf16") == 0 && dc_checkpoint_name(a, COUNT) == NULL);
    size_t index;
    CHECK_OK(dc_checkpoint_find(b, "i64", &index));
    CHECK(index == 5);
    dc_tensor view;
    CHECK_OK(dc_checkpoint_tensor(b, index, &view));
    CHECK(view.dtype == DC_INT64 && ((int64_t *)view.data)[1] == (1ll << 40));
    CHECK_STATUS(dc_checkpoint_find(a, "nope", &index), DC_EINVAL);
    CHECK_STATUS(dc_checkpoint_tensor(a, COUNT, &view), DC_EINVAL);
    dc_checkpoint_free(a);
    dc_checkpoint_free(b);
    dc_checkpoint_free(NULL);

    char missing[512];
    path_join(missing, sizeof missing, test_tmpdir(), "missing.pt");
    CHECK_STATUS(dc_checkpoint_open(&a, missing), DC_EIO);
    CHECK(a == NULL && strncmp(dc_last_error(), missing, strlen(missing)) == 0);
    CHECK(fx_write_file(missing, "garbage!", 8) == 0);
    CHECK_STATUS(dc_checkpoint_open(&a, missing), DC_EFORMAT);
    CHECK(strncmp(dc_last_error(), missing, strlen(missing)) == 0);
    CHECK_STATUS(dc_checkpoint_write(pt, (dc_checkpoint_format)9, t, COUNT), DC_EINVAL);
}

/* ---- hostile input ---- */

static int read_status(const uint8_t *data, size_t size)
{
    io_state_dict sd;
    int status = io_checkpoint_read_buffer(data, size, "model.pt", &sd);
    io_state_dict_free(&sd);
    return status;
}

/* A failure must be DC_EFORMAT naming the file: never DC_ENOMEM (the memory cap turns an
 * unbounded allocation into DC_ENOMEM) and never a crash. */
static int clean(int status)
{
    return status == DC_OK ||
           (status == DC_EFORMAT && strncmp(dc_last_error(), "model.pt: ", 10) == 0);
}

static void hostile_variants(const io_buffer *file, const char *what)
{
    CHECK_OK(read_status(file->data, file->size));
    uint8_t *copy = malloc(file->size);
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    for (size_t n = 0; n < file->size; n++) {
        memcpy(copy, file->data, n);
        int status = read_status(copy, n);
        if (status == DC_OK || !clean(status)) {
            fx_unlimit_memory();
            free(copy);
            CHECKF(0, "%s truncated to %zu: status %d (%s)", what, n, status, dc_last_error());
        }
    }
    memcpy(copy, file->data, file->size);
    size_t step = file->size > 4000 ? 3 : 1;
    for (size_t i = 0; i < file->size; i += step) {
        for (int bit = 0; bit < 8; bit += 2) {
            copy[i] ^= (uint8_t)(1u << bit);
            int status = read_status(copy, file->size);
            copy[i] ^= (uint8_t)(1u << bit);
            if (!clean(status)) {
                fx_unlimit_memory();
                free(copy);
                CHECKF(0, "%s flip at %zu: status %d (%s)", what, i, status, dc_last_error());
            }
        }
    }
    fx_unlimit_memory();
    free(copy);
}

TEST(hostile_truncations_and_bit_flips)
{
    io_buffer f = {0};
    views_zip(&f, 0);
    hostile_variants(&f, "zip");
    io_buffer_free(&f);
    if (test_failed())
        return;
    views_zip(&f, 1);
    hostile_variants(&f, "deflated zip");
    io_buffer_free(&f);
    if (test_failed())
        return;
    views_legacy(&f);
    hostile_variants(&f, "legacy");
    io_buffer_free(&f);
    if (test_failed())
        return;
    script_archive(&f, script_code, "Net");
    hostile_variants(&f, "torchscript");
    io_buffer_free(&f);
    if (test_failed())
        return;
    safetensors_file(&f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                     floats, 24);
    hostile_variants(&f, "safetensors");
    io_buffer_free(&f);
}

TEST(hostile_random_bytes)
{
    static const char *const prefixes[] = {"", "PK\x03\x04", "\x80\x02", "\x93NUMPY\x01",
                                           "\x20\x00\x00\x00\x00\x00\x00\x00{"};
    uint64_t state = 0x243F6A8885A308D3ull;
    uint8_t buf[512];
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    for (int round = 0; round < 5000; round++) {
        const char *prefix = prefixes[round % 5];
        /* the safetensors prefix holds NULs: its length is 9 */
        size_t n = (size_t)(round % 500) + 1, p = round % 5 == 4 ? 9 : strlen(prefix);
        for (size_t i = 0; i < n; i++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            buf[i] = (uint8_t)state;
        }
        memcpy(buf, prefix, p < n ? p : n);
        int status = read_status(buf, n);
        if (!clean(status)) {
            fx_unlimit_memory();
            CHECKF(0, "round %d: status %d (%s)", round, status, dc_last_error());
        }
    }
    fx_unlimit_memory();
}

/* data.pkl holding one entry 'x' built by `body` (which pushes the value). */
static int read_single(void (*body)(io_buffer *), const char *message)
{
    io_buffer pickle = {0}, zip;
    pk_lit(&pickle, "\x80\x02}(");
    pk_str(&pickle, "x");
    body(&pickle);
    pk_lit(&pickle, "u.");
    torch_zip(&zip, &pickle, 0);
    int limited = fx_limit_memory(HOSTILE_MEMORY) == 0;
    int status = read_status(zip.data, zip.size);
    fx_unlimit_memory();
    io_buffer_free(&pickle);
    io_buffer_free(&zip);
    if (!limited || status != DC_EFORMAT || !strstr(dc_last_error(), message)) {
        test_fail_at(__FILE__, __LINE__, "expected '%s', got %d (%s)", message, status,
                     dc_last_error());
        return 0;
    }
    return 1;
}

static void system_call(io_buffer *b)
{
    pk_global(b, "posix", "system");
    pk_str(b, "touch /tmp/pwned");
    pk_lit(b, "\x85R");
}
static void deep_lists(io_buffer *b)
{
    for (int i = 0; i < 3000; i++)
        pk_op(b, ']');
    for (int i = 0; i < 2999; i++)
        pk_op(b, 'a');
}
static void huge_shape(io_buffer *b)
{
    int64_t shape[] = {1ll << 40, 1ll << 20}, stride[] = {0, 0};
    pk_tensor(b, "FloatStorage", "0", 12, 0, 2, shape, stride);
}
static void huge_storage(io_buffer *b)
{
    int64_t shape[] = {4}, stride[] = {1};
    pk_tensor(b, "FloatStorage", "0", 1ll << 35, 0, 1, shape, stride);
}
static void wrong_storage_numel(io_buffer *b)
{
    int64_t shape[] = {4}, stride[] = {1};
    pk_tensor(b, "FloatStorage", "0", 13, 0, 1, shape, stride);
}
static void offset_past_storage(io_buffer *b)
{
    int64_t shape[] = {1}, stride[] = {1};
    pk_tensor(b, "FloatStorage", "0", 12, 12, 1, shape, stride);
}
static void stride_past_storage(io_buffer *b)
{
    int64_t shape[] = {2, 2}, stride[] = {11, 1};
    pk_tensor(b, "FloatStorage", "0", 12, 0, 2, shape, stride);
}
static void overflowing_stride(io_buffer *b)
{
    int64_t shape[] = {3}, stride[] = {INT64_MAX / 2 + 1};
    pk_tensor(b, "FloatStorage", "0", 12, 0, 1, shape, stride);
}
static void missing_storage(io_buffer *b)
{
    int64_t shape[] = {1}, stride[] = {1};
    pk_tensor(b, "FloatStorage", "99", 12, 0, 1, shape, stride);
}
static void bytes_key(io_buffer *b)
{
    pk_lit(b, "C\x01x");
}

TEST(hostile_pickles_sizes_and_views_are_refused)
{
    if (!read_single(system_call, "model.pt: refused pickle global posix.system"))
        return;
    CHECK(strcmp(dc_last_error(), "model.pt: refused pickle global posix.system") == 0);
    if (!read_single(deep_lists, "nested deeper than") ||
        !read_single(huge_shape, "too large shape") ||
        !read_single(huge_storage, "not 34359738368 elements") ||
        !read_single(wrong_storage_numel, "storage 0 has 48 bytes, not 13 elements") ||
        !read_single(offset_past_storage, "lies outside its storage") ||
        !read_single(stride_past_storage, "lies outside its storage") ||
        !read_single(overflowing_stride, "lies outside its storage") ||
        !read_single(missing_storage, "storage 99 has no record model/data/99") ||
        !read_single(bytes_key, "no state dict"))
        return;
}

TEST(hostile_legacy_records_are_refused)
{
    io_buffer f = {0};
    views_legacy(&f);
    /* The first record's element count, right after the key list's STOP. */
    uint8_t *stop = memmem(f.data, f.size, "7e.", 3);
    CHECK(stop != NULL);
    uint8_t *count = stop + 3;
    CHECK(io_le64(count) == 12);
    CHECK(fx_limit_memory(HOSTILE_MEMORY) == 0);
    io_put_le64(count, 1ull << 61);
    int status = read_status(f.data, f.size);
    int past_end = status == DC_EFORMAT && strstr(dc_last_error(), "past the end");
    io_put_le64(count, 11);
    status = read_status(f.data, f.size);
    int inconsistent = status == DC_EFORMAT && strstr(dc_last_error(), "inconsistent");
    fx_unlimit_memory();
    CHECK(past_end);
    CHECK(inconsistent);
    io_buffer_free(&f);
}

TEST(shared_and_overlapping_storages_are_fine)
{
    /* Two entries over the same storage bytes, overlapping; and the same storage object
     * reached through the memo. */
    int64_t shape[] = {8}, stride[] = {1};
    io_buffer pickle = {0}, zip;
    pk_lit(&pickle, "\x80\x02}(");
    pk_str(&pickle, "a");
    pk_tensor(&pickle, "FloatStorage", "0", 12, 0, 1, shape, stride);
    pk_lit(&pickle, "q\x07");
    pk_str(&pickle, "b");
    pk_tensor(&pickle, "FloatStorage", "0", 12, 4, 1, shape, stride);
    pk_str(&pickle, "c");
    pk_lit(&pickle, "h\x07u.");
    torch_zip(&zip, &pickle, 1);
    io_state_dict sd;
    CHECK_OK(io_checkpoint_read_buffer(zip.data, zip.size, "model.pt", &sd));
    CHECK(sd.count == 3);
    CHECK(((float *)sd.tensors[0].value.data)[7] == 7.0f);
    CHECK(((float *)sd.tensors[1].value.data)[0] == 4.0f);
    CHECK(((float *)sd.tensors[1].value.data)[7] == 11.0f);
    CHECK(sd.tensors[2].value.data != sd.tensors[0].value.data);
    CHECK(memcmp(sd.tensors[2].value.data, sd.tensors[0].value.data, 32) == 0);
    io_state_dict_free(&sd);
    io_buffer_free(&pickle);
    io_buffer_free(&zip);
}
