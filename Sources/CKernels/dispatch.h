// The run-time choice every kernel file makes: the AVX2+FMA code where the CPU has it and the
// caller did not ask for the portable loop (tests compare the two).
#ifndef MDFLOW_CKERNELS_DISPATCH_H
#define MDFLOW_CKERNELS_DISPATCH_H

static inline int mdf_use_avx2(int portable) {
#if defined(__x86_64__)
    return !portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)portable;
    return 0;
#endif
}

#endif
