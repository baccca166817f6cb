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
    // One heap for all threads: with nothing trimmed, each extra per-thread arena would keep its
    // own peak (the pool's worker allocates task scratch too).
    mallopt(M_ARENA_MAX, 1);
#endif
}
