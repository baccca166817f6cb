// The input copy of the direct convolution: zero padding and stride phases in one pass (CKernels.h).
#include "CKernels.h"
#include <string.h>

/// d[j] = s[j · step] for j in [0, n); the step-1 and step-2 loops are the vectorized common cases.
static void gather_row(float *restrict d, const float *restrict s, long n, long step) {
    if (step == 1) { memcpy(d, s, (size_t)n * sizeof(float)); return; }
    if (step == 2) { for (long j = 0; j < n; j++) d[j] = s[2 * j]; return; }
    for (long j = 0; j < n; j++) d[j] = s[j * step];
}

void mdf_phase_fill(float *dst, const float *x, long h, long w, long sh, long sw, long pt, long pl, long hq, long wq) {
    for (long py = 0; py < sh; py++) {
        for (long px = 0; px < sw; px++) {
            float *d = dst + (py * sw + px) * hq * wq;
            // Columns j whose source column j · sw + c0 lies in [0, w).
            const long c0 = px - pl;
            long jlo = c0 >= 0 ? 0 : (-c0 + sw - 1) / sw;
            if (jlo > wq) jlo = wq;
            long jhi = w - 1 - c0 < 0 ? 0 : (w - 1 - c0) / sw + 1;
            if (jhi > wq) jhi = wq;
            if (jhi < jlo) jhi = jlo;
            for (long i = 0; i < hq; i++, d += wq) {
                const long row = i * sh + py - pt;
                if (row < 0 || row >= h) { memset(d, 0, (size_t)wq * sizeof(float)); continue; }
                if (jlo > 0) memset(d, 0, (size_t)jlo * sizeof(float));
                gather_row(d + jlo, x + row * w + jlo * sw + c0, jhi - jlo, sw);
                if (jhi < wq) memset(d + jhi, 0, (size_t)(wq - jhi) * sizeof(float));
            }
        }
    }
}
