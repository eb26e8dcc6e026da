/* Writes small seed inputs for the fuzz targets: make_seeds OUT_DIR [CLIP_DATA_DIR] fills
 * OUT_DIR/<target>/ with valid files of every variant each reader accepts (and a few it
 * refuses), so that fuzzing starts from deep inside the formats. run_fuzz.sh adds the golden
 * files. */
#include <errno.h>
#include <stdio.h>   /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "fuzz.h"
#include "io/npy.h"
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

static void npy_seed(const char *name, dc_dtype dtype, int ndim, const int64_t *shape)
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
    if (io_npy_write_file(seed_path("npy", name), &t) != DC_OK)
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
    npy_seed("f4_2x3.npy", DC_FLOAT32, 2, (int64_t[]){2, 3});
    npy_seed("f2_5.npy", DC_FLOAT16, 1, (int64_t[]){5});
    npy_seed("f8_scalar.npy", DC_FLOAT64, 0, (int64_t[]){0});
    npy_seed("i8_1x1x2.npy", DC_INT64, 3, (int64_t[]){1, 1, 2});
    npy_seed("i4_0x4.npy", DC_INT32, 2, (int64_t[]){0, 4});
    npy_seed("u1_4x4.npy", DC_UINT8, 2, (int64_t[]){4, 4});
    npy_seed("b1_3.npy", DC_BOOL, 1, (int64_t[]){3});
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

    if (!clip_dir)
        return;
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

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_seeds OUT_DIR [CLIP_DATA_DIR]\n");
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
    vocab_seeds(argc > 2 ? argv[2] : NULL);
    tokenize_seeds();
    return failures ? 1 : 0;
}
