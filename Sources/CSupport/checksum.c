// CRC-32 through zlib (already linked for libpng), in chunks that fit zlib's uInt length.
#include <zlib.h>
#include "CSupport.h"

uint32_t mdflow_crc32(uint32_t crc, const void *data, size_t size) {
    const Bytef *p = (const Bytef *)data;
    uLong c = crc;
    while (size > 0) {
        uInt n = size > 0x40000000u ? 0x40000000u : (uInt)size;
        c = crc32(c, p, n);
        p += n;
        size -= n;
    }
    return (uint32_t)c;
}
