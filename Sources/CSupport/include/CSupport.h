#ifndef MDFLOW_CSUPPORT_H
#define MDFLOW_CSUPPORT_H
#include <stddef.h>
#include <stdint.h>

// MARK: image files
//
// Every libpng/libjpeg call sequence lives in C behind setjmp: the functions below never longjmp
// into Swift, never abort and never exit. They return one of the codes below and, on failure,
// write a one-line reason into `message` (always NUL-terminated when message_size > 0).

enum {
    MDFLOW_IMAGE_OK = 0,
    MDFLOW_IMAGE_OPEN_FAILED = 1,   ///< fopen failed (message holds strerror)
    MDFLOW_IMAGE_NOT_THIS_FORMAT = 2, ///< wrong signature, or an empty file
    MDFLOW_IMAGE_DECODE_FAILED = 3, ///< the library reported an error (truncated, corrupt, ...)
    MDFLOW_IMAGE_UNSUPPORTED = 4,   ///< valid file of a kind we do not read (e.g. CMYK JPEG)
    MDFLOW_IMAGE_NO_MEMORY = 5,
    MDFLOW_IMAGE_WRITE_FAILED = 6,
    MDFLOW_IMAGE_BAD_ARGUMENT = 7,
};

/// A decoded image: `height` rows of `width` pixels of `channels` interleaved samples of
/// `bit_depth` bits (8: uint8_t, 16: uint16_t in host order). `pixels` is malloc'd; release it
/// with `mdflow_image_free`.
typedef struct {
    int32_t width;
    int32_t height;
    int32_t channels;   ///< 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int32_t bit_depth;  ///< 8 or 16
    void *pixels;
} mdflow_image;

void mdflow_image_free(mdflow_image *image);

/// Decodes the `size` bytes of a PNG file at `data` with the classic libpng API and no colour
/// transforms: 16-bit samples stay exact (png_set_swap gives host order), palettes expand to RGB,
/// 1/2/4-bit gray expands to 8 bits. Gamma, sRGB and ICC chunks are ignored.
int mdflow_png_decode(const void *data, size_t size, mdflow_image *out, char *message, size_t message_size);

/// Writes a PNG of `channels` (1-4) samples of `bit_depth` (8 or 16; 16-bit samples in host
/// order). `compression` is the zlib level 0-9 (negative: libpng's default).
int mdflow_png_write(const char *path, const void *pixels, int32_t width, int32_t height,
                     int32_t channels, int32_t bit_depth, int32_t compression,
                     char *message, size_t message_size);

/// Decodes the `size` bytes of a baseline or progressive JPEG file at `data` as 8-bit RGB
/// (grayscale files give 1 channel). With `strict` != 0 every libjpeg warning (e.g. "Premature
/// end of JPEG file", which libjpeg otherwise fills with grey) is an error.
int mdflow_jpeg_decode(const void *data, size_t size, int32_t strict, mdflow_image *out,
                       char *message, size_t message_size);

/// Writes 8-bit RGB (channels 3) or gray (channels 1) as JPEG with `quality` 1-100.
int mdflow_jpeg_write(const char *path, const uint8_t *pixels, int32_t width, int32_t height,
                      int32_t channels, int32_t quality, char *message, size_t message_size);

// MARK: checksums

/// zlib's CRC-32 of `size` bytes, continuing from `crc` (0 to start).
uint32_t mdflow_crc32(uint32_t crc, const void *data, size_t size);

#endif
