#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include "ctorch/ctorch.h"

#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { MAX_TESTS = 1024 };

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int test_count;
static int current_failed, current_skipped;
static char current_reason[2048];
static char tmpdir[256];

void test_register(const char *name, test_fn fn)
{
    if (test_count < MAX_TESTS) {
        tests[test_count].name = name;
        tests[test_count].fn = fn;
        test_count++;
    }
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
    int n = snprintf(current_reason, sizeof current_reason, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current_reason + n, sizeof current_reason - (size_t)n, fmt, ap);
    va_end(ap);
    current_failed = 1;
}

void test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(current_reason, sizeof current_reason, fmt, ap);
    va_end(ap);
    current_skipped = 1;
}

int test_failed(void) { return current_failed; }

const char *path_join(char *buf, size_t size, const char *dir, const char *file)
{
    snprintf(buf, size, "%s/%s", dir, file);
    return buf;
}

const char *test_device_name(void)
{
    const char *name = getenv("DC_TEST_DEVICE");
    return name && *name ? name : "cpu";
}

int test_device(void)
{
    int device = CT_CPU;
    if (ct_parse_device(test_device_name(), &device) != DC_OK)
        test_fail_at(__FILE__, __LINE__, "DC_TEST_DEVICE: %s", dc_last_error());
    return device;
}

dc_dtype test_unet_dtype(void)
{
    const char *name = getenv("DC_TEST_DTYPE");
    if (!name || !*name || strcmp(name, "float32") == 0)
        return DC_FLOAT32;
    if (strcmp(name, "bfloat16") == 0)
        return DC_BFLOAT16;
    if (strcmp(name, "float16") == 0)
        return DC_FLOAT16;
    test_fail_at(__FILE__, __LINE__, "DC_TEST_DTYPE is '%s' (float32, bfloat16, float16)", name);
    return DC_FLOAT32;
}

static int ci_mode(void)
{
    const char *ci = getenv("CI");
    return ci && strcmp(ci, "true") == 0;
}

static const char *data_dir(const char *variable, const char *what, const char *name,
                            char *buf, size_t size)
{
    const char *root = getenv(variable);
    if (!root || !*root) {
        if (ci_mode())
            test_fail_at(__FILE__, __LINE__, "%s is not set (%s required under CI=true)",
                         variable, what);
        else
            test_skip("%s is not set", variable);
        return NULL;
    }
    path_join(buf, size, root, name);
    if (access(buf, R_OK) != 0) {
        if (ci_mode())
            test_fail_at(__FILE__, __LINE__, "%s is missing (%s required under CI=true)", buf,
                         what);
        else
            test_skip("%s is missing", buf);
        return NULL;
    }
    return buf;
}

const char *golden_case(const char *name, char *buf, size_t size)
{
    return data_dir("DC_GOLDEN", "conformance data", name, buf, size);
}

const char *clip_data_path(const char *file, char *buf, size_t size)
{
    return data_dir("DC_CLIP_DATA", "CLIP data", file, buf, size);
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "%s/dctest.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

double golden_tolerance(const float *golden, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(golden[i]) > m)
            m = fabs(golden[i]);
    return 1e-4 * (1 + m);
}

double relative_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void read_text(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

unsigned char *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *data = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
        data = malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (data) {
        data[n] = '\0';
        if (size)
            *size = (size_t)n;
    }
    return data;
}

static int exit_code(int wstatus)
{
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
           : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : -1;
}

/* The CLI's path, or NULL after marking the test skipped (failed under CI=true). */
static const char *cli_path(void)
{
    const char *cli = getenv("DC_CLI");
    if (cli && *cli)
        return cli;
    if (ci_mode())
        test_fail_at(__FILE__, __LINE__, "DC_CLI is not set (required under CI=true)");
    else
        test_skip("DC_CLI is not set");
    return NULL;
}

int run_cli_argv(const char *const *args, char *out, size_t out_size, char *err,
                 size_t err_size)
{
    const char *cli = cli_path();
    if (!cli)
        return -1;
    char out_path[512], err_path[512];
    path_join(out_path, sizeof out_path, test_tmpdir(), "cli-stdout.txt");
    path_join(err_path, sizeof err_path, test_tmpdir(), "cli-stderr.txt");
    enum { MAX_ARGS = 64 };
    const char *argv[MAX_ARGS + 1] = {cli};
    int argc = 1;
    while (args[argc - 1]) {
        if (argc == MAX_ARGS) {
            test_fail_at(__FILE__, __LINE__, "run_cli_argv: more than %d arguments", MAX_ARGS);
            return -1;
        }
        argv[argc] = args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err)
        posix_spawn_file_actions_addopen(&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
    else
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid;
    int spawned = posix_spawn(&pid, cli, &actions, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    int wstatus;
    if (spawned != 0 || waitpid(pid, &wstatus, 0) != pid) {
        test_fail_at(__FILE__, __LINE__, "cannot run %s", cli);
        return -1;
    }
    read_text(out_path, out, out_size);
    if (err)
        read_text(err_path, err, err_size);
    return exit_code(wstatus);
}

int run_cli(const char *args, char *out, size_t out_size, char *err, size_t err_size)
{
    const char *cli = cli_path();
    if (!cli)
        return -1;
    char out_path[512], err_path[512], command[8192];
    path_join(out_path, sizeof out_path, test_tmpdir(), "cli-stdout.txt");
    path_join(err_path, sizeof err_path, test_tmpdir(), "cli-stderr.txt");
    if (err)
        snprintf(command, sizeof command, "'%s' %s >'%s' 2>'%s'", cli, args, out_path, err_path);
    else
        snprintf(command, sizeof command, "'%s' %s >'%s' 2>&1", cli, args, out_path);
    int status = system(command);
    read_text(out_path, out, out_size);
    if (err)
        read_text(err_path, err, err_size);
    return exit_code(status);
}

static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0, skipped = 0;
    atexit(remove_tmpdir);
    for (int i = 0; i < test_count; i++) {
        if (only && !strstr(tests[i].name, only))
            continue;
        current_failed = current_skipped = 0;
        current_reason[0] = '\0';
        tests[i].fn();
        if (current_failed) {
            printf("FAIL %s: %s\n", tests[i].name, current_reason);
            failed++;
        } else if (current_skipped) {
            printf("SKIPPED %s: %s\n", tests[i].name, current_reason);
            skipped++;
        } else {
            printf("PASS %s\n", tests[i].name);
            passed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
