/* PNG and JPEG reading and writing, the PIL-exact resize and the save_image rounding. Every
 * input file is made here with libpng / libjpeg; the expected resize bytes were produced by
 * Pillow 9.4 (Image.crop(...).resize((S, S), Image.ANTIALIAS)) and pasted below, so no test
 * needs Python. */
#include <stdio.h>   /* before jpeglib.h */

#include <dirent.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "harness.h"
#include "io/file.h"
#include "io/image.h"

/* ---- fixtures built by the test ------------------------------------------------------- */

typedef struct mem_buf {
    uint8_t *data;
    size_t size, cap;
} mem_buf;

static void mem_append(mem_buf *b, const void *p, size_t n)
{
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void png_mem_write(png_structp png, png_bytep p, size_t n)
{
    mem_append(png_get_io_ptr(png), p, n);
}

static void png_mem_flush(png_structp png) { (void)png; }

/* A 16-bit sample with structure in every bit. */
static unsigned sample16(int x, int y, int c)
{
    return (unsigned)(x * 9173 + y * 4099 + c * 20011 + x * y * 31) & 0xffff;
}

static void palette_colour(int i, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(i * 37);
    rgb[1] = (uint8_t)(255 - i * 11);
    rgb[2] = (uint8_t)(i * i);
}

typedef struct png_spec {
    int color_type, bit_depth, interlaced, with_trns;
} png_spec;

/* Writes a w x h PNG of `spec` with libpng and fills `expected` with the 8-bit RGB that PIL's
 * convert("RGB") gives for it (for 16-bit gray, where PIL saturates, the high byte). */
static int make_png(const png_spec *spec, int w, int h, mem_buf *out, uint8_t *expected)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int depth = spec->bit_depth, type = spec->color_type;
    int channels = type == PNG_COLOR_TYPE_GRAY ? 1 : type == PNG_COLOR_TYPE_GA ? 2
                   : type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGBA ? 4 : 1;
    size_t stride = ((size_t)w * channels * depth + 7) / 8;
    uint8_t *pixels = calloc(stride, (size_t)h);
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(pixels);
        free(rows);
        return 0;
    }
    for (int y = 0; y < h; y++) {
        rows[y] = pixels + (size_t)y * stride;
        for (int x = 0; x < w; x++) {
            uint8_t *rgb = expected + ((size_t)y * w + x) * 3;
            for (int c = 0; c < channels; c++) {
                unsigned v = sample16(x, y, c);
                size_t bit = ((size_t)x * channels + c) * depth;
                if (depth == 16) {
                    rows[y][bit / 8] = (uint8_t)(v >> 8);
                    rows[y][bit / 8 + 1] = (uint8_t)v;
                } else {
                    unsigned stored = v >> (16 - depth);
                    rows[y][bit / 8] |= (uint8_t)(stored << (8 - depth - bit % 8));
                    v = stored << (16 - depth);
                }
                /* What the reader must produce from this sample. */
                unsigned top = v >> (16 - depth);
                unsigned eight = depth >= 8 ? v >> 8 : top * 255 / ((1u << depth) - 1);
                if (type == PNG_COLOR_TYPE_PALETTE) {
                    palette_colour((int)top, rgb);
                } else if (!(type & PNG_COLOR_MASK_COLOR)) {
                    if (c == 0)
                        rgb[0] = rgb[1] = rgb[2] = (uint8_t)eight;
                } else if (c < 3) {
                    rgb[c] = (uint8_t)eight;
                }
            }
        }
    }
    png_set_write_fn(png, out, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 spec->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[256];
        png_byte alpha[256];
        for (int i = 0; i < 1 << depth; i++) {
            uint8_t rgb[3];
            palette_colour(i, rgb);
            palette[i] = (png_color){rgb[0], rgb[1], rgb[2]};
            alpha[i] = (png_byte)(i * 3);
        }
        png_set_PLTE(png, info, palette, 1 << depth);
        if (spec->with_trns)
            png_set_tRNS(png, info, alpha, 1 << depth, NULL);
    } else if (spec->with_trns) {
        png_color_16 key = {0, (png_uint_16)(sample16(1, 1, 0) >> (16 - depth)),
                            (png_uint_16)(sample16(1, 1, 1) >> (16 - depth)),
                            (png_uint_16)(sample16(1, 1, 2) >> (16 - depth)),
                            (png_uint_16)(sample16(1, 1, 0) >> (16 - depth))};
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(pixels);
    free(rows);
    return 1;
}

typedef struct jpeg_spec {
    int components;            /* 1, 3 or 4 */
    J_COLOR_SPACE colour;      /* of the input samples */
    int quality, progressive;
} jpeg_spec;

/* A smooth image, so that JPEG's loss stays small. */
static uint8_t smooth(int x, int y, int c)
{
    return (uint8_t)(c == 0 ? x * 6 + 20 : c == 1 ? y * 7 + 10 : 200 - x * 2 - y * 3);
}

static void make_jpeg(const jpeg_spec *spec, int w, int h, mem_buf *out)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char *buf = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buf, &size);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = spec->components;
    cinfo.in_color_space = spec->colour;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, spec->quality, TRUE);
    if (spec->progressive)
        jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    uint8_t *row = malloc((size_t)w * spec->components);
    while (cinfo.next_scanline < cinfo.image_height) {
        int y = (int)cinfo.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < spec->components; c++)
                row[x * spec->components + c] = smooth(x, y, c);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    mem_append(out, buf, size);
    free(buf);
}

