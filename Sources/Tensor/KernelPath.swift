// Which code the C kernels run: passed down to every CKernels call, so that tests can compare the
// AVX-512, AVX2 and portable paths.

/// Which code the C kernels run (CKernels.h, MDF_ISA_*): the widest the CPU has (AVX-512 where a
/// kernel has that form, else AVX2+FMA, else portable C), or, for tests comparing them, the portable
/// loops or at most AVX2.
enum KernelPath: Int32 {
    case best = 0, portable = 1, avx2 = 2
}
