// Convolution weights in the forms the kernels read: 4-row panels for the implicit GEMM, and the
// Winograd-transformed weights of F(2×2, 3×3), F(4×4, 3×3) and F(4, 5) in those panels.
// `packForConvolve` (Conv2d.swift) picks the form; DerivedWeights caches it.
import CKernels

/// Packs an m × k row-major matrix (row stride lda) into panels of 4 rows: panel p holds
/// a[4p ..< 4p + 4][kk] for kk = 0..<k, zero rows past m. dst: ((m + 3) / 4) · k · 4 floats.
func packPanels4(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, m: Int, k: Int, lda: Int) {
    let panels = (m + 3) / 4
    for p in 0..<panels {
        let d = dst + p * k * 4
        for r in 0..<4 {
            let row = p * 4 + r
            if row < m {
                let src = a + row * lda
                for kk in 0..<k { d[kk * 4 + r] = src[kk] }
            } else {
                for kk in 0..<k { d[kk * 4 + r] = 0 }
            }
        }
    }
}

/// Floats of one group's packed weights.
@inline(__always) func packedPanelFloats(m: Int, k: Int) -> Int { (m + 3) / 4 * k * 4 }

/// Packs conv2d weights (cout, cin/groups, kh, kw) for `directConv`, group by group.
func packConvWeights(_ wt: UnsafePointer<Float>, cout: Int, kg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: kg)
    let packed = Storage(count: groups * per)
    for grp in 0..<groups { packPanels4(packed.pointer + grp * per, wt + grp * mg * kg, m: mg, k: kg, lda: kg) }
    return packed
}

/// Transforms and packs 3×3 weights (cout, cg, 3, 3) for `winogradConv`: for each ξ and group,
/// U[ξ] (mg × cg) in the 4-row panels of `packPanels4`. Result: 16 · groups · packedPanelFloats(mg, cg).
func packWinogradWeights(_ wt: UnsafePointer<Float>, cout: Int, cg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: cg)
    let packed = Storage(count: 16 * groups * per)
    let panels = (mg + 3) / 4, pp = SendablePointer(packed.pointer)
    // Panel by panel, four kernels at a time: each of the 16 planes is written in order.
    parallelFor(groups * panels, minCount: groups * mg * cg >= 1 << 12 ? 2 : Int.max) { tasks in
        for t in tasks {
            let grp = t / panels, p = t % panels
            for c in 0..<cg {
                let kernel = { (r: Int) -> UnsafePointer<Float>? in
                    4 * p + r < mg ? wt + ((grp * mg + 4 * p + r) * cg + c) * 9 : nil
                }
                var g: (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?) =
                    (kernel(0), kernel(1), kernel(2), kernel(3))
                withUnsafePointer(to: &g) { gp in
                    gp.withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: 4) {
                        mdf_wino_weight4(pp.base + grp * per + p * cg * 4 + c * 4, groups * per, $0)
                    }
                }
            }
        }
    }
    return packed
}

/// Transforms and packs 3×3 weights (cout, cg, 3, 3) for `winogradConv` with 4 × 4 `WinogradTiles`: for
/// each ξ = 6a + b and group, (G g Gᵀ)[a][b] (mg × cg) in 4-row panels. Result:
/// 36 · groups · packedPanelFloats(mg, cg).
func packWinograd4Weights(_ wt: UnsafePointer<Float>, cout: Int, cg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: cg), panels = (mg + 3) / 4
    let packed = Storage(count: 36 * groups * per)
    let pp = SendablePointer(packed.pointer)
    parallelFor(groups * panels, minCount: groups * mg * cg >= 1 << 12 ? 2 : Int.max) { tasks in
        for t in tasks {
            let grp = t / panels, p = t % panels
            for c in 0..<cg {
                for r in 0..<4 {
                    let co = 4 * p + r, u = pp.base + grp * per + p * cg * 4 + c * 4 + r
                    if co < mg {
                        mdf_wino4_weight(u, groups * per, wt + ((grp * mg + co) * cg + c) * 9)
                    } else {
                        for xi in 0..<36 { u[xi * groups * per] = 0 }
                    }
                }
            }
        }
    }
    return packed
}

/// Transforms and packs 1×5 or 5×1 weights (cout, cg, 5 taps) for `winogradConv` with
/// `Winograd5Tiles`: for each ξ and group, (G g)[ξ] (mg × cg) in 4-row panels. Result:
/// 8 · groups · packedPanelFloats(mg, cg).
func packWinograd5Weights(_ wt: UnsafePointer<Float>, cout: Int, cg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: cg), panels = (mg + 3) / 4
    let packed = Storage(count: 8 * groups * per)
    let gt = Winograd5Tiles.kernelTransform
    for grp in 0..<groups {
        for p in 0..<panels {
            for c in 0..<cg {
                for r in 0..<4 {
                    let co = 4 * p + r
                    for xi in 0..<8 {
                        var u = 0.0
                        if co < mg {
                            let k = wt + ((grp * mg + co) * cg + c) * 5
                            for j in 0..<5 { u += gt[xi][j] * Double(k[j]) }
                        }
                        packed.pointer[(xi * groups + grp) * per + p * cg * 4 + c * 4 + r] = Float(u)
                    }
                }
            }
        }
    }
    return packed
}
