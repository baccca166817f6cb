// PNG and JPEG through libpng's classic API and libjpeg, decoded from bytes in memory (the
// caller reads the file) and encoded to a path. All setjmp/longjmp stays in this file:
// the error handlers jump back into the C function that installed them, which cleans up and
// returns an error code. Nothing here calls abort() or exit().
#include "CSupport.h"
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>
#include <jpeglib.h>

static void set_message(char *message, size_t size, const char *format, ...) {
    if (message == NULL || size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
}

void mdflow_image_free(mdflow_image *image) {
    if (image == NULL) return;
    free(image->pixels);
    image->pixels = NULL;
}

/// Largest image we accept (pixels): protects the multiplications below from overflow and a
/// corrupt header from a huge allocation.
static const size_t max_pixels = (size_t)1 << 28;

/// Checks that `size` bytes at `data` start with `magic`; writes the reason otherwise.
static int check_magic(const unsigned char *data, size_t size, const unsigned char *magic, size_t magic_size,
                       const char *kind, char *message, size_t message_size) {
    if (data == NULL || size == 0) {
        set_message(message, message_size, "empty file");
        return MDFLOW_IMAGE_NOT_THIS_FORMAT;
    }
    if (size < magic_size || memcmp(data, magic, magic_size) != 0) {
        set_message(message, message_size, "not a %s file (bad signature)", kind);
        return MDFLOW_IMAGE_NOT_THIS_FORMAT;
    }
    return MDFLOW_IMAGE_OK;
}

// MARK: PNG

typedef struct {
    jmp_buf jump;
    char *message;
    size_t message_size;
    const unsigned char *data;  ///< the file's bytes (reading only)
    size_t size;
    size_t position;
} png_context;

static void png_error_handler(png_structp png, png_const_charp text) {
    png_context *context = (png_context *)png_get_error_ptr(png);
    set_message(context->message, context->message_size, "libpng: %s", text);
    longjmp(context->jump, 1);
}

static void png_warning_handler(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;  // ancillary-chunk complaints (iCCP, CRC of text chunks) do not affect pixels
}

/// libpng's read callback over the bytes in memory; a read past the end is a "read error".
static void png_read_memory(png_structp png, png_bytep out, size_t length) {
    png_context *context = (png_context *)png_get_io_ptr(png);
    if (length > context->size - context->position) png_error(png, "read error (unexpected end of file)");
    memcpy(out, context->data + context->position, length);
    context->position += length;
}

int mdflow_png_decode(const void *data, size_t size, mdflow_image *out, char *message, size_t message_size) {
    static const unsigned char signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    memset(out, 0, sizeof *out);
    int code = check_magic(data, size, signature, 8, "PNG", message, message_size);
    if (code != MDFLOW_IMAGE_OK) return code;

    png_context context;
    context.message = message;
    context.message_size = message_size;
    context.data = data;
    context.size = size;
    context.position = 8;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context,
                                             png_error_handler, png_warning_handler);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        set_message(message, message_size, "out of memory");
        return MDFLOW_IMAGE_NO_MEMORY;
    }
    // Modified after setjmp, so volatile: the error path must see their current values.
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int result = MDFLOW_IMAGE_DECODE_FAILED;
    if (setjmp(context.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return result;
    }
    png_set_read_fn(png, &context, png_read_memory);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if ((size_t)width * (size_t)height > max_pixels) {
        result = MDFLOW_IMAGE_UNSUPPORTED;
        png_error(png, "image too large");
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_swap(png);  // PNG stores big-endian samples
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if ((out_depth != 8 && out_depth != 16) || channels < 1 || channels > 4 ||
        row_bytes != (size_t)width * (size_t)channels * (size_t)(out_depth / 8)) {
        result = MDFLOW_IMAGE_UNSUPPORTED;
        png_error(png, "unsupported sample layout");
    }
    pixels = malloc(row_bytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        result = MDFLOW_IMAGE_NO_MEMORY;
        png_error(png, "out of memory");
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = (int32_t)width;
    out->height = (int32_t)height;
    out->channels = channels;
    out->bit_depth = out_depth;
    out->pixels = pixels;
    return MDFLOW_IMAGE_OK;
}

int mdflow_png_write(const char *path, const void *pixels, int32_t width, int32_t height,
                     int32_t channels, int32_t bit_depth, int32_t compression,
                     char *message, size_t message_size) {
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4 ||
        (bit_depth != 8 && bit_depth != 16) || pixels == NULL) {
        set_message(message, message_size, "invalid PNG parameters (%dx%d, %d channels, %d bit)",
                    width, height, channels, bit_depth);
        return MDFLOW_IMAGE_BAD_ARGUMENT;
    }
    FILE *fp = fopen(path, "wb");
    if (fp == NULL) {
        set_message(message, message_size, "cannot create (%s)", strerror(errno));
        return MDFLOW_IMAGE_OPEN_FAILED;
    }
    png_context context;
    context.message = message;
    context.message_size = message_size;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context,
                                              png_error_handler, png_warning_handler);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        fclose(fp);
        remove(path);
        set_message(message, message_size, "out of memory");
        return MDFLOW_IMAGE_NO_MEMORY;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(context.jump)) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        fclose(fp);
        remove(path);
        return MDFLOW_IMAGE_WRITE_FAILED;
    }
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth,
                 color_types[channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (compression >= 0) {
        png_set_compression_level(png, compression > 9 ? 9 : compression);
        // Fast levels: a single cheap filter instead of trying all five per row.
        if (compression <= 3) png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
    }
    png_write_info(png, info);
    if (bit_depth == 16) png_set_swap(png);  // host-order samples in, big-endian on disk
    size_t row_bytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (rows == NULL) png_error(png, "out of memory");
    for (int32_t y = 0; y < height; y++) rows[y] = (png_bytep)pixels + (size_t)y * row_bytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (fclose(fp) != 0) {
        set_message(message, message_size, "write failed (%s)", strerror(errno));
        remove(path);
        return MDFLOW_IMAGE_WRITE_FAILED;
    }
    return MDFLOW_IMAGE_OK;
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr manager;  // first member: libjpeg sees a jpeg_error_mgr*
    jmp_buf jump;
    int strict;
    char *message;
    size_t message_size;
} jpeg_context;

