/* The golden checkpoints: zip and legacy containers of the same weights agree bit for bit,
 * the TorchScript CLIP archive gives the state dict of its plain twin, fp16 weights stay
 * fp16; and what we write reads back identical and loads in PyTorch (Debian's python3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "io/checkpoint.h"

static int read_case(const char *case_name, const char *file, io_state_dict *sd)
{
    char dir[512], path[1024];
    if (!golden_case(case_name, dir, sizeof dir))
        return 0;
    int status = io_checkpoint_read_file(path_join(path, sizeof path, dir, file), sd);
    if (status != DC_OK) {
        test_fail_at(__FILE__, __LINE__, "%s: %s", path, dc_last_error());
        return 0;
    }
    return 1;
}

static size_t tensor_bytes(const dc_tensor *t)
{
    return (size_t)dc_tensor_numel(t) * dc_dtype_size(t->dtype);
}

/* Same names in the same order, dtypes, shapes and, with `data`, bytes. */
static void check_same(const io_state_dict *a, const io_state_dict *b, int data)
{
    CHECKF(a->count == b->count, "%zu vs %zu tensors", a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const dc_tensor *x = &a->tensors[i].value, *y = &b->tensors[i].value;
        CHECKF(strcmp(a->tensors[i].name, b->tensors[i].name) == 0, "%s vs %s",
               a->tensors[i].name, b->tensors[i].name);
        CHECKF(x->dtype == y->dtype && x->ndim == y->ndim &&
                   memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim) == 0,
               "%s: dtype or shape differs", a->tensors[i].name);
        CHECKF(!data || memcmp(x->data, y->data, tensor_bytes(x)) == 0, "%s: data differs",
               a->tensors[i].name);
    }
}

TEST(ddpm_zip_and_legacy_containers_agree)
{
    io_state_dict zip, legacy;
    if (!read_case("ddpm_unet", "model.pt", &zip))
        return;
    if (!read_case("ddpm_unet", "model_legacy.pt", &legacy)) {
        io_state_dict_free(&zip);
        return;
    }
    CHECK(zip.container == DC_CONTAINER_TORCH_ZIP);
    CHECK(legacy.container == DC_CONTAINER_TORCH_LEGACY);
    CHECK(zip.count == 182 && strcmp(zip.tensors[0].name, "temb.dense.0.weight") == 0);
    check_same(&zip, &legacy, 1);
    io_state_dict_free(&zip);
    io_state_dict_free(&legacy);
}

TEST(clip_torchscript_gives_the_plain_state_dict)
{
    io_state_dict script, plain;
    if (!read_case("clip_vit", "clip_torchscript.pt", &script))
        return;
    if (!read_case("clip_vit", "clip_state_dict.pt", &plain)) {
        io_state_dict_free(&script);
        return;
    }
    CHECK(script.container == DC_CONTAINER_TORCHSCRIPT);
    /* The plain reader has already left out any non-tensor entries of the state dict. */
    CHECK(script.count == 62);
    check_same(&script, &plain, 1);
    io_state_dict_free(&script);
    io_state_dict_free(&plain);
}

TEST(arcface_fp16_weights_stay_fp16)
{
    io_state_dict sd;
    if (!read_case("arcface_irse", "irse_fp16.pt", &sd))
        return;
    size_t halves = 0;
    for (size_t i = 0; i < sd.count; i++) {
        const io_tensor *t = &sd.tensors[i];
        if (strstr(t->name, "num_batches_tracked"))
            CHECKF(t->value.dtype == DC_INT64 && t->value.ndim == 0, "%s", t->name);
        else
            CHECKF(t->value.dtype == DC_FLOAT16, "%s is %s", t->name,
                   dc_dtype_name(t->value.dtype));
        halves += t->value.dtype == DC_FLOAT16;
    }
    CHECK(sd.count == 97 && halves == 83);
    io_state_dict_free(&sd);
}

/* Debian's python3 with torch: 1 if usable, else the test is skipped (failed under CI). */
static int have_python_torch(void)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0)
        return 1;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        test_fail_at(__FILE__, __LINE__, "/usr/bin/python3 with torch is required under CI=true");
    else
        test_skip("/usr/bin/python3 with torch is not available");
    return 0;
}

/* Runs `script` with /usr/bin/python3 and the given file arguments; 1 when it prints "ok". */
static int run_python(const char *script, const char *arg1, const char *arg2)
{
    char script_path[512], command[2048], line[1024] = "";
    path_join(script_path, sizeof script_path, test_tmpdir(), "check.py");
    FILE *f = fopen(script_path, "w");
    if (!f || fputs(script, f) < 0 || fclose(f) != 0) {
        test_fail_at(__FILE__, __LINE__, "cannot write %s", script_path);
        return 0;
    }
    snprintf(command, sizeof command, "/usr/bin/python3 '%s' '%s' '%s' 2>&1", script_path, arg1,
             arg2 ? arg2 : "");
    FILE *p = popen(command, "r");
    if (!p) {
        test_fail_at(__FILE__, __LINE__, "cannot run python");
        return 0;
    }
    char last[1024] = "";
    while (fgets(line, sizeof line, p))
        snprintf(last, sizeof last, "%s", line);
    int status = pclose(p);
    if (status != 0 || strcmp(last, "ok\n") != 0) {
        test_fail_at(__FILE__, __LINE__, "python check failed: %s", last);
        return 0;
    }
    return 1;
}

