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
    // Two heaps at most: the calling thread's (tensors) and one the pool's workers share (their task
    // scratch). With one, the two threads took the heap's lock in turn on every scratch buffer and
    // futex waits, wake-ups and lock-contended frees were 7-8% of FastFlowNet's samples at two threads
    // (inference at 448x1024, training), 2-2.5% with two. Each arena keeps its own peak, since nothing
    // is trimmed: peak RSS moved within its run-to-run spread (full-RAFT inference 516-532 MB against
    // 517-549, RAFT-small training 879-885 against 875-888).
    mallopt(M_ARENA_MAX, 2);
#endif
}

/* Bytes the process's malloc heaps hold in live allocations (tensors and everything else); 0 where
   glibc's mallinfo2 is not available. Beside the resident set it tells a leak (both grow) from
   heap fragmentation (only the resident set grows). */
size_t mdf_heap_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
#else
    return 0;
#endif
}

/* Returns the heaps' free pages to the system (malloc_trim): with trimming off (above), an arena
   otherwise keeps every page it ever touched, and fragmentation lets that creep up over thousands of
   training steps (+7% resident set between steps 1,000 and 4,000 of a 64x128 stage, with the heap in
   use flat). The pages the next step needs fault back in, so the trainer calls it only once per
   progress line (every logEvery steps, or 30 s). */
void mdf_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
