#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/latent_cache.h"
#include "harness.h"

enum { C = 3, H = 4, W = 5, N = C * H * W };

static latent_cache_key make_key(void)
{
    latent_cache_key k = {.t0 = 300, .inv_steps = 8, .gen_steps = 4, .num_timesteps = 1000,
                          .beta_start = 1e-4, .beta_end = 0.02, .channels = C, .height = H,
                          .width = W};
    strcpy(k.model_fingerprint, "0123abcd");
    return k;
}

static void fill(float *v, float base)
{
    for (int i = 0; i < N; i++)
        v[i] = base + 0.01f * (float)i;
}

static const char *cache_path(const char *name, char *buf, size_t size)
{
    return path_join(buf, size, test_tmpdir(), name);
}

static int write_two_entries(const char *path)
{
    latent_cache *c;
    latent_cache_key k = make_key();
    int s = latent_cache_open(&c, path, &k);
    if (s)
        return s;
    float a[N], b[N], d[N];
    fill(a, 1), fill(b, 2), fill(d, 3);
    s = latent_cache_append(c, a, b, d);
    fill(a, -1);
    if (!s)
        s = latent_cache_append(c, a, d, b);
    latent_cache_free(c);
    return s;
}

static void write_all(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, size, f);
    fclose(f);
}

TEST(cache_round_trip_and_lookup)
{
    char path[512];
    cache_path("round.dclat", path, sizeof path);
    CHECK_OK(write_two_entries(path));
    latent_cache *c;
    latent_cache_key k = make_key();
    CHECK_OK(latent_cache_open(&c, path, &k));
    CHECK(latent_cache_count(c) == 2);
    float x0[N], want[N], rec[N], lat[N];
    fill(x0, -1);
    size_t index = 99;
    int found = 0;
    CHECK_OK(latent_cache_find(c, x0, &index, &found));
    CHECK(found && index == 1);
    CHECK_OK(latent_cache_get(c, 1, NULL, rec, lat));
    fill(want, 3);
    CHECK(memcmp(rec, want, sizeof want) == 0);
    fill(want, 2);
    CHECK(memcmp(lat, want, sizeof want) == 0);
    x0[7] += 1e-6f;
    CHECK_OK(latent_cache_find(c, x0, &index, &found));
    CHECK(!found);
    CHECK_STATUS(latent_cache_get(c, 2, x0, NULL, NULL), DC_EINVAL);
    latent_cache_free(c);
}

TEST(cache_refuses_other_model_or_parameters)
{
    char path[512];
    cache_path("stale.dclat", path, sizeof path);
    CHECK_OK(write_two_entries(path));
    latent_cache *c = NULL;
    latent_cache_key k = make_key();
    strcpy(k.model_fingerprint, "ffff");
    CHECK_STATUS(latent_cache_open(&c, path, &k), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "another model") != NULL);
    k = make_key();
    k.t0 = 301;
    CHECK_STATUS(latent_cache_open(&c, path, &k), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "t0 300") != NULL);
    k = make_key();
    k.inv_steps = 40;
    CHECK_STATUS(latent_cache_open(&c, path, &k), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "inv_steps") != NULL);
    k = make_key();
    k.beta_end = 0.03;
    CHECK_STATUS(latent_cache_open(&c, path, &k), DC_EINVAL);
    CHECK(c == NULL);
}

TEST(cache_refuses_damaged_files)
{
    char path[512], bad[512];
    cache_path("good.dclat", path, sizeof path);
    cache_path("bad.dclat", bad, sizeof bad);
    CHECK_OK(write_two_entries(path));
    size_t size;
    unsigned char *data = test_read_file(path, &size);
    CHECK(data != NULL);
    latent_cache_key k = make_key();
    float x0[N];
    for (size_t cut = 0; cut < size; cut += (cut < 140 ? 1 : 7)) {
        write_all(bad, data, cut);
        latent_cache *c = NULL;
        int s = latent_cache_open(&c, bad, &k);
        CHECKF(s == DC_EFORMAT || (cut == 0 && s == DC_EFORMAT), "truncated at %zu: %d", cut, s);
        CHECK(strlen(dc_last_error()) > 0);
    }
    for (size_t pos = 0; pos < size; pos += 3) {
        data[pos] ^= 0x5a;
        write_all(bad, data, size);
        data[pos] ^= 0x5a;
        latent_cache *c = NULL;
        int s = latent_cache_open(&c, bad, &k);
        if (s == DC_OK) {
            /* A flip inside compressed data is caught when the entry is read. */
            int bad_entries = 0;
            for (size_t i = 0; i < latent_cache_count(c); i++)
                bad_entries += latent_cache_get(c, i, x0, NULL, NULL) != DC_OK;
            latent_cache_free(c);
            CHECKF(bad_entries == 1, "bit flip at %zu went unnoticed", pos);
        } else {
            CHECKF(s == DC_EFORMAT || s == DC_EINVAL, "bit flip at %zu: status %d", pos, s);
        }
    }
    free(data);
}

TEST(cache_new_file_is_created_on_first_append_only)
{
    char path[512];
    cache_path("new.dclat", path, sizeof path);
    latent_cache *c;
    latent_cache_key k = make_key();
    CHECK_OK(latent_cache_open(&c, path, &k));
    CHECK(latent_cache_count(c) == 0);
    FILE *f = fopen(path, "rb");
    CHECK(f == NULL);
    float a[N];
    fill(a, 0);
    CHECK_OK(latent_cache_append(c, a, a, a));
    latent_cache_free(c);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    fclose(f);
}

TEST(fingerprint_depends_on_names_and_data)
{
    float v[4] = {1, 2, 3, 4};
    dc_named_tensor t = {"w", {.dtype = DC_FLOAT32, .ndim = 1, .shape = {4}, .data = v}};
    char a[LATENT_CACHE_FINGERPRINT_SIZE], b[LATENT_CACHE_FINGERPRINT_SIZE];
    latent_cache_fingerprint(&t, 1, a);
    v[3] = 5;
    latent_cache_fingerprint(&t, 1, b);
    CHECK(strcmp(a, b) != 0);
    v[3] = 4;
    t.name = "x";
    latent_cache_fingerprint(&t, 1, b);
    CHECK(strcmp(a, b) != 0);
}
