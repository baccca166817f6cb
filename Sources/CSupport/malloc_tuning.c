#include "CSupport.h"
#include <malloc.h>
#include <limits.h>

void mdflow_tune_malloc(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
}
