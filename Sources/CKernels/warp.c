// Bilinear backward warping, one image row at a time (see CKernels.h, mdf_warp_*): the four corners
// of every sample in the row are found once, in a loop the compiler vectorizes, and then serve every
// channel. The corner loop and the channel loops are the same C on every path; the AVX2 and AVX-512
// forms differ only in vector width and contract the same expressions, so they are bitwise equal.
#include "CKernels.h"
#include "dispatch.h"
#include <math.h>

static inline __attribute__((always_inline))
void corners_body(int32_t *restrict o, float *restrict wt, float *restrict gx, float *restrict gy,
                  const float *u, const float *v, long py, long h, long w, const int border, const int grads) {
    const float maxX = (float)(w - 1), maxY = (float)(h - 1);
    for (long x = 0; x < w; x++) {
        float ix = (float)x + u[x], iy = (float)py + v[x], sx = 1.f, sy = 1.f;
        if (border) {
            // Clamped to the image; a clamped coordinate has no gradient (NaN counts as clamped).
            sx = ix > 0.f && ix < maxX ? 1.f : 0.f;
            sy = iy > 0.f && iy < maxY ? 1.f : 0.f;
            ix = !(ix > 0.f) ? 0.f : ix >= maxX ? maxX : ix;
            iy = !(iy > 0.f) ? 0.f : iy >= maxY ? maxY : iy;
        } else {
            // Far outside, every corner is out of range whatever the exact value; the clamp keeps
            // the integer conversion safe (and maps NaN outside).
            ix = !(ix >= -2.f) ? -2.f : ix > (float)(w + 1) ? (float)(w + 1) : ix;
            iy = !(iy >= -2.f) ? -2.f : iy > (float)(h + 1) ? (float)(h + 1) : iy;
        }
        const float x0f = floorf(ix), y0f = floorf(iy), fx = ix - x0f, fy = iy - y0f;
        const int x0 = (int)x0f, y0 = (int)y0f, x1 = x0 + 1, y1 = y0 + 1;
        const int vx0 = x0 >= 0 && x0 < w, vx1 = x1 >= 0 && x1 < w, vy0 = y0 >= 0 && y0 < h, vy1 = y1 >= 0 && y1 < h;
        const int cx0 = vx0 ? x0 : 0, cx1 = vx1 ? x1 : 0, cy0 = vy0 ? y0 : 0, cy1 = vy1 ? y1 : 0;
        const float m00 = vy0 && vx0 ? 1.f : 0.f, m01 = vy0 && vx1 ? 1.f : 0.f;
        const float m10 = vy1 && vx0 ? 1.f : 0.f, m11 = vy1 && vx1 ? 1.f : 0.f;
        o[x] = cy0 * (int)w + cx0; o[w + x] = cy0 * (int)w + cx1;
        o[2 * w + x] = cy1 * (int)w + cx0; o[3 * w + x] = cy1 * (int)w + cx1;
        const float ax = 1.f - fx, ay = 1.f - fy;
        wt[x] = m00 * (ay * ax); wt[w + x] = m01 * (ay * fx); wt[2 * w + x] = m10 * (fy * ax); wt[3 * w + x] = m11 * (fy * fx);
        if (grads) {
            gx[x] = -m00 * ay * sx; gx[w + x] = m01 * ay * sx; gx[2 * w + x] = -m10 * fy * sx; gx[3 * w + x] = m11 * fy * sx;
            gy[x] = -m00 * ax * sy; gy[w + x] = -m01 * fx * sy; gy[2 * w + x] = m10 * ax * sy; gy[3 * w + x] = m11 * fx * sy;
        }
    }
}

static inline __attribute__((always_inline))
void sample_body(float *y, long ys, const float *img, long ps, long c, const int32_t *o, const float *wt, long w) {
    for (long ch = 0; ch < c; ch++) {
        const float *p = img + ch * ps;
        float *restrict out = y + ch * ys;
        for (long x = 0; x < w; x++)
            out[x] = wt[x] * p[o[x]] + wt[w + x] * p[o[w + x]] + wt[2 * w + x] * p[o[2 * w + x]] + wt[3 * w + x] * p[o[3 * w + x]];
    }
}

static inline __attribute__((always_inline))
void scatter_body(float *dimg, long ps, const float *g, long gs, long c, const int32_t *o, const float *wt, long w) {
    for (long ch = 0; ch < c; ch++) {
        float *dp = dimg + ch * ps;
        const float *gr = g + ch * gs;
        for (long x = 0; x < w; x++) {
            const float gv = gr[x];
            dp[o[x]] += wt[x] * gv; dp[o[w + x]] += wt[w + x] * gv;
            dp[o[2 * w + x]] += wt[2 * w + x] * gv; dp[o[3 * w + x]] += wt[3 * w + x] * gv;
        }
    }
}

