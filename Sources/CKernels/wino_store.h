// The store at the end of the F(4, 5) and F(4×4, 3×3) output transforms (winograd1d.c, winograd4.c).
#ifndef MDFLOW_CKERNELS_WINO_STORE_H
#define MDFLOW_CKERNELS_WINO_STORE_H

/// One output value: mode 0 y = v + bias; 1 y = leaky(v + bias); 2 y += v. Called with a constant
/// mode, so each caller's loop compiles to its own form.
static inline __attribute__((always_inline))
void mdf_wino_store(float *y, float v, float bias, float slope, const int mode) {
    if (mode == 2) { *y += v; return; }
    v += bias;
    if (mode == 1) v = v > 0 ? v : slope * v;
    *y = v;
}

#endif