/* A PNG with IHDR, an empty IDAT and IEND, for dimension checks. */
static void make_png_header_only(uint32_t w, uint32_t h, mem_buf *out)
{
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16),
                        (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 24), (uint8_t)(h >> 16),
                        (uint8_t)(h >> 8), (uint8_t)h, 8, 2, 0, 0, 0};
    uint32_t crc = (uint32_t)crc32(0, ihdr + 4, 17);
    ihdr[21] = (uint8_t)(crc >> 24);
    ihdr[22] = (uint8_t)(crc >> 16);
    ihdr[23] = (uint8_t)(crc >> 8);
    ihdr[24] = (uint8_t)crc;
    static const uint8_t idat[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e};
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    mem_append(out, signature, sizeof signature);
    mem_append(out, ihdr, sizeof ihdr);
    mem_append(out, idat, sizeof idat);
    mem_append(out, iend, sizeof iend);
}

static int write_file(const char *path, const mem_buf *b)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(b->data, 1, b->size, f) == b->size;
    return fclose(f) == 0 && ok;
}

/* ---- decoding ------------------------------------------------------------------------- */

TEST(png_every_colour_type_becomes_rgb_as_pil_does)
{
    static const png_spec specs[] = {
        {PNG_COLOR_TYPE_GRAY, 1, 0, 0},    {PNG_COLOR_TYPE_GRAY, 2, 0, 0},
        {PNG_COLOR_TYPE_GRAY, 4, 1, 0},    {PNG_COLOR_TYPE_GRAY, 8, 0, 1},
        {PNG_COLOR_TYPE_GRAY, 16, 0, 0},   {PNG_COLOR_TYPE_GA, 8, 0, 0},
        {PNG_COLOR_TYPE_GA, 16, 1, 0},     {PNG_COLOR_TYPE_RGB, 8, 0, 0},
        {PNG_COLOR_TYPE_RGB, 8, 1, 1},     {PNG_COLOR_TYPE_RGB, 16, 0, 1},
        {PNG_COLOR_TYPE_RGBA, 8, 0, 0},    {PNG_COLOR_TYPE_RGBA, 16, 1, 0},
        {PNG_COLOR_TYPE_PALETTE, 1, 0, 0}, {PNG_COLOR_TYPE_PALETTE, 4, 0, 1},
        {PNG_COLOR_TYPE_PALETTE, 8, 1, 1},
    };
    enum { W = 23, H = 11 };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        static uint8_t expected[W * H * 3];
        mem_buf png = {0};
        CHECK(make_png(&specs[i], W, H, &png, expected));
        dc_image img;
        int status = io_image_read_buffer(png.data, png.size, "t.png", &img);
        free(png.data);
        CHECKF(status == DC_OK, "colour type %d depth %d: %s", specs[i].color_type,
               specs[i].bit_depth, dc_last_error());
        int same = img.width == W && img.height == H && img.channels == 3 &&
                   memcmp(img.data, expected, sizeof expected) == 0;
        dc_image_free(&img);
        CHECKF(same, "colour type %d depth %d interlaced %d: pixels differ", specs[i].color_type,
               specs[i].bit_depth, specs[i].interlaced);
    }
}

TEST(jpeg_gray_and_rgb_decode_close_to_the_source)
{
    static const jpeg_spec specs[] = {
        {1, JCS_GRAYSCALE, 100, 0}, {3, JCS_RGB, 100, 0}, {3, JCS_RGB, 100, 1},
    };
    enum { W = 33, H = 17 };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        mem_buf jpg = {0};
        make_jpeg(&specs[i], W, H, &jpg);
        dc_image img;
        int status = io_image_read_buffer(jpg.data, jpg.size, "t.jpg", &img);
        free(jpg.data);
        CHECKF(status == DC_OK, "%s", dc_last_error());
        CHECK(img.width == W && img.height == H && img.channels == 3);
        int worst = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    int want = smooth(x, y, specs[i].components == 1 ? 0 : c);
                    int d = abs(img.data[(y * W + x) * 3 + c] - want);
                    worst = d > worst ? d : worst;
                }
        dc_image_free(&img);
        /* Quality 100 with 4:2:0 chroma: a few levels on a smooth image. */
        CHECKF(worst <= 6, "spec %zu: max error %d", i, worst);
    }
}

TEST(cmyk_jpeg_is_refused_with_a_message)
{
    jpeg_spec spec = {4, JCS_CMYK, 90, 0};
    mem_buf jpg = {0};
    make_jpeg(&spec, 8, 8, &jpg);
    dc_image img;
    CHECK_STATUS(io_image_read_buffer(jpg.data, jpg.size, "cmyk.jpg", &img), DC_EFORMAT);
    free(jpg.data);
    CHECK(strstr(dc_last_error(), "cmyk.jpg") && strstr(dc_last_error(), "CMYK"));
    CHECK(img.data == NULL);
}

TEST(format_is_sniffed_from_content_not_name)
{
    png_spec spec = {PNG_COLOR_TYPE_RGB, 8, 0, 0};
    static uint8_t expected[4 * 3 * 3];
    mem_buf png = {0};
    CHECK(make_png(&spec, 4, 3, &png, expected));
    char path[512];
    path_join(path, sizeof path, test_tmpdir(), "really_a_png.jpg");
    CHECK(write_file(path, &png));
    free(png.data);
    dc_image img;
    CHECK_OK(dc_image_read(path, &img));
    CHECK(img.width == 4 && img.height == 3 && memcmp(img.data, expected, sizeof expected) == 0);
    dc_image_free(&img);

    mem_buf text = {0};
    mem_append(&text, "GIF89a not supported", 20);
    path_join(path, sizeof path, test_tmpdir(), "text.png");
    CHECK(write_file(path, &text));
    free(text.data);
    CHECK_STATUS(dc_image_read(path, &img), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "text.png") && strstr(dc_last_error(), "not a PNG or JPEG"));
    path_join(path, sizeof path, test_tmpdir(), "missing.png");
    CHECK_STATUS(dc_image_read(path, &img), DC_EIO);
    CHECK(strstr(dc_last_error(), "missing.png"));
    CHECK_STATUS(dc_image_read(NULL, &img), DC_EINVAL);
    CHECK_STATUS(dc_image_read(path, NULL), DC_EINVAL);
    dc_image_free(NULL);
}

