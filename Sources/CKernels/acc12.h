// Shared by the two assembly tiles: move twelve ymm sums (ymm0–ymm11) between registers and the
// 384 bytes at the operand named `out`, or start them at zero.
#ifndef MDFLOW_CKERNELS_ACC12_H
#define MDFLOW_CKERNELS_ACC12_H

#define ACC12_LOAD                                                                              \
    "vmovups 0(%[out]), %%ymm0\n\t"   "vmovups 32(%[out]), %%ymm1\n\t"  "vmovups 64(%[out]), %%ymm2\n\t"   \
    "vmovups 96(%[out]), %%ymm3\n\t"  "vmovups 128(%[out]), %%ymm4\n\t" "vmovups 160(%[out]), %%ymm5\n\t"  \
    "vmovups 192(%[out]), %%ymm6\n\t" "vmovups 224(%[out]), %%ymm7\n\t" "vmovups 256(%[out]), %%ymm8\n\t"  \
    "vmovups 288(%[out]), %%ymm9\n\t" "vmovups 320(%[out]), %%ymm10\n\t" "vmovups 352(%[out]), %%ymm11\n\t"

#define ACC12_ZERO                                                                              \
    "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"   "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"   "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"   \
    "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"   "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"   "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"   \
    "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"   "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"   "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"   \
    "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"   "vxorps %%ymm10, %%ymm10, %%ymm10\n\t" "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"

#define ACC12_STORE                                                                             \
    "vmovups %%ymm0, 0(%[out])\n\t"   "vmovups %%ymm1, 32(%[out])\n\t"  "vmovups %%ymm2, 64(%[out])\n\t"   \
    "vmovups %%ymm3, 96(%[out])\n\t"  "vmovups %%ymm4, 128(%[out])\n\t" "vmovups %%ymm5, 160(%[out])\n\t"  \
    "vmovups %%ymm6, 192(%[out])\n\t" "vmovups %%ymm7, 224(%[out])\n\t" "vmovups %%ymm8, 256(%[out])\n\t"  \
    "vmovups %%ymm9, 288(%[out])\n\t" "vmovups %%ymm10, 320(%[out])\n\t" "vmovups %%ymm11, 352(%[out])\n\t"

// The same for twelve zmm sums (zmm0–zmm11) and 768 bytes; ACC12_ZERO serves both (a VEX-encoded
// vxorps clears the whole register).
#define ACC12Z_LOAD                                                                             \
    "vmovups 0(%[out]), %%zmm0\n\t"   "vmovups 64(%[out]), %%zmm1\n\t"  "vmovups 128(%[out]), %%zmm2\n\t"  \
    "vmovups 192(%[out]), %%zmm3\n\t" "vmovups 256(%[out]), %%zmm4\n\t" "vmovups 320(%[out]), %%zmm5\n\t"  \
    "vmovups 384(%[out]), %%zmm6\n\t" "vmovups 448(%[out]), %%zmm7\n\t" "vmovups 512(%[out]), %%zmm8\n\t"  \
    "vmovups 576(%[out]), %%zmm9\n\t" "vmovups 640(%[out]), %%zmm10\n\t" "vmovups 704(%[out]), %%zmm11\n\t"

#define ACC12Z_STORE                                                                            \
    "vmovups %%zmm0, 0(%[out])\n\t"   "vmovups %%zmm1, 64(%[out])\n\t"  "vmovups %%zmm2, 128(%[out])\n\t"  \
    "vmovups %%zmm3, 192(%[out])\n\t" "vmovups %%zmm4, 256(%[out])\n\t" "vmovups %%zmm5, 320(%[out])\n\t"  \
    "vmovups %%zmm6, 384(%[out])\n\t" "vmovups %%zmm7, 448(%[out])\n\t" "vmovups %%zmm8, 512(%[out])\n\t"  \
    "vmovups %%zmm9, 576(%[out])\n\t" "vmovups %%zmm10, 640(%[out])\n\t" "vmovups %%zmm11, 704(%[out])\n\t"

// ACC12Z_LOAD / ACC12Z_STORE with the six rows of two zmm each at out, out + ld, …, out + 5 · ld
// bytes (operands [out], read-write, and [ld]): out walks down two rows at a time and back up, so
// it ends where it started.
#define ACC12Z_LOAD_ROWS                                                                        \
    "vmovups (%[out]), %%zmm0\n\t"        "vmovups 64(%[out]), %%zmm1\n\t"                     \
    "vmovups (%[out],%[ld]), %%zmm2\n\t"  "vmovups 64(%[out],%[ld]), %%zmm3\n\t"               \
    "lea (%[out],%[ld],2), %[out]\n\t"                                                          \
    "vmovups (%[out]), %%zmm4\n\t"        "vmovups 64(%[out]), %%zmm5\n\t"                     \
    "vmovups (%[out],%[ld]), %%zmm6\n\t"  "vmovups 64(%[out],%[ld]), %%zmm7\n\t"               \
    "lea (%[out],%[ld],2), %[out]\n\t"                                                          \
    "vmovups (%[out]), %%zmm8\n\t"        "vmovups 64(%[out]), %%zmm9\n\t"                     \
    "vmovups (%[out],%[ld]), %%zmm10\n\t" "vmovups 64(%[out],%[ld]), %%zmm11\n\t"

#define ACC12Z_STORE_ROWS                                                                       \
    "vmovups %%zmm8, (%[out])\n\t"        "vmovups %%zmm9, 64(%[out])\n\t"                     \
    "vmovups %%zmm10, (%[out],%[ld])\n\t" "vmovups %%zmm11, 64(%[out],%[ld])\n\t"              \
    "sub %[ld], %[out]\n\t"               "sub %[ld], %[out]\n\t"                             \
    "vmovups %%zmm4, (%[out])\n\t"        "vmovups %%zmm5, 64(%[out])\n\t"                     \
    "vmovups %%zmm6, (%[out],%[ld])\n\t"  "vmovups %%zmm7, 64(%[out],%[ld])\n\t"               \
    "sub %[ld], %[out]\n\t"               "sub %[ld], %[out]\n\t"                             \
    "vmovups %%zmm0, (%[out])\n\t"        "vmovups %%zmm1, 64(%[out])\n\t"                     \
    "vmovups %%zmm2, (%[out],%[ld])\n\t"  "vmovups %%zmm3, 64(%[out],%[ld])\n\t"

#define ACC12_CLOBBERS "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
    "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

#endif
