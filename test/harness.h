/* A small test harness: TEST(name) registers a function; CHECK* record failures; each test
 * binary prints "PASS name", "FAIL name: why" or "SKIP name: why" per test and a closing
 * "N passed, N failed, N skipped" line. test/run.sh adds the binaries' counts. */
#ifndef DC_TEST_HARNESS_H
#define DC_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "diffclip.h"

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Marks the running test skipped (it stops counting as passed or failed). */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int test_failed(void);

#define TEST(name)                                                              \
    static void test_##name(void);                                              \
    __attribute__((constructor)) static void test_register_##name(void)         \
    {                                                                           \
        test_register(#name, test_##name);                                      \
    }                                                                           \
    static void test_##name(void)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_fail_at(__FILE__, __LINE__, "%s", #cond);                      \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                      \
            return;                                                             \
        }                                                                       \
    } while (0)

/* A call that must succeed: on failure the test fails with dc_last_error(). */
#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        int check_status_ = (expr);                                             \
        if (check_status_ != 0) {                                               \
            test_fail_at(__FILE__, __LINE__, "%s -> %d: %s", #expr, check_status_, \
                         dc_last_error());                                      \
            return;                                                             \
        }                                                                       \
    } while (0)

/* A call that must fail with `status`. */
#define CHECK_STATUS(expr, status)                                              \
    do {                                                                        \
        int check_status_ = (expr);                                             \
        if (check_status_ != (status)) {                                        \
            test_fail_at(__FILE__, __LINE__, "%s -> %d, expected %d (%s)", #expr, \
                         check_status_, (int)(status), dc_last_error());        \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                        \
        double check_a_ = (a), check_b_ = (b);                                  \
        if (!(check_a_ - check_b_ <= (tol) && check_b_ - check_a_ <= (tol))) {  \
            test_fail_at(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, tol %g", #a, \
                         check_a_, #b, check_b_, (double)(tol));                \
            return;                                                             \
        }                                                                       \
    } while (0)

/* ---- helpers for conformance tests ---- */

/* The golden case folder `name` (DC_GOLDEN/name) in `buf`, or NULL after marking the test
 * skipped (or failed when CI=true: conformance data is required in CI). */
const char *golden_case(const char *name, char *buf, size_t size);
/* Where the golden cases run: DC_TEST_DEVICE ("cpu" by default, "cuda", "cuda:N"), as a
 * name for the dc_ options and as a ctorch device (CT_CPU when the name is bad: the test
 * then fails at its first use); DC_TEST_DTYPE (float32 by default, bfloat16, float16) is the
 * dtype the golden UNet cases compute in (tools/device_check.sh reports their differences). */
const char *test_device_name(void);
int test_device(void);
dc_dtype test_unet_dtype(void);
/* CLIP data folder (vocabulary, templates) likewise. */
const char *clip_data_path(const char *file, char *buf, size_t size);
/* path = dir/file */
const char *path_join(char *buf, size_t size, const char *dir, const char *file);
/* The whole file, malloc'd with a NUL after its last byte (so text can be read as a
 * string), its length in *size (size may be NULL); NULL when it cannot be read. */
unsigned char *test_read_file(const char *path, size_t *size);
/* A fresh temporary directory for this test binary (removed at exit). */
const char *test_tmpdir(void);

/* max|a - b| over n floats, and the case tolerance 1e-4 * (1 + max|golden|). */
double max_abs_diff(const float *a, const float *b, size_t n);
double golden_tolerance(const float *golden, size_t n);
/* ||a - b|| / ||b|| */
double relative_l2(const float *a, const float *b, size_t n);

/* Runs the built CLI (environment variable DC_CLI) with `args` (a shell-quoted string),
 * stdout into `out` and stderr into `err` (or into `out` too when err is NULL). Returns the
 * exit status (128 + the signal when a signal ended it, as shells report it), or -1 when
 * the CLI cannot be run (then the test is marked failed, or skipped without DC_CLI outside
 * CI). */
int run_cli(const char *args, char *out, size_t out_size, char *err, size_t err_size);
/* The same with the arguments as a NULL-terminated argv (no shell: texts with spaces or
 * quotes pass as they are); err NULL sends stderr into out too. */
int run_cli_argv(const char *const *args, char *out, size_t out_size, char *err,
                 size_t err_size);

#endif