TEST(huge_declared_dimensions_are_refused_before_allocating)
{
    static const uint32_t sizes[][2] = {{20000, 1}, {1, 16385}, {0x7fffffff, 0x7fffffff}};
    for (size_t i = 0; i < 3; i++) {
        mem_buf png = {0};
        make_png_header_only(sizes[i][0], sizes[i][1], &png);
        dc_image img;
        int status = io_image_read_buffer(png.data, png.size, "huge.png", &img);
        free(png.data);
        CHECKF(status == DC_ENOMEM && strstr(dc_last_error(), "over the limit"), "%u x %u: %s",
               sizes[i][0], sizes[i][1], dc_last_error());
    }
    mem_buf png = {0};
    make_png_header_only(0, 5, &png);
    dc_image img;
    CHECK_STATUS(io_image_read_buffer(png.data, png.size, "zero.png", &img), DC_EFORMAT);
    free(png.data);

    /* A JPEG whose frame header claims 20000 x 20000. */
    jpeg_spec spec = {3, JCS_RGB, 90, 0};
    mem_buf jpg = {0};
    make_jpeg(&spec, 8, 8, &jpg);
    size_t sof = 2;
    while (sof + 9 < jpg.size && !(jpg.data[sof] == 0xff && jpg.data[sof + 1] == 0xc0))
        sof++;
    CHECK(sof + 9 < jpg.size);
    jpg.data[sof + 5] = jpg.data[sof + 7] = 20000 >> 8;
    jpg.data[sof + 6] = jpg.data[sof + 8] = 20000 & 0xff;
    CHECK_STATUS(io_image_read_buffer(jpg.data, jpg.size, "huge.jpg", &img), DC_ENOMEM);
    free(jpg.data);
    CHECK(strstr(dc_last_error(), "huge.jpg") && strstr(dc_last_error(), "20000 x 20000"));
}

/* Every prefix fails with a message; every bit flip fails with one or decodes to a sane
 * image. Under a sanitizer this also shows nothing is read out of bounds. */
static void check_hostile_variants(const mem_buf *valid, const char *label, int flip_stride)
{
    dc_image img;
    for (size_t len = 0; len < valid->size; len++) {
        dci_err_clear();
        int status = io_image_read_buffer(valid->data, len, label, &img);
        CHECKF(status != DC_OK && img.data == NULL && strstr(dc_last_error(), label),
               "%s cut to %zu of %zu bytes -> %d", label, len, valid->size, status);
    }
    uint8_t *copy = malloc(valid->size);
    CHECK(copy);
    for (size_t bit = 0; bit < valid->size * 8; bit += (size_t)flip_stride) {
        memcpy(copy, valid->data, valid->size);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        dci_err_clear();
        int status = io_image_read_buffer(copy, valid->size, label, &img);
        if (status == DC_OK) {
            int sane = img.width > 0 && img.height > 0 && img.width <= 65535 && img.data;
            dc_image_free(&img);
            CHECKF(sane, "%s bit %zu: decoded to %d x %d", label, bit, img.width, img.height);
        } else {
            CHECKF(img.data == NULL && strstr(dc_last_error(), label), "%s bit %zu", label, bit);
        }
    }
    free(copy);
}

TEST(hostile_png_corpus)
{
    static const png_spec specs[] = {
        {PNG_COLOR_TYPE_RGB, 8, 0, 0}, {PNG_COLOR_TYPE_PALETTE, 4, 1, 1},
        {PNG_COLOR_TYPE_GA, 16, 0, 0},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        static uint8_t expected[9 * 7 * 3];
        mem_buf png = {0};
        CHECK(make_png(&specs[i], 9, 7, &png, expected));
        check_hostile_variants(&png, "hostile.png", 1);
        free(png.data);
        if (test_failed())
            return;
    }
}

TEST(hostile_jpeg_corpus)
{
    static const jpeg_spec specs[] = {
        {3, JCS_RGB, 75, 0}, {1, JCS_GRAYSCALE, 50, 0}, {3, JCS_RGB, 60, 1},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        mem_buf jpg = {0};
        make_jpeg(&specs[i], 19, 9, &jpg);
        check_hostile_variants(&jpg, "hostile.jpg", 1);
        free(jpg.data);
        if (test_failed())
            return;
    }
}

TEST(random_bytes_behind_valid_signatures)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t jpeg_soi[3] = {0xff, 0xd8, 0xff};
    uint8_t buf[400];
    uint32_t seed = 99;
    for (int round = 0; round < 2000; round++) {
        size_t len = 8 + (size_t)round % (sizeof buf - 8);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1664525u + 1013904223u;
            buf[i] = (uint8_t)(seed >> 24);
        }
        if (round % 2)
            memcpy(buf, png_sig, sizeof png_sig);
        else
            memcpy(buf, jpeg_soi, sizeof jpeg_soi);
        dc_image img;
        dci_err_clear();
        if (io_image_read_buffer(buf, len, "random", &img) == DC_OK)
            dc_image_free(&img);
        else
            CHECK(strstr(dc_last_error(), "random"));
    }
}

