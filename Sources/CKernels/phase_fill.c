// The input copy of the direct convolution: zero padding and stride phases in one pass (CKernels.h).
#include "CKernels.h"
#include "dispatch.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
/// d[j] = s[2j] for j < n, eight at a time while the second load stays before s[2n − 1] (which may
/// lie past the source); returns how many were written.
__attribute__((target("avx2")))
static long gather2_avx2(float *restrict d, const float *restrict s, long n) {
    long j = 0;
    for (; j + 8 < n; j += 8) {
        const __m256 a = _mm256_loadu_ps(s + 2 * j), b = _mm256_loadu_ps(s + 2 * j + 8);
        const __m256 e = _mm256_shuffle_ps(a, b, 0x88);   // a0 a2 b0 b2 | a4 a6 b4 b6
        _mm256_storeu_ps(d + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
    }
    return j;
}
#endif

/// d[j] = s[j · step] for j in [0, n); the step-1 and step-2 loops are the vectorized common cases.
static void gather_row(float *restrict d, const float *restrict s, long n, long step) {
    if (step == 1) { memcpy(d, s, (size_t)n * sizeof(float)); return; }
    if (step == 2) {
        long j = 0;
#if defined(__x86_64__)
        if (mdf_use_avx2(MDF_ISA_BEST)) j = gather2_avx2(d, s, n);
#endif
        for (; j < n; j++) d[j] = s[2 * j];
        return;
    }
    for (long j = 0; j < n; j++) d[j] = s[j * step];
}

#if defined(__x86_64__)
/// e[k] = s[2k] and o[k] = s[2k + 1] for k < n, eight of each a step (loads stay within s[0 ..< 2n]);
/// returns how many pairs were written.
__attribute__((target("avx2")))
static long deinterleave2_avx2(float *restrict e, float *restrict o, const float *restrict s, long n) {
    long k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 a = _mm256_loadu_ps(s + 2 * k), b = _mm256_loadu_ps(s + 2 * k + 8);
        const __m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xDD);   // per lane: evens | odds
        _mm256_storeu_ps(e + k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
        _mm256_storeu_ps(o + k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8)));
    }
    return k;
}
#endif

/// One source row's two column phases at stride sw = 2, in one pass: source column c lands in phase
/// (c + pl) mod 2 at column (c + pl) / 2, so even columns go to phase pl mod 2 from column pl / 2 and
/// odd ones to the other phase from column (pl + 1) / 2 (the caller checks both fit within wq). src:
/// the row, or NULL for a row outside the image (both phases' rows zero).
static void fill_column_pair(float *d0, float *d1, const float *src, long w, long pl, long wq) {
    if (!src) { memset(d0, 0, (size_t)wq * sizeof(float)); memset(d1, 0, (size_t)wq * sizeof(float)); return; }
    const long ne = (w + 1) / 2, no = w / 2, oe = pl >> 1, oo = (pl + 1) >> 1;
    float *de = (pl & 1) ? d1 : d0, *dod = (pl & 1) ? d0 : d1;
    if (oe > 0) memset(de, 0, (size_t)oe * sizeof(float));
    if (oo > 0) memset(dod, 0, (size_t)oo * sizeof(float));
    long k = 0;
#if defined(__x86_64__)
    if (mdf_use_avx2(MDF_ISA_BEST)) k = deinterleave2_avx2(de + oe, dod + oo, src, no);
#endif
    for (; k < no; k++) { de[oe + k] = src[2 * k]; dod[oo + k] = src[2 * k + 1]; }
    if (ne > no) de[oe + no] = src[2 * no];
    if (oe + ne < wq) memset(de + oe + ne, 0, (size_t)(wq - oe - ne) * sizeof(float));
    if (oo + no < wq) memset(dod + oo + no, 0, (size_t)(wq - oo - no) * sizeof(float));
}

/// Phases [ph0, ph1) one at a time: each row of each phase gathered from its source row.
static void fill_phases(float *dst, const float *x, long h, long w, long sh, long sw, long pt, long pl, long hq, long wq,
                        long ph0, long ph1) {
    for (long ph = ph0; ph < ph1; ph++) {
        const long py = ph / sw, px = ph % sw;
        float *d = dst + ph * hq * wq;
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

void mdf_phase_fill(float *dst, const float *x, long h, long w, long sh, long sw, long pt, long pl, long hq, long wq,
                    long ph0, long ph1) {
    // At column stride 2, the row phases py whose two column phases are both asked for (and fit
    // within wq, from a left padding of zero or more) are written in source-row order, each source
    // row read once for both: sequential reads, where phase by phase every source row was read
    // twice, in passes over every sh-th row.
    long py0 = 0, py1 = 0;
    if (sw == 2 && pl >= 0 && (pl >> 1) + (w + 1) / 2 <= wq && ((pl + 1) >> 1) + w / 2 <= wq) {
        py0 = (ph0 + 1) / 2;
        py1 = ph1 / 2;
    }
    if (py0 >= py1) { fill_phases(dst, x, h, w, sh, sw, pt, pl, hq, wq, ph0, ph1); return; }
    fill_phases(dst, x, h, w, sh, sw, pt, pl, hq, wq, ph0, 2 * py0);
    for (long i = 0; i < hq; i++) {
        for (long py = py0; py < py1; py++) {
            const long row = i * sh + py - pt;
            float *d0 = dst + (2 * py * hq + i) * wq;
            fill_column_pair(d0, d0 + hq * wq, row >= 0 && row < h ? x + row * w : NULL, w, pl, wq);
        }
    }
    fill_phases(dst, x, h, w, sh, sw, pt, pl, hq, wq, 2 * py1, ph1);
}

#if defined(__x86_64__)
/// 8 columns of each phase a step: unpack interleaves within 128-bit lanes, the lane permutes
/// put the halves in order. `store`: dst = instead of +=.
__attribute__((target("avx2")))
static long add_interleaved2_avx2(float *dst, const float *a, const float *b, long n, int store) {
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 va = _mm256_loadu_ps(a + j), vb = _mm256_loadu_ps(b + j);
        const __m256 lo = _mm256_unpacklo_ps(va, vb), hi = _mm256_unpackhi_ps(va, vb);
        __m256 v0 = _mm256_permute2f128_ps(lo, hi, 0x20), v1 = _mm256_permute2f128_ps(lo, hi, 0x31);
        float *d = dst + 2 * j;
        if (!store) { v0 = _mm256_add_ps(_mm256_loadu_ps(d), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(d + 8), v1); }
        _mm256_storeu_ps(d, v0);
        _mm256_storeu_ps(d + 8, v1);
    }
    return j;
}
#endif

void mdf_add_interleaved2(float *dst, const float *a, long na, const float *b, long nb, int store, int isa) {
    long j = 0;
#if defined(__x86_64__)
    if (b && mdf_use_avx2(isa)) j = add_interleaved2_avx2(dst, a, b, na < nb ? na : nb, store);
#else
    (void)isa;
#endif
    if (store) {
        for (long i = j; i < na; i++) dst[2 * i] = a[i];
        if (b) for (long i = j; i < nb; i++) dst[2 * i + 1] = b[i];
        return;
    }
    for (long i = j; i < na; i++) dst[2 * i] += a[i];
    if (b) for (long i = j; i < nb; i++) dst[2 * i + 1] += b[i];
}