static void jpeg_fail(j_common_ptr info) {
    jpeg_context *context = (jpeg_context *)info->err;
    char text[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, text);
    set_message(context->message, context->message_size, "libjpeg: %s", text);
    longjmp(context->jump, 1);
}

/// Level -1 is a warning (corrupt data, premature end): an error in strict mode. Higher levels
/// are trace messages, ignored.
static void jpeg_message(j_common_ptr info, int level) {
    if (level >= 0) return;
    jpeg_context *context = (jpeg_context *)info->err;
    if (context->strict) jpeg_fail(info);
    info->err->num_warnings++;
}

int mdflow_jpeg_decode(const void *data, size_t size, int32_t strict, mdflow_image *out,
                       char *message, size_t message_size) {
    static const unsigned char signature[2] = {0xFF, 0xD8};
    memset(out, 0, sizeof *out);
    int code = check_magic(data, size, signature, 2, "JPEG", message, message_size);
    if (code != MDFLOW_IMAGE_OK) return code;

    struct jpeg_decompress_struct info;
    jpeg_context context;
    info.err = jpeg_std_error(&context.manager);
    context.manager.error_exit = jpeg_fail;
    context.manager.emit_message = jpeg_message;
    context.strict = strict;
    context.message = message;
    context.message_size = message_size;
    unsigned char *volatile pixels = NULL;
    volatile int result = MDFLOW_IMAGE_DECODE_FAILED;
    if (setjmp(context.jump)) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        return result;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    if (info.jpeg_color_space == JCS_GRAYSCALE) {
        info.out_color_space = JCS_GRAYSCALE;
    } else if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&info);
        set_message(message, message_size, "CMYK JPEG is not supported");
        return MDFLOW_IMAGE_UNSUPPORTED;
    } else {
        info.out_color_space = JCS_RGB;
    }
    if ((size_t)info.image_width * (size_t)info.image_height > max_pixels) {
        jpeg_destroy_decompress(&info);
        set_message(message, message_size, "image too large (%ux%u)", info.image_width, info.image_height);
        return MDFLOW_IMAGE_UNSUPPORTED;
    }
    jpeg_start_decompress(&info);
    size_t row_bytes = (size_t)info.output_width * (size_t)info.output_components;
    pixels = malloc(row_bytes * info.output_height);
    if (pixels == NULL) {
        result = MDFLOW_IMAGE_NO_MEMORY;
        set_message(message, message_size, "out of memory");
        longjmp(context.jump, 1);
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = pixels + (size_t)info.output_scanline * row_bytes;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    out->width = (int32_t)info.output_width;
    out->height = (int32_t)info.output_height;
    out->channels = info.output_components;
    out->bit_depth = 8;
    out->pixels = pixels;
    jpeg_destroy_decompress(&info);
    return MDFLOW_IMAGE_OK;
}

int mdflow_jpeg_write(const char *path, const uint8_t *pixels, int32_t width, int32_t height,
                      int32_t channels, int32_t quality, char *message, size_t message_size) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || pixels == NULL) {
        set_message(message, message_size, "invalid JPEG parameters (%dx%d, %d channels)",
                    width, height, channels);
        return MDFLOW_IMAGE_BAD_ARGUMENT;
    }
    FILE *fp = fopen(path, "wb");
    if (fp == NULL) {
        set_message(message, message_size, "cannot create (%s)", strerror(errno));
        return MDFLOW_IMAGE_OPEN_FAILED;
    }
    struct jpeg_compress_struct info;
    jpeg_context context;
    info.err = jpeg_std_error(&context.manager);
    context.manager.error_exit = jpeg_fail;
    context.manager.emit_message = jpeg_message;
    context.strict = 0;
    context.message = message;
    context.message_size = message_size;
    if (setjmp(context.jump)) {
        jpeg_destroy_compress(&info);
        fclose(fp);
        remove(path);
        return MDFLOW_IMAGE_WRITE_FAILED;
    }
    jpeg_create_compress(&info);
    jpeg_stdio_dest(&info, fp);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality < 1 ? 1 : (quality > 100 ? 100 : quality), TRUE);
    jpeg_start_compress(&info, TRUE);
    size_t row_bytes = (size_t)width * (size_t)channels;
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.next_scanline * row_bytes);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    if (fclose(fp) != 0) {
        set_message(message, message_size, "write failed (%s)", strerror(errno));
        remove(path);
        return MDFLOW_IMAGE_WRITE_FAILED;
    }
    return MDFLOW_IMAGE_OK;
}