/* ---- encoding ------------------------------------------------------------------------- */

static int count_hidden_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

TEST(png_write_round_trips_exactly)
{
    enum { W = 31, H = 9 };
    static uint8_t pixels[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        pixels[i] = (uint8_t)(i * 7 + i / 3);
    dc_image img = {W, H, 3, pixels};
    const char *names[] = {"out.png", "OUT.PNG"};
    for (int i = 0; i < 2; i++) {
        char path[512];
        path_join(path, sizeof path, test_tmpdir(), names[i]);
        CHECK_OK(dc_image_write(path, &img));
        dc_image back;
        CHECK_OK(dc_image_read(path, &back));
        int same = back.width == W && back.height == H && memcmp(back.data, pixels, sizeof pixels) == 0;
        dc_image_free(&back);
        CHECK(same);
    }
    CHECK(count_hidden_files(test_tmpdir()) == 0);   /* no temporary file left behind */
}

TEST(jpeg_write_round_trips_closely)
{
    enum { W = 40, H = 24 };
    static uint8_t pixels[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                pixels[(y * W + x) * 3 + c] = smooth(x, y, c);
    dc_image img = {W, H, 3, pixels};
    const char *names[] = {"out.jpg", "out.JPEG", "out.Jpg"};
    for (int i = 0; i < 3; i++) {
        char path[512];
        path_join(path, sizeof path, test_tmpdir(), names[i]);
        CHECK_OK(dc_image_write(path, &img));
        io_mapped_file f;
        CHECK_OK(io_map_file(path, &f));
        int is_jpeg = f.size > 3 && f.data[0] == 0xff && f.data[1] == 0xd8;
        io_unmap_file(&f);
        CHECK(is_jpeg);
        dc_image back;
        CHECK_OK(dc_image_read(path, &back));
        int worst = 0;
        for (size_t k = 0; k < sizeof pixels; k++) {
            int d = abs(back.data[k] - pixels[k]);
            worst = d > worst ? d : worst;
        }
        dc_image_free(&back);
        CHECKF(worst <= 8, "max error %d at quality 95", worst);
    }
}

TEST(write_refuses_bad_arguments)
{
    static uint8_t pixels[12];
    dc_image img = {2, 2, 3, pixels};
    char path[512];
    const char *bad_names[] = {"out.bmp", "out", "dir.png/out", "out.png.tmp"};
    for (int i = 0; i < 4; i++) {
        path_join(path, sizeof path, test_tmpdir(), bad_names[i]);
        CHECK_STATUS(dc_image_write(path, &img), DC_EINVAL);
        CHECK(strstr(dc_last_error(), bad_names[i]));
    }
    path_join(path, sizeof path, test_tmpdir(), "bad.png");
    dc_image gray = {2, 2, 1, pixels};
    CHECK_STATUS(dc_image_write(path, &gray), DC_EINVAL);
    dc_image empty = {0, 2, 3, pixels};
    CHECK_STATUS(dc_image_write(path, &empty), DC_EINVAL);
    dc_image no_data = {2, 2, 3, NULL};
    CHECK_STATUS(dc_image_write(path, &no_data), DC_EINVAL);
    CHECK_STATUS(dc_image_write(NULL, &img), DC_EINVAL);
    CHECK_STATUS(dc_image_write(path, NULL), DC_EINVAL);
    path_join(path, sizeof path, test_tmpdir(), "no/such/dir/x.png");
    CHECK_STATUS(dc_image_write(path, &img), DC_EIO);
    CHECK(count_hidden_files(test_tmpdir()) == 0);
}

/* ---- image -> tensor: Pillow's LANCZOS, bit for bit ----------------------------------- */

/* The pattern fed to Pillow: ((x * 2654435761 mod 2^32) ^ (y * 40503) ^ (c * 97)) >> 3 & 255,
 * noise that makes the filter ring and clip. */
static dc_image hashed_image(int w, int h)
{
    dc_image img = {w, h, 3, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img.data[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)((((uint32_t)x * 2654435761u) ^ ((uint32_t)y * 40503u) ^
                               ((uint32_t)c * 97u)) >> 3 & 255);
    return img;
}

static float byte_to_unit(uint8_t v) { return ((float)(v / 255.0) - 0.5f) * 2.0f; }

/* Pillow 9.4 output bytes (RGB interleaved) for hashed_image(w, h) centre-cropped and resized. */
static const uint8_t PIL_37x29_TO_16[768] = {
    111, 105, 107, 131, 131, 137, 146, 150, 140, 127, 129, 122, 112, 110, 107, 141,
    138, 125, 145, 146, 159, 112, 109, 109, 110, 109, 120, 157, 160, 147, 120, 122,
    119, 120, 119, 114, 152, 148, 137, 136, 138, 147, 126, 130, 131, 95, 96, 112,
    104, 106, 106, 147, 149, 148, 135, 132, 133, 128, 132, 127, 112, 108, 112, 118,
    122, 115, 169, 165, 171, 99, 97, 99, 121, 125, 123, 174, 169, 171, 104, 108,
    103, 130, 126, 129, 145, 150, 144, 135, 132, 137, 140, 141, 140, 79, 85, 81,
    122, 122, 121, 76, 75, 73, 167, 169, 173, 104, 102, 108, 119, 121, 120, 181,
    179, 187, 101, 103, 94, 151, 152, 150, 108, 106, 102, 96, 98, 103, 167, 164,
    168, 75, 77, 78, 118, 116, 125, 166, 168, 162, 91, 90, 90, 166, 163, 158,
    142, 142, 144, 197, 195, 202, 66, 69, 58, 164, 160, 159, 141, 146, 139, 58,
    53, 48, 150, 155, 160, 100, 103, 101, 160, 157, 169, 157, 161, 147, 82, 77,
    78, 199, 204, 196, 138, 134, 129, 66, 70, 74, 178, 177, 179, 90, 85, 102,
    157, 153, 151, 62, 62, 55, 146, 148, 160, 103, 105, 112, 147, 144, 147, 174,
    173, 187, 57, 57, 44, 189, 185, 185, 121, 121, 108, 40, 41, 56, 185, 187,
    191, 88, 85, 91, 91, 89, 101, 150, 151, 141, 81, 83, 82, 220, 221, 203,
    121, 122, 122, 206, 207, 207, 70, 67, 68, 157, 161, 156, 136, 132, 136, 47,
    52, 45, 195, 190, 196, 74, 73, 74, 167, 170, 168, 200, 195, 198, 57, 60,
    55, 198, 194, 197, 138, 142, 137, 81, 78, 82, 189, 190, 189, 46, 52, 48,
    103, 103, 104, 132, 131, 133, 148, 150, 146, 124, 122, 122, 105, 108, 104, 140,
    137, 136, 155, 158, 158, 106, 107, 106, 114, 111, 117, 161, 164, 157, 121, 117,
    119, 111, 114, 110, 148, 146, 146, 145, 147, 147, 127, 127, 128, 96, 93, 100,
    124, 122, 122, 85, 83, 81, 159, 162, 165, 108, 105, 113, 120, 124, 121, 172,
    167, 180, 105, 110, 98, 147, 148, 146, 114, 110, 107, 99, 103, 107, 161, 157,
    163, 82, 86, 85, 119, 115, 126, 160, 163, 154, 97, 97, 97, 161, 156, 152,
    144, 141, 143, 191, 191, 198, 71, 72, 61, 161, 164, 154, 146, 143, 142, 61,
    62, 44, 147, 146, 163, 106, 102, 104, 155, 155, 167, 158, 158, 145, 81, 85,
    78, 201, 198, 194, 137, 137, 121, 68, 68, 80, 173, 176, 177, 87, 90, 105,
    153, 154, 153, 60, 61, 57, 152, 149, 155, 106, 109, 109, 148, 145, 150, 176,
    180, 182, 55, 52, 50, 186, 185, 186, 116, 119, 111, 47, 43, 52, 184, 187,
    185, 90, 87, 93, 92, 96, 98, 149, 146, 145, 83, 83, 82, 212, 217, 206,
    120, 120, 120, 211, 210, 212, 67, 69, 66, 161, 158, 161, 130, 134, 131, 49,
    45, 48, 196, 199, 195, 68, 70, 68, 170, 167, 171, 200, 204, 200, 57, 53,
    56, 196, 199, 195, 144, 141, 143, 79, 81, 79, 193, 192, 192, 48, 43, 48,
    107, 105, 106, 125, 124, 127, 150, 153, 147, 123, 120, 121, 107, 111, 106, 146,
    141, 140, 146, 150, 151, 112, 113, 111, 113, 109, 117, 152, 157, 148, 127, 123,
    126, 108, 111, 106, 146, 142, 142, 145, 148, 149, 123, 123, 124, 103, 99, 109,
    113, 110, 107, 88, 89, 80, 167, 168, 181, 100, 104, 110, 112, 109, 114, 170,
    171, 184, 128, 126, 114, 138, 135, 135, 108, 110, 95, 115, 114, 132, 150, 155,
    156, 77, 73, 82, 123, 124, 135, 174, 173, 164, 97, 99, 97, 145, 149, 127,
    132, 133, 134, 184, 185, 189, 85, 83, 78, 153, 155, 148, 135, 133, 134, 70,
    73, 62, 158, 156, 166, 101, 100, 102, 148, 150, 156, 165, 162, 157, 84, 87,
    82, 184, 182, 181, 138, 141, 131, 86, 84, 91, 168, 168, 168, 84, 86, 94,
    156, 155, 156, 69, 68, 68, 142, 145, 145, 112, 109, 115, 145, 150, 146, 172,
    168, 176, 54, 57, 50, 182, 184, 182, 122, 119, 118, 48, 52, 51, 183, 179,
    184, 95, 99, 97, 97, 94, 101, 139, 142, 136, 88, 87, 88, 213, 208, 208,
    120, 118, 118, 196, 194, 195, 73, 77, 75, 155, 153, 156, 133, 136, 133, 61,
    57, 62, 189, 193, 188, 74, 74, 73, 170, 167, 169, 193, 197, 195, 65, 62,
    66, 184, 187, 184, 138, 134, 138, 88, 90, 87, 184, 184, 185, 54, 50, 53,
};
static const uint8_t PIL_13x13_TO_20[1200] = {
    0, 0, 3, 0, 7, 6, 44, 44, 33, 91, 77, 91, 125, 122, 147, 176,
    188, 197, 251, 255, 236, 152, 142, 132, 0, 0, 1, 19, 18, 48, 92, 93,
    101, 117, 114, 94, 146, 153, 123, 220, 232, 225, 255, 255, 255, 107, 97, 105,
    0, 0, 0, 59, 71, 47, 127, 132, 129, 145, 139, 154, 85, 93, 111, 110,
    122, 121, 138, 145, 130, 128, 118, 126, 131, 129, 152, 146, 156, 169, 141, 139,
    126, 122, 106, 98, 97, 87, 104, 79, 85, 108, 98, 102, 108, 138, 130, 114,
    161, 162, 139, 159, 174, 168, 144, 155, 166, 126, 120, 122, 108, 101, 88, 98,
    107, 88, 113, 114, 117, 125, 114, 133, 205, 206, 232, 234, 240, 240, 254, 255,
    241, 209, 209, 211, 145, 144, 170, 74, 74, 94, 4, 0, 0, 87, 76, 68,
    212, 212, 225, 172, 183, 200, 158, 163, 168, 205, 195, 183, 161, 155, 137, 56,
    63, 59, 14, 24, 37, 143, 146, 141, 248, 247, 220, 189, 191, 174, 96, 91,
    100, 54, 42, 64, 163, 151, 180, 181, 171, 172, 228, 227, 203, 255, 255, 255,
    153, 156, 185, 22, 11, 32, 31, 27, 18, 99, 108, 99, 158, 170, 186, 192,
    191, 213, 247, 245, 251, 255, 255, 253, 126, 120, 98, 24, 12, 9, 68, 63,
    78, 126, 136, 132, 210, 217, 187, 253, 243, 223, 98, 92, 101, 0, 0, 0,
    112, 105, 115, 127, 124, 126, 152, 156, 147, 158, 165, 160, 145, 146, 151, 125,
    119, 128, 113, 108, 111, 109, 110, 109, 111, 118, 117, 116, 121, 119, 142, 143,
    143, 166, 163, 164, 143, 136, 137, 127, 123, 122, 139, 140, 140, 120, 128, 121,
    115, 119, 113, 142, 134, 131, 114, 108, 114, 101, 94, 93, 73, 77, 59, 90,
    99, 99, 80, 91, 104, 36, 34, 20, 139, 138, 110, 255, 255, 252, 190, 183,
    202, 112, 99, 110, 80, 77, 54, 30, 41, 10, 0, 1, 0, 34, 23, 44,
    172, 167, 198, 252, 255, 255, 198, 211, 191, 121, 121, 115, 28, 24, 46, 0,
    0, 11, 128, 123, 125, 251, 238, 220, 13, 12, 0, 19, 13, 12, 36, 29,
    53, 69, 70, 63, 151, 152, 119, 231, 229, 208, 237, 242, 255, 124, 132, 144,
    8, 11, 0, 32, 25, 0, 62, 58, 51, 66, 72, 91, 139, 143, 172, 252,
    246, 251, 255, 255, 252, 106, 105, 107, 0, 0, 0, 9, 5, 29, 128, 130,
    123, 192, 202, 174, 96, 99, 88, 96, 94, 93, 107, 99, 108, 127, 123, 127,
    135, 135, 129, 138, 141, 132, 152, 159, 156, 128, 134, 135, 95, 92, 93, 114,
    104, 105, 128, 124, 125, 120, 127, 127, 123, 130, 130, 150, 148, 147, 166, 161,
    160, 124, 119, 126, 90, 90, 96, 108, 109, 110, 124, 130, 123, 128, 136, 127,
    228, 241, 255, 227, 238, 237, 208, 210, 199, 163, 152, 164, 106, 104, 130, 54,
    67, 77, 30, 33, 16, 128, 117, 107, 241, 229, 250, 203, 203, 232, 156, 158,
    166, 155, 151, 131, 123, 129, 98, 36, 49, 42, 0, 0, 18, 153, 144, 151,
    255, 255, 247, 202, 213, 189, 124, 129, 128, 100, 93, 110, 208, 209, 233, 197,
    193, 192, 202, 195, 178, 225, 223, 238, 112, 112, 147, 0, 0, 1, 33, 39,
    18, 139, 145, 132, 210, 209, 237, 238, 230, 255, 255, 252, 255, 226, 234, 208,
    89, 94, 56, 0, 0, 0, 20, 10, 35, 142, 139, 146, 255, 255, 240, 255,
    255, 255, 125, 129, 129, 4, 11, 32, 149, 148, 151, 136, 130, 129, 132, 122,
    123, 154, 153, 162, 114, 115, 124, 70, 70, 69, 111, 119, 109, 143, 153, 149,
    149, 150, 160, 176, 165, 179, 186, 181, 185, 155, 165, 155, 95, 101, 86, 71,
    66, 66, 104, 94, 103, 131, 127, 134, 169, 170, 162, 186, 187, 181, 135, 140,
    136, 75, 89, 95, 117, 129, 105, 105, 115, 115, 60, 61, 81, 17, 5, 4,
    102, 100, 77, 214, 226, 208, 189, 193, 198, 148, 138, 146, 127, 116, 103, 84,
    84, 68, 21, 23, 18, 10, 6, 18, 130, 136, 153, 203, 216, 219, 154, 160,
    147, 133, 123, 129, 84, 76, 99, 26, 36, 52, 151, 157, 149, 251, 252, 240,
    52, 62, 40, 23, 37, 38, 0, 2, 18, 21, 13, 3, 107, 105, 77, 207,
    218, 204, 255, 255, 255, 176, 157, 168, 53, 43, 23, 56, 66, 40, 51, 57,
    49, 27, 15, 33, 114, 113, 141, 216, 233, 239, 223, 239, 218, 116, 112, 109,
    10, 2, 28, 26, 36, 58, 162, 162, 160, 250, 236, 221, 109, 106, 90, 69,
    71, 72, 43, 50, 61, 99, 104, 89, 119, 119, 92, 127, 125, 116, 192, 185,
    205, 166, 161, 172, 96, 98, 76, 131, 138, 108, 144, 147, 138, 102, 95, 116,
    89, 82, 114, 129, 130, 138, 170, 178, 158, 117, 123, 115, 77, 78, 96, 123,
    121, 147, 157, 151, 154, 165, 156, 139, 246, 235, 218, 225, 213, 214, 182, 181,
    192, 152, 164, 150, 128, 130, 103, 89, 76, 66, 37, 34, 53, 113, 124, 135,
    236, 245, 225, 219, 218, 189, 163, 161, 152, 133, 137, 157, 101, 95, 126, 50,
    36, 44, 30, 24, 10, 141, 151, 144, 227, 235, 245, 187, 176, 201, 135, 129,
    131, 116, 122, 105, 241, 238, 247, 255, 255, 255, 244, 251, 243, 170, 175, 170,
    136, 136, 139, 97, 95, 102, 0, 0, 0, 88, 84, 84, 248, 250, 248, 189,
    197, 193, 131, 134, 133, 159, 153, 155, 148, 141, 145, 60, 61, 63, 0, 5,
    6, 147, 153, 146, 255, 255, 248, 174, 171, 173, 110, 104, 110, 96, 91, 99,
    171, 174, 203, 204, 211, 212, 240, 248, 223, 211, 210, 215, 146, 145, 177, 72,
    76, 97, 26, 21, 8, 93, 83, 71, 184, 181, 201, 157, 165, 191, 166, 169,
    177, 215, 207, 189, 159, 156, 128, 65, 73, 67, 43, 53, 70, 137, 138, 136,
    222, 218, 189, 189, 193, 169, 94, 92, 99, 43, 29, 55, 143, 140, 161, 162,
    154, 153, 217, 207, 192, 255, 255, 255, 155, 156, 186, 22, 18, 30, 44, 50,
    30, 103, 115, 103, 144, 147, 171, 186, 177, 209, 249, 244, 253, 255, 255, 246,
    121, 126, 91, 34, 24, 17, 87, 77, 98, 128, 128, 134, 193, 197, 172, 243,
    239, 213, 95, 98, 98, 0, 0, 0, 99, 104, 95, 114, 114, 113, 135, 128,
    137, 137, 131, 133, 146, 146, 141, 149, 153, 146, 130, 137, 133, 110, 112, 113,
    104, 99, 100, 105, 98, 100, 114, 113, 113, 128, 133, 132, 141, 148, 146, 157,
    157, 154, 159, 154, 156, 126, 120, 127, 95, 93, 99, 103, 100, 99, 113, 118,
    111, 134, 132, 120, 75, 89, 61, 94, 107, 106, 84, 86, 109, 28, 15, 12,
    137, 135, 106, 255, 255, 255, 187, 190, 199, 111, 97, 107, 89, 75, 59, 30,
    32, 10, 0, 0, 0, 14, 8, 23, 173, 179, 202, 255, 255, 255, 196, 204,
    189, 129, 118, 122, 32, 22, 50, 0, 0, 0, 124, 129, 121, 255, 255, 235,
};

static void check_against_pil(int w, int h, int size, const uint8_t *expected)
{
    dc_image img = hashed_image(w, h);
    dc_tensor t;
    int status = dc_image_to_tensor(&img, size, &t);
    dc_image_free(&img);
    CHECK_OK(status);
    CHECK(t.dtype == DC_FLOAT32 && t.ndim == 4 && t.shape[0] == 1 && t.shape[1] == 3 &&
          t.shape[2] == size && t.shape[3] == size);
    const float *v = t.data;
    int mismatches = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < size * size; i++)
            mismatches += v[c * size * size + i] != byte_to_unit(expected[i * 3 + c]);
    dc_tensor_free(&t);
    CHECKF(mismatches == 0, "%dx%d -> %d: %d values differ from Pillow", w, h, size, mismatches);
}

TEST(resize_matches_pillow_when_shrinking_a_non_square_image)
{
    check_against_pil(37, 29, 16, PIL_37x29_TO_16);   /* crop x = round(8 / 2) = 4 */
}

TEST(resize_matches_pillow_when_enlarging)
{
    check_against_pil(13, 13, 20, PIL_13x13_TO_20);
}

TEST(unit_values_match_numpy_float32)
{
    /* ((np.array([0, 1, 127, 128, 254, 255]) / 255).astype(np.float32) - 0.5) * 2 */
    static const uint8_t bytes[6] = {0, 1, 127, 128, 254, 255};
    static const uint32_t bits[6] = {0xbf800000u, 0xbf7dfdfeu, 0xbb808080u,
                                     0x3b808100u, 0x3f7dfdfeu, 0x3f800000u};
    uint8_t pixels[18];
    for (int i = 0; i < 18; i++)
        pixels[i] = bytes[i / 3];
    dc_image img = {6, 1, 3, pixels};
    /* A 6 x 1 image crops to its 1 x 1 centre: x = round(5 / 2) = 2 (half to even). */
    for (int i = 0; i < 6; i++) {
        dc_image one = {1, 1, 3, pixels + i * 3};
        dc_tensor t;
        CHECK_OK(dc_image_to_tensor(&one, 1, &t));
        uint32_t got;
        memcpy(&got, t.data, 4);
        dc_tensor_free(&t);
        CHECKF(got == bits[i], "byte %d -> 0x%08x, numpy 0x%08x", bytes[i], got, bits[i]);
    }
    dc_tensor t;
    CHECK_OK(dc_image_to_tensor(&img, 1, &t));
    CHECK(((float *)t.data)[0] == byte_to_unit(127));
    dc_tensor_free(&t);
}

TEST(centre_crop_rounds_half_to_even_like_torchvision)
{
    /* Width excess -> left offset: 1 -> 0, 2 -> 1, 3 -> 2, 4 -> 2, 5 -> 2, 7 -> 4. */
    static const int excess[] = {1, 2, 3, 4, 5, 7};
    static const int left[] = {0, 1, 2, 2, 2, 4};
    for (int k = 0; k < 6; k++) {
        int h = 2, w = h + excess[k];
        dc_image img = hashed_image(w, h);
        dc_image rotated = hashed_image(h, w);   /* the same along the other axis */
        dc_tensor t, u;
        CHECK_OK(dc_image_to_tensor(&img, h, &t));   /* same size: a plain crop */
        CHECK_OK(dc_image_to_tensor(&rotated, h, &u));
        const float *v = t.data, *r = u.data;
        int ok = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < h; x++) {
                    ok &= v[(c * h + y) * h + x] ==
                          byte_to_unit(img.data[((size_t)y * w + x + left[k]) * 3 + c]);
                    ok &= r[(c * h + y) * h + x] ==
                          byte_to_unit(rotated.data[((size_t)(y + left[k]) * h + x) * 3 + c]);
                }
        dc_image_free(&img);
        dc_image_free(&rotated);
        dc_tensor_free(&t);
        dc_tensor_free(&u);
        CHECKF(ok, "excess %d: crop is not at offset %d", excess[k], left[k]);
    }
}

TEST(image_to_tensor_refuses_bad_arguments)
{
    uint8_t pixels[16] = {0};
    dc_image img = {2, 2, 3, pixels};
    dc_tensor t;
    CHECK_STATUS(dc_image_to_tensor(&img, 0, &t), DC_EINVAL);
    CHECK_STATUS(dc_image_to_tensor(&img, 16385, &t), DC_EINVAL);
    CHECK_STATUS(dc_image_to_tensor(NULL, 4, &t), DC_EINVAL);
    CHECK_STATUS(dc_image_to_tensor(&img, 4, NULL), DC_EINVAL);
    dc_image rgba = {2, 2, 4, pixels};
    CHECK_STATUS(dc_image_to_tensor(&rgba, 4, &t), DC_EINVAL);
    CHECK(t.data == NULL);
}

/* ---- tensor -> image: torchvision's save_image ---------------------------------------- */

TEST(tensor_to_image_rounds_as_save_image)
{
    /* x, and torch's ((x + 1) * 0.5).mul(255).add_(0.5).clamp_(0, 255).to(uint8) for it:
     * the ends, out-of-range values, NaN and infinities, and the neighbours of k - 0.5. */
    static const uint32_t x_bits[] = {
        0xbf800000u, 0x3f800000u, 0x00000000u, 0xbfc00000u, 0x40000000u, 0x3e4ccccdu,
        0x3f333333u, 0xbe99999au, 0x7fc00000u, 0x7f800000u, 0xff800000u, 0xbf7eff00u,
        0xbf7efeffu, 0xbf7efefeu, 0xbf7cfcfeu, 0xbf7cfcfdu, 0xbf7cfcfcu, 0xbf008082u,
        0xbf008081u, 0xbf008080u, 0xbc008082u, 0xbc008081u, 0xbc008080u, 0x80000001u,
        0x00000000u, 0x00000001u, 0x3f109090u, 0x3f109091u, 0x3f109092u, 0x3f7cfcfcu,
        0x3f7cfcfdu, 0x3f7cfcfeu, 0x3f7efefeu, 0x3f7efeffu, 0x3f7eff00u,
    };
    static const uint8_t expected[] = {
        0,   255, 128, 0,   255, 153, 217, 89,  0,   255, 0,   0,   1,   1,   1,   1,   2, 63,
        63,  64,  127, 127, 127, 128, 128, 128, 200, 200, 200, 254, 254, 254, 255, 255, 255,
    };
    enum { N = sizeof expected };
    /* Two images of 3 x 1 x N; image 1 holds the cases in every channel, image 0 is -1. */
    static float data[2 * 3 * N];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < N; i++) {
            data[c * N + i] = -1.0f;
            memcpy(&data[(3 + c) * N + i], &x_bits[i], 4);
        }
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 1, N}, .data = data};
    dc_image img;
    CHECK_OK(dc_tensor_to_image(&t, 1, &img));
    CHECK(img.width == N && img.height == 1 && img.channels == 3);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            CHECKF(img.data[i * 3 + c] == expected[i], "case %d channel %d: %d, torch %d", i, c,
                   img.data[i * 3 + c], expected[i]);
    dc_image_free(&img);
    CHECK_OK(dc_tensor_to_image(&t, 0, &img));
    CHECK(img.data[0] == 0 && img.data[3 * N - 1] == 0);
    dc_image_free(&img);
}

TEST(tensor_to_image_refuses_bad_arguments)
{
    static float data[2 * 3 * 4];
    dc_tensor t = {.dtype = DC_FLOAT32, .ndim = 4, .shape = {2, 3, 2, 2}, .data = data};
    dc_image img;
    CHECK_STATUS(dc_tensor_to_image(&t, 2, &img), DC_EINVAL);
    CHECK_STATUS(dc_tensor_to_image(&t, -1, &img), DC_EINVAL);
    CHECK_STATUS(dc_tensor_to_image(NULL, 0, &img), DC_EINVAL);
    CHECK_STATUS(dc_tensor_to_image(&t, 0, NULL), DC_EINVAL);
    t.shape[1] = 1;
    CHECK_STATUS(dc_tensor_to_image(&t, 0, &img), DC_EINVAL);
    t.shape[1] = 3;
    t.dtype = DC_FLOAT64;
    CHECK_STATUS(dc_tensor_to_image(&t, 0, &img), DC_EINVAL);
    t.dtype = DC_FLOAT32;
    t.ndim = 3;
    CHECK_STATUS(dc_tensor_to_image(&t, 0, &img), DC_EINVAL);
    CHECK(img.data == NULL);
}
