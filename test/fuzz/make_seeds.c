/* Writes small seed inputs for the fuzz targets:
 *   make_seeds OUT_DIR CLIP_DATA_DIR GOLDEN_DIR FACEAPI_DIR
 * fills OUT_DIR/<target>/ with valid files of every variant each reader accepts (and a few it
 * refuses), so that fuzzing starts from deep inside the formats: written here, or taken from
 * the golden cases (their pickles; their checkpoints are too large to mutate quickly) and the
 * data folders when present. run_fuzz.sh adds the small golden files and py_seeds.py's. */
#include <errno.h>
#include <stdio.h>   /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "fuzz.h"
#include "io/file.h"
#include "io/npy.h"
#include "io/pickle.h"
#include "io/zip.h"
#include "nn/tokenizer.h"

static const char *out_dir;
static int failures;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, detail);
    failures++;
}

/* OUT_DIR/target/name, creating the target folder. */
static const char *seed_path(const char *target, const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        fail(path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    return path;
}

static void write_bytes(const char *target, const char *name, const void *data, size_t size)
{
    const char *path = seed_path(target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size)
        fail(path, strerror(errno));
    if (f && fclose(f) != 0)
        fail(path, strerror(errno));
}

static uint8_t pattern(size_t i) { return (uint8_t)(i * 37u + (i >> 3) * 11u); }

/* ---- .npy ---- */

static void npy_seed(const char *target, const char *name, dc_dtype dtype, int ndim,
                     const int64_t *shape)
{
    dc_tensor t = {.dtype = dtype, .ndim = ndim};
    memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    size_t bytes = (size_t)dc_tensor_numel(&t) * dc_dtype_size(dtype);
    uint8_t *data = malloc(bytes ? bytes : 1);
    for (size_t i = 0; i < bytes; i++)
        data[i] = pattern(i);
    if (dtype == DC_BOOL)
        for (size_t i = 0; i < bytes; i++)
            data[i] &= 1;
    t.data = data;
    if (io_npy_write_file(seed_path(target, name), &t) != DC_OK)
        fail(name, dc_last_error());
    free(data);
}

/* A hand-written header (format version `major`.0) and `payload` bytes of data. */
static void npy_raw_seed(const char *name, int major, const char *dict, size_t payload)
{
    uint8_t buf[512] = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)major, 0};
    size_t preamble = major == 1 ? 10 : 12, header_len = strlen(dict) + 1;
    buf[8] = (uint8_t)header_len;
    buf[9] = (uint8_t)(header_len >> 8);
    memcpy(buf + preamble, dict, header_len - 1);
    buf[preamble + header_len - 1] = '\n';
    for (size_t i = 0; i < payload; i++)
        buf[preamble + header_len + i] = pattern(i);
    write_bytes("npy", name, buf, preamble + header_len + payload);
}

