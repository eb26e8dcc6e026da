/* PNG and JPEG decoding and encoding. Both libraries report errors through callbacks that must
 * not return; they longjmp back to the decoder, which frees what it allocated and returns a
 * status, so a corrupt file never ends the process. Library warnings are not printed. */
#include "image.h"

#include <stdio.h>   /* before jpeglib.h, which uses FILE */

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/error.h"
#include "file.h"
#include "limits.h"

/* A progressive JPEG may hold any number of scans, each costing a pass over the image; real
 * encoders write about ten. libjpeg-turbo's own fuzzers stop at 500. */
enum { JPEG_MAX_SCANS = 500 };

static int check_image_size(const char *label, uint64_t width, uint64_t height)
{
    if (width > IO_MAX_IMAGE_SIDE || height > IO_MAX_IMAGE_SIDE ||
        width * height > IO_MAX_IMAGE_PIXELS)
        return dci_err(DC_ENOMEM,
                       "%s: image of %llu x %llu pixels is over the limit (%d per side, %llu in "
                       "all)",
                       label, (unsigned long long)width, (unsigned long long)height,
                       IO_MAX_IMAGE_SIDE, (unsigned long long)IO_MAX_IMAGE_PIXELS);
    if (width == 0 || height == 0)
        return dci_err(DC_EFORMAT, "%s: image has no pixels", label);
    return DC_OK;
}

/* ---- PNG --------------------------------------------------------------------------------- */

typedef struct png_reader {
    const uint8_t *data;
    size_t size, pos;
    jmp_buf jump;
    char message[200];
} png_reader;

static void png_on_error(png_structp png, png_const_charp message)
{
    png_reader *reader = png_get_error_ptr(png);
    snprintf(reader->message, sizeof reader->message, "%s", message);
    longjmp(reader->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static void png_on_read(png_structp png, png_bytep out, size_t length)
{
    png_reader *reader = png_get_io_ptr(png);
    if (length > reader->size - reader->pos)
        png_error(png, "file is truncated");
    memcpy(out, reader->data + reader->pos, length);
    reader->pos += length;
}

/* The transforms reproduce PIL's Image.convert("RGB"): palette expanded (its transparency
 * ignored), gray depths below 8 scaled to 0..255, 16-bit samples reduced to their high byte,
 * alpha dropped without compositing, gray replicated, no gamma correction. One deliberate
 * difference: PIL opens 16-bit gray as 32-bit integers and saturates them at 255 (so nearly
 * every pixel turns white); here 16-bit gray keeps its high byte like every other 16-bit type. */
static int read_png(const uint8_t *data, size_t size, const char *label, dc_image *out)
{
    png_reader reader = {.data = data, .size = size};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(reader.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return dci_err(DC_EFORMAT, "%s: invalid PNG: %s", label, reader.message);
    }
    /* Our own limits below give the message; libpng's default caps would preempt them. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_read_fn(png, &reader, png_on_read);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int status = check_image_size(label, width, height);
    if (status != DC_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return status;
    }
    int color = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16)
        png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY)
        png_set_expand_gray_1_2_4_to_8(png);
    if (!(color & PNG_COLOR_MASK_COLOR))
        png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = (size_t)width * 3;
    if (png_get_rowbytes(png, info) != stride) {
        png_destroy_read_struct(&png, &info, NULL);
        return dci_err(DC_EINTERNAL, "%s: PNG did not convert to 8-bit RGB", label);
    }

    pixels = malloc(stride * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++)
        rows[y] = pixels + y * stride;
    png_read_image(png, rows);
    /* Reads up to IEND, so that a file cut anywhere is refused as PIL refuses it. */
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *out = (dc_image){.width = (int)width, .height = (int)height, .channels = 3, .data = pixels};
    return DC_OK;
}

static int write_png(io_atomic_file *file, const dc_image *img)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)img->width;
    image.height = (png_uint_32)img->height;
    image.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_stdio(&image, file->stream, 0, img->data, 0, NULL)) {
        int status = dci_err(DC_EIO, "%s: cannot write PNG: %s", file->final_path, image.message);
        png_image_free(&image);
        return status;
    }
    return DC_OK;
}

/* ---- JPEG -------------------------------------------------------------------------------- */