static inline __attribute__((always_inline))
void flow_grad_body(float *du, float *dv, const float *g, long gs, const float *img, long ps, long c,
                    const int32_t *o, const float *gx, const float *gy, float *restrict su, float *restrict sv, long w) {
    for (long x = 0; x < w; x++) { su[x] = 0.f; sv[x] = 0.f; }
    for (long ch = 0; ch < c; ch++) {
        const float *p = img + ch * ps, *gr = g + ch * gs;
        for (long x = 0; x < w; x++) {
            const float v00 = p[o[x]], v01 = p[o[w + x]], v10 = p[o[2 * w + x]], v11 = p[o[3 * w + x]];
            const float ddx = gx[x] * v00 + gx[w + x] * v01 + gx[2 * w + x] * v10 + gx[3 * w + x] * v11;
            const float ddy = gy[x] * v00 + gy[w + x] * v01 + gy[2 * w + x] * v10 + gy[3 * w + x] * v11;
            su[x] += gr[x] * ddx; sv[x] += gr[x] * ddy;
        }
    }
    for (long x = 0; x < w; x++) { du[x] += su[x]; dv[x] += sv[x]; }
}

#define WARP_FORMS(SUFFIX)                                                                              \
static void corners_##SUFFIX(int32_t *o, float *wt, float *gx, float *gy, const float *u, const float *v, \
                             long py, long h, long w, int border) {                                    \
    if (gx) { if (border) corners_body(o, wt, gx, gy, u, v, py, h, w, 1, 1); else corners_body(o, wt, gx, gy, u, v, py, h, w, 0, 1); } \
    else    { if (border) corners_body(o, wt, gx, gy, u, v, py, h, w, 1, 0); else corners_body(o, wt, gx, gy, u, v, py, h, w, 0, 0); } \
}                                                                                                       \
static void sample_##SUFFIX(float *y, long ys, const float *img, long ps, long c, const int32_t *o, const float *wt, long w) { \
    sample_body(y, ys, img, ps, c, o, wt, w);                                                           \
}                                                                                                       \
static void scatter_##SUFFIX(float *dimg, long ps, const float *g, long gs, long c, const int32_t *o, const float *wt, long w) { \
    scatter_body(dimg, ps, g, gs, c, o, wt, w);                                                         \
}                                                                                                       \
static void flow_grad_##SUFFIX(float *du, float *dv, const float *g, long gs, const float *img, long ps, long c, \
                               const int32_t *o, const float *gx, const float *gy, float *su, float *sv, long w) { \
    flow_grad_body(du, dv, g, gs, img, ps, c, o, gx, gy, su, sv, w);                                    \
}

WARP_FORMS(portable)
#if defined(__x86_64__)
#pragma clang attribute push (__attribute__((target("avx2,fma"))), apply_to = function)
WARP_FORMS(avx2)
#pragma clang attribute pop
#pragma clang attribute push (__attribute__((target("avx512f,avx512vl,avx2,fma"))), apply_to = function)
WARP_FORMS(avx512)
#pragma clang attribute pop
#define DISPATCH(name, ...)                                                                             \
    if (mdf_use_avx512(isa)) { name##_avx512(__VA_ARGS__); return; }                                    \
    if (mdf_use_avx2(isa)) { name##_avx2(__VA_ARGS__); return; }                                        \
    name##_portable(__VA_ARGS__)
#else
#define DISPATCH(name, ...) name##_portable(__VA_ARGS__)
#endif

void mdf_warp_corners(int32_t *o, float *wt, float *gx, float *gy, const float *u, const float *v,
                      long py, long h, long w, int border, int isa) {
    DISPATCH(corners, o, wt, gx, gy, u, v, py, h, w, border);
}

void mdf_warp_sample(float *y, long ys, const float *img, long ps, long c, const int32_t *o, const float *wt, long w, int isa) {
    DISPATCH(sample, y, ys, img, ps, c, o, wt, w);
}

void mdf_warp_scatter(float *dimg, long ps, const float *g, long gs, long c, const int32_t *o, const float *wt, long w, int isa) {
    DISPATCH(scatter, dimg, ps, g, gs, c, o, wt, w);
}

void mdf_warp_flow_grad(float *du, float *dv, const float *g, long gs, const float *img, long ps, long c,
                        const int32_t *o, const float *gx, const float *gy, float *scratch, long w, int isa) {
    DISPATCH(flow_grad, du, dv, g, gs, img, ps, c, o, gx, gy, scratch, scratch + w, w);
}
