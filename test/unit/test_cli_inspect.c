/* `diffclip inspect`, run as a program (DC_CLI, set by make test): the listing, a missing
 * file and bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

/* The CLI's path, or NULL after marking the test skipped (failed under CI=true). */
static const char *cli_path(void)
{
    const char *cli = getenv("DC_CLI");
    if (cli && *cli)
        return cli;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        test_fail_at(__FILE__, __LINE__, "DC_CLI is not set (required under CI=true)");
    else
        test_skip("DC_CLI is not set");
    return NULL;
}

/* Runs `DC_CLI args`, with stdout and stderr read into out and err; returns the exit code. */
static int run_cli(const char *cli, const char *args, char *out, size_t out_size, char *err,
                   size_t err_size)
{
    char out_path[512], err_path[512], command[2048];
    path_join(out_path, sizeof out_path, test_tmpdir(), "stdout.txt");
    path_join(err_path, sizeof err_path, test_tmpdir(), "stderr.txt");
    snprintf(command, sizeof command, "'%s' %s >'%s' 2>'%s'", cli, args, out_path, err_path);
    int status = system(command);
    const char *paths[] = {out_path, err_path};
    char *buffers[] = {out, err};
    size_t sizes[] = {out_size, err_size};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        size_t n = f ? fread(buffers[i], 1, sizes[i] - 1, f) : 0;
        buffers[i][n] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(inspect_lists_tensors_sorted_by_name)
{
    const char *cli = cli_path();
    if (!cli)
        return;
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
    int code = run_cli(cli, args, out, sizeof out, err, sizeof err);
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
    const char *cli = cli_path();
    if (!cli)
        return;
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
    int code = run_cli(cli, args, out, sizeof out, err, sizeof err);
    CHECKF(code == 0, "exit %d: %s", code, err);
    CHECKF(strcmp(out, "- float32 [2,3]\n") == 0, "got:\n%s", out);
}

TEST(inspect_reports_a_missing_file)
{
    const char *cli = cli_path();
    if (!cli)
        return;
    char path[512], args[1024], out[4096], err[4096], expected[600];
    path_join(path, sizeof path, test_tmpdir(), "missing.pt");
    snprintf(args, sizeof args, "inspect '%s'", path);
    int code = run_cli(cli, args, out, sizeof out, err, sizeof err);
    CHECKF(code == 1, "exit %d", code);
    snprintf(expected, sizeof expected, "diffclip: %s: ", path);
    CHECKF(strncmp(err, expected, strlen(expected)) == 0, "stderr: %s", err);
    CHECK(out[0] == '\0');
}

TEST(inspect_usage_errors_exit_2)
{
    const char *cli = cli_path();
    if (!cli)
        return;
    char out[4096], err[4096];
    int code = run_cli(cli, "inspect", out, sizeof out, err, sizeof err);
    CHECKF(code == 2 && strstr(err, "usage: diffclip inspect FILE"), "exit %d: %s", code, err);
    code = run_cli(cli, "inspect a.pt b.pt", out, sizeof out, err, sizeof err);
    CHECKF(code == 2 && strstr(err, "usage"), "exit %d: %s", code, err);
    CHECK(out[0] == '\0');
}