typedef struct jpeg_failure {
    struct jpeg_error_mgr manager;   /* first: libjpeg hands us a pointer to it */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    cinfo->err->format_message(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

/* libjpeg recovers from a truncated file by inventing an end marker and warning; PIL refuses
 * such files, and so do we. Other warnings (recoverable corruption) stay silent. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        jpeg_on_error(cinfo);
}

static void jpeg_silent_output(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor &&
        ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_failure *failure = (jpeg_failure *)cinfo->err;
        snprintf(failure->message, sizeof failure->message, "more than %d scans",
                 JPEG_MAX_SCANS);
        longjmp(failure->jump, 1);
    }
}

static struct jpeg_error_mgr *jpeg_failure_init(jpeg_failure *failure)
{
    jpeg_std_error(&failure->manager);
    failure->manager.error_exit = jpeg_on_error;
    failure->manager.emit_message = jpeg_on_message;
    failure->manager.output_message = jpeg_silent_output;
    failure->progress.progress_monitor = jpeg_on_progress;
    return &failure->manager;
}

/* Gray, YCbCr and RGB JPEGs become RGB. CMYK and YCCK are refused: PIL's conversion of them
 * ignores colour profiles, and no DiffusionCLIP input uses them. */
static int read_jpeg(const uint8_t *data, size_t size, const char *label, dc_image *out)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_failure_init(&failure);
    uint8_t *volatile pixels = NULL;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return dci_err(DC_EFORMAT, "%s: invalid JPEG: %s", label, failure.message);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &failure.progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int status = check_image_size(label, cinfo.image_width, cinfo.image_height);
    if (status == DC_OK && cinfo.jpeg_color_space != JCS_GRAYSCALE &&
        cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_RGB)
        status = dci_err(DC_EFORMAT, "%s: JPEG colour space %s is not supported (only gray, "
                         "YCbCr and RGB)", label,
                         cinfo.jpeg_color_space == JCS_CMYK   ? "CMYK"
                         : cinfo.jpeg_color_space == JCS_YCCK ? "YCCK"
                                                              : "unknown");
    if (status != DC_OK) {
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3 || cinfo.output_width != cinfo.image_width ||
        cinfo.output_height != cinfo.image_height) {
        jpeg_destroy_decompress(&cinfo);
        return dci_err(DC_EINTERNAL, "%s: JPEG did not decode to RGB", label);
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    pixels = malloc(stride * cinfo.output_height);
    if (!pixels)
        ERREXIT(&cinfo, JERR_OUT_OF_MEMORY);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = (dc_image){.width = (int)cinfo.output_width, .height = (int)cinfo.output_height,
                      .channels = 3, .data = pixels};
    return DC_OK;
}

static int write_jpeg(io_atomic_file *file, const dc_image *img)
{
    struct jpeg_compress_struct cinfo;
    jpeg_failure failure;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_failure_init(&failure);
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&cinfo);
        return dci_err(DC_EIO, "%s: cannot write JPEG: %s", file->final_path, failure.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, file->stream);
    cinfo.image_width = (JDIMENSION)img->width;
    cinfo.image_height = (JDIMENSION)img->height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)img->width * 3;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = img->data + (size_t)cinfo.next_scanline * stride;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return DC_OK;
}

/* ---- entry points ------------------------------------------------------------------------ */

int io_image_read_buffer(const uint8_t *data, size_t size, const char *label, dc_image *out)
{
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(out, 0, sizeof *out);
    if (!label)
        label = "<image>";
    if (!data && size)
        return dci_err(DC_EINVAL, "%s: NULL buffer", label);
    if (size >= sizeof png_signature && memcmp(data, png_signature, sizeof png_signature) == 0)
        return read_png(data, size, label, out);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return read_jpeg(data, size, label, out);
    return dci_err(DC_EFORMAT, "%s: not a PNG or JPEG file", label);
}

int io_image_read_file(const char *path, dc_image *out)
{
    memset(out, 0, sizeof *out);
    io_mapped_file file;
    DCI_TRY(io_map_file(path, &file));
    int status = io_image_read_buffer(file.data, file.size, path, out);
    io_unmap_file(&file);
    return status;
}

typedef enum image_format { FORMAT_UNKNOWN, FORMAT_PNG, FORMAT_JPEG } image_format;

static image_format format_from_extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (!dot)
        return FORMAT_UNKNOWN;
    if (strcasecmp(dot, ".png") == 0)
        return FORMAT_PNG;
    if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
        return FORMAT_JPEG;
    return FORMAT_UNKNOWN;
}

int io_image_write_file(const char *path, const dc_image *img)
{
    if (!path || !img)
        return dci_err(DC_EINVAL, "io_image_write_file: NULL argument");
    image_format format = format_from_extension(path);
    if (format == FORMAT_UNKNOWN)
        return dci_err(DC_EINVAL, "%s: unknown image extension (use .png, .jpg or .jpeg)", path);
    if (img->channels != 3)
        return dci_err(DC_EINVAL, "%s: image has %d channels, expected 3 (RGB)", path,
                       img->channels);
    if (img->width <= 0 || img->height <= 0 || !img->data)
        return dci_err(DC_EINVAL, "%s: image is empty (%d x %d)", path, img->width, img->height);
    if (check_image_size(path, (uint64_t)img->width, (uint64_t)img->height) != DC_OK)
        return dci_err(DC_EINVAL, "%s: image of %d x %d pixels is over the limit", path,
                       img->width, img->height);

    io_atomic_file file;
    DCI_TRY(io_atomic_begin(&file, path));
    int status = format == FORMAT_PNG ? write_png(&file, img) : write_jpeg(&file, img);
    if (status != DC_OK) {
        io_atomic_abort(&file);
        return status;
    }
    return io_atomic_commit(&file);
}