static int write_state_dict(const char *path, const io_state_dict *sd, dc_checkpoint_format format)
{
    dc_named_tensor *named = calloc(sd->count ? sd->count : 1, sizeof *named);
    for (size_t i = 0; i < sd->count; i++) {
        named[i].name = sd->tensors[i].name;
        named[i].tensor = sd->tensors[i].value;
    }
    int status = dc_checkpoint_write(path, format, named, sd->count);
    free(named);
    return status;
}

static const char compare_script[] =
    "import sys, torch\n"
    "a = torch.load(sys.argv[1]); b = torch.load(sys.argv[2])\n"
    "assert type(b).__name__ == 'OrderedDict' and list(a) == list(b), 'names'\n"
    "for k in a:\n"
    "    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k\n"
    "    assert torch.equal(a[k], b[k]), k\n"
    "print('ok')\n";

TEST(written_zip_reads_back_identical_and_loads_in_pytorch)
{
    io_state_dict original, again;
    char dir[512], source[1024], written[1024];
    if (!read_case("ddpm_unet", "model.pt", &original))
        return;
    path_join(source, sizeof source, golden_case("ddpm_unet", dir, sizeof dir), "model.pt");
    path_join(written, sizeof written, test_tmpdir(), "ddpm_written.pt");
    CHECK_OK(write_state_dict(written, &original, DC_FORMAT_TORCH_ZIP));
    CHECK_OK(io_checkpoint_read_file(written, &again));
    CHECK(again.container == DC_CONTAINER_TORCH_ZIP);
    check_same(&original, &again, 1);
    io_state_dict_free(&original);
    io_state_dict_free(&again);
    if (test_failed() || !have_python_torch())
        return;
    run_python(compare_script, source, written);
}

TEST(written_dtypes_load_in_pytorch)
{
    static const float f32[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    static const uint8_t flags[3] = {1, 0, 1};
    static const uint16_t f16[2] = {0x3c00, 0xc000}, bf16[2] = {0x3f80, 0x4040};
    static const double f64[2] = {0.5, -1e300};
    static const int64_t i64[3] = {-1, 1ll << 40, 7};
    static const int32_t i32[2] = {-5, 123456};
    static const uint8_t u8[4] = {0, 255, 7, 9};
    static const float seven = 7;
    const dc_named_tensor t[] = {
        {"f32", {DC_FLOAT32, 2, {3, 4}, (void *)f32}},
        {"b", {DC_BOOL, 1, {3}, (void *)flags}},
        {"f16", {DC_FLOAT16, 1, {2}, (void *)f16}},
        {"bf16", {DC_BFLOAT16, 1, {2}, (void *)bf16}},
        {"f64", {DC_FLOAT64, 1, {2}, (void *)f64}},
        {"i64", {DC_INT64, 1, {3}, (void *)i64}},
        {"i32", {DC_INT32, 1, {2}, (void *)i32}},
        {"u8", {DC_UINT8, 3, {1, 2, 2}, (void *)u8}},
        {"scalar", {DC_FLOAT32, 0, {0}, (void *)&seven}},
        {"empty.\xc3\xa9", {DC_INT64, 2, {0, 4}, NULL}},
    };
    static const char script[] =
        "import sys, torch\n"
        "sd = torch.load(sys.argv[1])\n"
        "exp = {'f32': torch.arange(12, dtype=torch.float32).reshape(3, 4),\n"
        "       'b': torch.tensor([True, False, True]),\n"
        "       'f16': torch.tensor([1.0, -2.0], dtype=torch.float16),\n"
        "       'bf16': torch.tensor([1.0, 3.0], dtype=torch.bfloat16),\n"
        "       'f64': torch.tensor([0.5, -1e300], dtype=torch.float64),\n"
        "       'i64': torch.tensor([-1, 1 << 40, 7]),\n"
        "       'i32': torch.tensor([-5, 123456], dtype=torch.int32),\n"
        "       'u8': torch.tensor([0, 255, 7, 9], dtype=torch.uint8).reshape(1, 2, 2),\n"
        "       'scalar': torch.tensor(7.0),\n"
        "       'empty.\\u00e9': torch.zeros(0, 4, dtype=torch.int64)}\n"
        "assert list(sd) == list(exp), list(sd)\n"
        "for k, v in exp.items():\n"
        "    assert sd[k].dtype == v.dtype and sd[k].shape == v.shape, k\n"
        "    assert torch.equal(sd[k], v) and sd[k].is_contiguous(), k\n"
        "print('ok')\n";
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "dtypes.pt");
    CHECK_OK(dc_checkpoint_write(path, DC_FORMAT_AUTO, t, sizeof t / sizeof t[0]));
    if (!have_python_torch())
        return;
    run_python(script, path, NULL);
}

TEST(safetensors_round_trip_of_a_golden_model)
{
    io_state_dict original, again;
    if (!read_case("adm_unet", "model.pt", &original))
        return;
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "adm.safetensors");
    CHECK_OK(write_state_dict(path, &original, DC_FORMAT_AUTO));
    CHECK_OK(io_checkpoint_read_file(path, &again));
    CHECK(again.container == DC_CONTAINER_SAFETENSORS);
    check_same(&original, &again, 1);
    io_state_dict_free(&original);
    io_state_dict_free(&again);
}
