/* `diffclip inspect`, run as a program (DC_CLI, set by make test): the listing, a missing
 * file and bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

TEST(inspect_lists_tensors_sorted_by_name)
{
    float w[6] = {0}, one = 1;
    uint8_t flag = 1;
    int64_t step = 5;
    const dc_named_tensor t[] = {
        {"b.weight", {DC_FLOAT32, 2, {2, 3}, w}},
        {"a", {DC_INT64, 0, {0}, &step}},
        {"B", {DC_BOOL, 1, {1}, &flag}},
        {"a.b", {DC_FLOAT16, 1, {0}, NULL}},
        {"a_c", {DC_FLOAT32, 4, {1, 1, 1, 1}, &one}},
    };
    char path[512], args[1024], out[4096], err[4096];
    path_join(path, sizeof path, test_tmpdir(), "fixture.pt");
    CHECK_OK(dc_checkpoint_write(path, DC_FORMAT_TORCH_ZIP, t, sizeof t / sizeof t[0]));
    snprintf(args, sizeof args, "inspect '%s'", path);
    int code = run_cli(args, out, sizeof out, err, sizeof err);
    CHECKF(code == 0, "exit %d: %s", code, err);
    CHECKF(strcmp(out, "B bool [1]\n"
                       "a int64 []\n"
                       "a.b float16 [0]\n"
                       "a_c float32 [1,1,1,1]\n"
                       "b.weight float32 [2,3]\n") == 0,
           "got:\n%s", out);
    CHECK(err[0] == '\0');
}

TEST(inspect_names_an_npy_array_dash)
{
    static const char header[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
                                 "    \n";
    char path[512], args[1024], out[4096], err[4096];
    path_join(path, sizeof path, test_tmpdir(), "x.npy");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    float data[6] = {0};
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, sizeof header - 1, 0};
    fwrite(prefix, 1, sizeof prefix, f);
    fwrite(header, 1, sizeof header - 1, f);
    fwrite(data, 1, sizeof data, f);
    CHECK(fclose(f) == 0);
    snprintf(args, sizeof args, "inspect '%s'", path);
    int code = run_cli(args, out, sizeof out, err, sizeof err);
    CHECKF(code == 0, "exit %d: %s", code, err);
    CHECKF(strcmp(out, "- float32 [2,3]\n") == 0, "got:\n%s", out);
}

TEST(inspect_reports_a_missing_file)
{
    char path[512], args[1024], out[4096], err[4096], expected[600];
    path_join(path, sizeof path, test_tmpdir(), "missing.pt");
    snprintf(args, sizeof args, "inspect '%s'", path);
    int code = run_cli(args, out, sizeof out, err, sizeof err);
    CHECKF(code == 1, "exit %d", code);
    snprintf(expected, sizeof expected, "diffclip: %s: ", path);
    CHECKF(strncmp(err, expected, strlen(expected)) == 0, "stderr: %s", err);
    CHECK(out[0] == '\0');
}

TEST(inspect_usage_errors_exit_2)
{
    char out[4096], err[4096];
    int code = run_cli("inspect", out, sizeof out, err, sizeof err);
    CHECKF(code == 2 && strstr(err, "usage: diffclip inspect"), "exit %d: %s", code, err);
    code = run_cli("inspect a.pt b.pt", out, sizeof out, err, sizeof err);
    CHECKF(code == 2 && strstr(err, "usage"), "exit %d: %s", code, err);
    CHECK(out[0] == '\0');
}