static void npy_seeds(void)
{
    npy_seed("npy", "f4_2x3.npy", DC_FLOAT32, 2, (int64_t[]){2, 3});
    npy_seed("npy", "f2_5.npy", DC_FLOAT16, 1, (int64_t[]){5});
    npy_seed("npy", "f8_scalar.npy", DC_FLOAT64, 0, (int64_t[]){0});
    npy_seed("npy", "i8_1x1x2.npy", DC_INT64, 3, (int64_t[]){1, 1, 2});
    npy_seed("npy", "i4_0x4.npy", DC_INT32, 2, (int64_t[]){0, 4});
    npy_seed("npy", "u1_4x4.npy", DC_UINT8, 2, (int64_t[]){4, 4});
    npy_seed("npy", "b1_3.npy", DC_BOOL, 1, (int64_t[]){3});
    npy_raw_seed("v2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    npy_raw_seed("v3_quotes.npy", 3, "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (1, 1)}", 4);
    npy_raw_seed("long_suffix.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1L, 2L), }", 16);
    npy_raw_seed("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
    npy_raw_seed("big_endian.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4);
    npy_raw_seed("object.npy", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8);
}

/* ---- PNG: every colour type and bit depth, some interlaced ---- */

static void png_seed(int color, int depth, int interlace, int transparency)
{
    enum { WIDTH = 7, HEIGHT = 5 };
    char name[64];
    snprintf(name, sizeof name, "c%d_d%d%s%s.png", color, depth, interlace ? "_i" : "",
             transparency ? "_t" : "");
    const char *path = seed_path("png", name);
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!f || !info) {
        fail(path, "cannot start writing");
        if (f)
            fclose(f);
        png_destroy_write_struct(&png, NULL);
        return;
    }
    if (setjmp(png_jmpbuf(png))) {
        fail(path, "libpng error");
    } else {
        png_init_io(png, f);
        png_set_IHDR(png, info, WIDTH, HEIGHT, depth, color,
                     interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        if (color == PNG_COLOR_TYPE_PALETTE) {
            png_color palette[16];
            for (int i = 0; i < 16; i++)
                palette[i] = (png_color){pattern(3 * i), pattern(3 * i + 1), pattern(3 * i + 2)};
            png_set_PLTE(png, info, palette, 1 << (depth < 4 ? depth : 4));
            png_byte alpha[2] = {0, 128};
            if (transparency)
                png_set_tRNS(png, info, alpha, 2, NULL);
        } else if (transparency) {
            png_color_16 key = {.gray = 1, .red = 1, .green = 2, .blue = 3};
            png_set_tRNS(png, info, NULL, 0, &key);
        }
        png_write_info(png, info);
        size_t rowbytes = png_get_rowbytes(png, info);
        png_bytep pixels = malloc(rowbytes * HEIGHT);
        png_bytep rows[HEIGHT];
        for (size_t i = 0; i < rowbytes * HEIGHT; i++)
            pixels[i] = pattern(i);
        if (color == PNG_COLOR_TYPE_PALETTE && depth == 8)
            for (size_t i = 0; i < rowbytes * HEIGHT; i++)
                pixels[i] &= 15;   /* within the palette */
        for (int y = 0; y < HEIGHT; y++)
            rows[y] = pixels + (size_t)y * rowbytes;
        png_write_image(png, rows);
        png_write_end(png, NULL);
        free(pixels);
    }
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void png_seeds(void)
{
    static const int gray_depths[] = {1, 2, 4, 8, 16}, palette_depths[] = {1, 2, 4, 8};
    for (int i = 0; i < 5; i++)
        png_seed(PNG_COLOR_TYPE_GRAY, gray_depths[i], i % 2, i == 3);
    for (int i = 0; i < 4; i++)
        png_seed(PNG_COLOR_TYPE_PALETTE, palette_depths[i], i == 2, i >= 2);
    for (int depth = 8; depth <= 16; depth += 8) {
        png_seed(PNG_COLOR_TYPE_GRAY_ALPHA, depth, depth == 16, 0);
        png_seed(PNG_COLOR_TYPE_RGB, depth, depth == 8, depth == 16);
        png_seed(PNG_COLOR_TYPE_RGB_ALPHA, depth, depth == 16, 0);
    }
    png_seed(PNG_COLOR_TYPE_RGB, 8, 0, 0);
}

/* ---- JPEG: gray, YCbCr with and without subsampling, RGB, CMYK (refused), progressive,
 * restart markers, optimized and arithmetic coding ---- */

typedef struct jpeg_variant {
    const char *name;
    int width, height, components;
    J_COLOR_SPACE space;          /* of the file */
    int subsample, progressive, restart, optimize, arithmetic, quality;
} jpeg_variant;

static void jpeg_seed(const jpeg_variant *v)
{
    const char *path = seed_path("jpeg", v->name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fail(path, strerror(errno));
        return;
    }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err);   /* a writer error in a seed tool may end it */
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)v->width;
    cinfo.image_height = (JDIMENSION)v->height;
    cinfo.input_components = v->components;
    cinfo.in_color_space = v->components == 1 ? JCS_GRAYSCALE : v->components == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, v->space);
    jpeg_set_quality(&cinfo, v->quality, TRUE);
    if (v->components == 3 && v->space == JCS_YCbCr && !v->subsample)
        cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = 1;
    if (v->progressive)
        jpeg_simple_progression(&cinfo);
    cinfo.restart_interval = (unsigned)v->restart;
    cinfo.optimize_coding = v->optimize ? TRUE : FALSE;
    cinfo.arith_code = v->arithmetic ? TRUE : FALSE;
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)v->width * (size_t)v->components;
    JSAMPLE *row = malloc(stride);
    while (cinfo.next_scanline < cinfo.image_height) {
        for (size_t i = 0; i < stride; i++)
            row[i] = pattern(i + cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    fclose(f);
}

static void jpeg_seeds(void)
{
    static const jpeg_variant variants[] = {
        {"baseline.jpg", 17, 13, 3, JCS_YCbCr, 1, 0, 0, 0, 0, 95},
        {"no_subsampling.jpg", 9, 7, 3, JCS_YCbCr, 0, 0, 0, 1, 0, 75},
        {"gray.jpg", 11, 5, 1, JCS_GRAYSCALE, 0, 0, 0, 0, 0, 90},
        {"progressive.jpg", 16, 16, 3, JCS_YCbCr, 1, 1, 0, 0, 0, 80},
        {"restart.jpg", 24, 9, 3, JCS_YCbCr, 1, 0, 1, 0, 0, 50},
        {"rgb.jpg", 8, 8, 3, JCS_RGB, 0, 0, 0, 0, 0, 95},
        {"arithmetic.jpg", 10, 10, 3, JCS_YCbCr, 1, 0, 0, 0, 1, 85},
        {"progressive_gray_arith.jpg", 13, 6, 1, JCS_GRAYSCALE, 0, 1, 2, 0, 1, 70},
        {"cmyk.jpg", 5, 5, 4, JCS_CMYK, 0, 0, 0, 0, 0, 90},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        jpeg_seed(&variants[i]);
}

/* ---- latent caches of 1 and 3 entries (the third repeats the first x0) ---- */

static void latent_cache_seed(const char *name, int entries)
{
    const char *path = seed_path("latent_cache", name);
    remove(path);
    latent_cache_key key = fuzz_latent_key();
    size_t n = (size_t)key.channels * (size_t)key.height * (size_t)key.width;
    float x0[3][64], x_rec[64], x_lat[64];
    for (size_t i = 0; i < n; i++) {
        x0[0][i] = x0[2][i] = (float)i / (float)n - 0.5f;
        x0[1][i] = (float)(i % 7);
        x_rec[i] = 0.25f;
        x_lat[i] = (float)pattern(i);
    }
    latent_cache *cache;
    if (latent_cache_open(&cache, path, &key) != DC_OK) {
        fail(path, dc_last_error());
        return;
    }
    for (int e = 0; e < entries; e++)
        if (latent_cache_append(cache, x0[e], x_rec, x_lat) != DC_OK)
            fail(path, dc_last_error());
    latent_cache_free(cache);
}

/* ---- vocabularies: a synthetic one, and the published one decompressed when present ---- */

static void vocab_seeds(const char *clip_dir)
{
    size_t cap = (size_t)NN_TOKENIZER_MERGES * 16 + 64, n = 0;
    char *text = malloc(cap);
    n += (size_t)snprintf(text, cap, "#version: fuzz\n");
    for (int r = 0; r < NN_TOKENIZER_MERGES; r++)
        n += (size_t)snprintf(text + n, cap - n, "%c%c %c%s\n", 'a' + r % 26,
                              'a' + (r / 26) % 26, 'a' + (r / 676) % 26, r % 3 ? "</w>" : "");
    write_bytes("vocab", "synthetic.txt", text, n);
    free(text);

    char path[4096];
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", clip_dir);
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return;   /* optional: the synthetic seed stands in */
    size_t size = 0;
    cap = (size_t)4 << 20;
    text = malloc(cap);
    int got;
    while (size < cap && (got = gzread(gz, text + size, (unsigned)(cap - size))) > 0)
        size += (size_t)got;
    gzclose(gz);
    /* The header and the merges the reader uses: the rest would only slow each run. */
    size_t used = 0;
    for (int lines = 0; used < size && lines < NN_TOKENIZER_MERGES + 1; used++)
        lines += text[used] == '\n';
    write_bytes("vocab", "clip.txt", text, used);
    free(text);
}

static void tokenize_seeds(void)
{
    static const char *const texts[] = {
        "a photo of an angry face", "Tom &amp; Jerry&#39;s   <b>cartoon</b>&lt;", "ÀÉÎ naïve 😀",
        "don't we'll I'M 3.14 1,000", "\xef\xbc\xa1\xe2\x80\x9cquotes\xe2\x80\x9d",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "text%zu.txt", i);
        write_bytes("tokenize", name, texts[i], strlen(texts[i]));
    }
}

/* ---- zip archives (stored; py_seeds.py adds deflated ones), and checkpoints and
 * safetensors written by the library ---- */

static void zip_seed(const char *name, int zip64)
{
    const char *path = seed_path("zip", name);
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = pattern(i);
    io_zip_writer w;
    if (io_zip_writer_begin(&w, path) != DC_OK) {
        fail(path, dc_last_error());
        return;
    }
    w.force_zip64 = zip64;
    if (io_zip_writer_add(&w, "archive/data.pkl", data, 40) != DC_OK ||
        io_zip_writer_add(&w, "archive/data/0", data, sizeof data) != DC_OK ||
        io_zip_writer_add(&w, "archive/empty", data, 0) != DC_OK ||
        io_zip_writer_finish(&w) != DC_OK) {
        fail(path, dc_last_error());
        io_zip_writer_abort(&w);
    }
}

static void checkpoint_seeds(void)
{
    static const float f32[6] = {0.5f, -1, 2, 3e-8f, 1e30f, -0.0f};
    static const uint16_t f16[2] = {0x3c00, 0xc000};
    static const double f64[2] = {0.25, -1e300};
    static const int64_t i64[3] = {-1, 1ll << 40, 7};
    static const int32_t i32[2] = {-5, 123456};
    static const uint8_t u8[4] = {0, 255, 7, 1};
    const dc_named_tensor tensors[] = {
        {"conv.weight", {DC_FLOAT32, 2, {2, 3}, (void *)f32}},
        {"half", {DC_FLOAT16, 1, {2}, (void *)f16}},
        {"bf16", {DC_BFLOAT16, 1, {2}, (void *)f16}},
        {"double", {DC_FLOAT64, 1, {2}, (void *)f64}},
        {"long", {DC_INT64, 3, {1, 3, 1}, (void *)i64}},
        {"int", {DC_INT32, 1, {2}, (void *)i32}},
        {"byte", {DC_UINT8, 2, {2, 2}, (void *)u8}},
        {"mask", {DC_BOOL, 1, {2}, (void *)u8}},
        {"scalar", {DC_FLOAT32, 0, {0}, (void *)(f32 + 1)}},
        {"empty.\xc3\xa9", {DC_INT64, 2, {0, 4}, NULL}},
    };
    size_t count = sizeof tensors / sizeof tensors[0];
    if (io_checkpoint_write_torch(seed_path("checkpoint", "all_dtypes.pt"), tensors, count) != DC_OK ||
        io_checkpoint_write_torch(seed_path("zip", "all_dtypes.pt"), tensors, count) != DC_OK ||
        io_checkpoint_write_torch(seed_path("checkpoint", "one.pt"), tensors, 1) != DC_OK ||
        io_checkpoint_write_safetensors(seed_path("checkpoint", "all_dtypes.safetensors"),
                                        tensors, count) != DC_OK ||
        io_checkpoint_write_safetensors(seed_path("safetensors", "all_dtypes.safetensors"),
                                        tensors, count) != DC_OK ||
        io_checkpoint_write_safetensors(seed_path("safetensors", "one.safetensors"), tensors,
                                        1) != DC_OK)
        fail("checkpoint seeds", dc_last_error());
    static const char metadata[] =
        "{\"__metadata__\": {\"format\": \"pt\"}, \"w\": {\"dtype\": \"F32\", "
        "\"shape\": [1], \"data_offsets\": [0, 4]}}";
    uint8_t file[8 + sizeof metadata + 4] = {sizeof metadata - 1};
    memcpy(file + 8, metadata, sizeof metadata - 1);
    memcpy(file + 8 + sizeof metadata - 1, f32, 4);
    write_bytes("safetensors", "metadata.safetensors", file, sizeof file - 1);
    write_bytes("checkpoint", "metadata.safetensors", file, sizeof file - 1);
    npy_seed("checkpoint", "array.npy", DC_FLOAT32, 2, (int64_t[]){2, 2});
}

/* ---- pickles: every pickle inside the golden checkpoints (zip records, and the legacy
 * container's leading pickles back to back) ---- */

static void pickle_seeds_from(const char *path, const char *seed_prefix)
{
    io_mapped_file file;
    if (io_map_file(path, &file) != DC_OK)
        return;   /* the golden cases are optional here: golden tests report their absence */
    io_zip zip;
    char name[256];
    if (io_zip_is_zip(file.data, file.size)) {
        if (io_zip_open(&zip, file.data, file.size, path) == DC_OK) {
            for (size_t i = 0; i < zip.count; i++) {
                const char *entry = zip.entries[i].name;
                size_t n = strlen(entry);
                const uint8_t *data;
                size_t size;
                if (n < 4 || strcmp(entry + n - 4, ".pkl") != 0 ||
                    io_zip_read(&zip, &zip.entries[i], &data, &size) != DC_OK)
                    continue;
                const char *base = strrchr(entry, '/');
                snprintf(name, sizeof name, "%s_%s", seed_prefix, base ? base + 1 : entry);
                write_bytes("pickle", name, data, size);
            }
            io_zip_close(&zip);
        }
    } else {
        /* magic number, protocol, system info, the object, the storage keys */
        io_pickle pk;
        io_pickle_init(&pk, path, 0);
        size_t at = 0;
        for (int n = 0; n < 5 && at < file.size; n++) {
            size_t consumed;
            io_pk_obj *result;
            if (io_pickle_load(&pk, file.data + at, file.size - at, &consumed, &result) != DC_OK)
                break;
            at += consumed;
        }
        io_pickle_free(&pk);
        snprintf(name, sizeof name, "%s_pickles", seed_prefix);
        write_bytes("pickle", name, file.data, at);
    }
    io_unmap_file(&file);
}

static void pickle_seeds(const char *golden)
{
    static const char *const checkpoints[] = {
        "ddpm_unet/model.pt", "ddpm_unet/model_legacy.pt", "clip_vit/clip_torchscript.pt",
        "clip_vit/clip_state_dict.pt", "arcface_irse/irse_fp16.pt", "finetune_step/grad.pt",
    };
    for (size_t i = 0; i < sizeof checkpoints / sizeof checkpoints[0]; i++) {
        char path[4096], prefix[64];
        snprintf(path, sizeof path, "%s/%s", golden, checkpoints[i]);
        snprintf(prefix, sizeof prefix, "%.*s", (int)strcspn(checkpoints[i], "."), checkpoints[i]);
        for (char *c = prefix; *c; c++)
            if (*c == '/')
                *c = '_';
        pickle_seeds_from(path, prefix);
    }
}

/* ---- tfjs manifests and shards (layout in fuzz.h) ---- */

static void tfjs_seed(const char *name, int nshards, const char *manifest, size_t bytes)
{
    size_t n = strlen(manifest), size = 1 + n + 1 + bytes;
    uint8_t *input = malloc(size);
    input[0] = (uint8_t)(nshards - 1);
    memcpy(input + 1, manifest, n);
    input[1 + n] = '\0';
    for (size_t i = 0; i < bytes; i++)
        input[2 + n + i] = pattern(i);
    write_bytes("tfjs", name, input, size);
    free(input);
}

static void tfjs_seeds(const char *faceapi)
{
    tfjs_seed("mixed", 1,
              "[{\"paths\": [\"a.bin\"], \"note\": {\"x\": [1, {\"y\": null}], \"z\": true},\n"
              " \"weights\": [\n"
              "  {\"name\": \"conv/w\\u00e9\\\"\", \"shape\": [2, 3], \"dtype\": \"float32\"},\n"
              "  {\"name\": \"idx\", \"shape\": [2], \"dtype\": \"int32\", \"group\": \"model\"},\n"
              "  {\"shape\": [4], \"name\": \"q8\", \"dtype\": \"float32\",\n"
              "   \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -1.0E0}},\n"
              "  {\"name\": \"q16\", \"shape\": [2], \"dtype\": \"float32\",\n"
              "   \"quantization\": {\"min\": 2, \"scale\": 2.5e-1, \"dtype\": \"uint16\"}},\n"
              "  {\"name\": \"qi\", \"shape\": [3], \"dtype\": \"int32\",\n"
              "   \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -1.25}},\n"
              "  {\"name\": \"s\", \"shape\": [], \"dtype\": \"float32\"},\n"
              "  {\"name\": \"e\", \"shape\": [0, 5], \"dtype\": \"float32\"}]}]",
              47);
    tfjs_seed("two_shards", 2,
              "[{\"paths\": [\"g-1\", \"g-2\"], \"weights\": [\n"
              "  {\"name\": \"a\", \"shape\": [3], \"dtype\": \"float32\"}]}]", 12);
    tfjs_seed("two_groups", 2,
              "[{\"paths\": [\"g0\"], \"weights\": [{\"name\": \"a\", \"shape\": [2], "
              "\"dtype\": \"float32\"}]},\n"
              " {\"weights\": [{\"name\": \"b\", \"shape\": [2], \"dtype\": \"int32\"}], "
              "\"paths\": [\"sub/g1\"]}]", 16);
    /* face-api's manifest: its 6 MB shard is too large to mutate, so without it */
    char path[4096];
    snprintf(path, sizeof path, "%s/face_recognition_model-weights_manifest.json", faceapi);
    io_mapped_file file;
    if (io_map_file(path, &file) == DC_OK) {
        char *manifest = malloc(file.size + 1);
        memcpy(manifest, file.data, file.size);
        manifest[file.size] = '\0';
        tfjs_seed("faceapi_manifest", 1, manifest, 0);
        free(manifest);
        io_unmap_file(&file);
    }
}

/* What the published configs do not hold: block sequences, comments, anchors and aliases,
 * tags, nesting, quoting styles. */
static void yaml_seeds(void)
{
    static const struct {
        const char *name, *text;
    } seeds[] = {
        {"block.yml", "# c\ndata:\n  image_size: 64 # x\nmodel:\n  ch_mult:\n    - 1\n"
                      "    - 2\n  var_type: 'fixedlarge'\n  attn_resolutions: []\n"},
        {"aliases.yml", "a: &a [1, 2]\nb: *a\nc: {<<: *a}\n"},
        {"tags.yml", "x: !!str 1\ny: !custom [1]\n"},
        {"nested.yml", "a: [[[[{b: [1, {c: d}]}]]]]\n"},
        {"quotes.yml", "data:\n  dataset: \"a\\tb\\u00e9\"\n  category: |\n    line\n"},
        {"documents.yml", "---\na: 1\n...\n---\nb: 2\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
        write_bytes("yaml", seeds[i].name, seeds[i].text, strlen(seeds[i].text));
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: make_seeds OUT_DIR CLIP_DATA_DIR GOLDEN_DIR FACEAPI_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fail(out_dir, strerror(errno));
        return 1;
    }
    npy_seeds();
    png_seeds();
    jpeg_seeds();
    latent_cache_seed("one_entry.cache", 1);
    latent_cache_seed("three_entries.cache", 3);
    vocab_seeds(argv[2]);
    tokenize_seeds();
    zip_seed("stored.zip", 0);
    zip_seed("zip64.zip", 1);
    checkpoint_seeds();
    pickle_seeds(argv[3]);
    tfjs_seeds(argv[4]);
    yaml_seeds();
    return failures ? 1 : 0;
}
