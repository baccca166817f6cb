// glibc's large-block policy for tensor memory (see Storage.swift, StorageMemory).
#include "CKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#include <limits.h>
#endif

void mdf_keep_large_blocks(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}
