// The run-time choice every kernel file makes. `isa` is the caller's request (CKernels.h,
// MDF_ISA_*): the widest code the CPU has, the portable loop, or at most AVX2 (tests compare them).
// AVX-512 is used where the CPU has AVX512F, unless MDFLOW_AVX512=0 is in the environment (for A/B
// measurements); a kernel without an AVX-512 form runs its AVX2 one.
#ifndef MDFLOW_CKERNELS_DISPATCH_H
#define MDFLOW_CKERNELS_DISPATCH_H
#include <stdlib.h>
#include "CKernels.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

static inline int mdf_use_avx2(int isa) {
#if defined(__x86_64__)
    return isa != MDF_ISA_PORTABLE && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)isa;
    return 0;
#endif
}

static inline int mdf_use_avx512(int isa) {
#if defined(__x86_64__)
    static int available = -1;   // read once per file; a racing first call writes the same value
    if (available < 0) {
        const char *e = getenv("MDFLOW_AVX512");
        available = __builtin_cpu_supports("avx512f") && mdf_use_avx2(MDF_ISA_BEST) && !(e && e[0] == '0');
    }
    return isa == MDF_ISA_BEST && available;
#else
    (void)isa;
    return 0;
#endif
}

/// 1 where the CPU reports PREFETCHW (CPUID 8000_0001h, ECX bit 8: every AMD64 CPU and Intel's from
/// Broadwell on), so that a kernel issues it only where it is defined.
static inline int mdf_has_prefetchw(void) {
#if defined(__x86_64__)
    static int available = -1;   // read once per file; a racing first call writes the same value
    if (available < 0) {
        unsigned a, b, c, d;
        available = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c >> 8 & 1u);
    }
    return available;
#else
    return 0;
#endif
}

/// The mask of the first n of 16 lanes (n ≤ 0: none, n ≥ 16: all): AVX-512 kernels' masked last
/// pieces.
static inline unsigned mdf_lanes16(long n) {
    return n >= 16 ? 0xFFFFu : n > 0 ? (1u << n) - 1 : 0u;
}

#endif
