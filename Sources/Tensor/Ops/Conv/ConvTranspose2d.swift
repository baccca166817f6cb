// Transposed 2-D convolution (groups 1) on OpenBLAS: forward (Wᵀ·x, then col2im) and backward
// (im2col of dy, then sgemm) kernels, and the Tensor op that records them.
import Foundation

/// y = conv_transpose(x, w) + b, the adjoint of conv2d in x.  x: (n, cin, h, w);
/// wt: (cin, cout, kh, kw) as PyTorch stores ConvTranspose2d; y: (n, cout, oh, ow).
/// Per image: col = Wᵀ·x (cout·kh·kw × h·w), then col2im into y.
public func convTranspose2dForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                                   _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, oh: Int, ow: Int,
                                   _ g: ConvGeometry) {
    let k = cout * g.kh * g.kw, hw = h * w, ohw = oh * ow
    let rows = bandRows(k: k, ow: w, oh: h)
    let scratch = Storage(count: k * rows * w)
    defer { withExtendedLifetime(scratch) {} }
    for img in 0..<n {
        let yi = y + img * cout * ohw, xi = x + img * cin * hw
        if let b { for c in 0..<cout { (yi + c * ohw).update(repeating: b[c], count: ohw) } }
        else { yi.update(repeating: 0, count: cout * ohw) }
        var r0 = 0
        while r0 < h {
            let r1 = min(h, r0 + rows), cols = (r1 - r0) * w
            sgemm(transA: true, m: k, n: cols, k: cin, wt, lda: k, xi + r0 * w, ldb: hw, scratch.pointer, ldc: cols)
            col2im(yi, scratch.pointer, channels: cout, h: oh, w: ow, oh: h, ow: w, oy0: r0, oy1: r1, g)
            r0 = r1
        }
    }
}

/// Gradients of conv_transpose2d: dx += W·im2col(dy); dw += x·im2col(dy)ᵀ; db += Σ dy. Accumulates.
public func convTranspose2dBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                                    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                                    n: Int, cin: Int, h: Int, w: Int, cout: Int, oh: Int, ow: Int, _ g: ConvGeometry) {
    let k = cout * g.kh * g.kw, hw = h * w, ohw = oh * ow
    if let db {
        for img in 0..<n { for c in 0..<cout {
            let p = dy + (img * cout + c) * ohw
            var s: Float = 0
            for i in 0..<ohw { s += p[i] }
            db[c] += s
        } }
    }
    if dx == nil && dw == nil { return }
    let rows = bandRows(k: k, ow: w, oh: h)
    let scratch = Storage(count: k * rows * w)
    defer { withExtendedLifetime(scratch) {} }
    for img in 0..<n {
        let dyi = dy + img * cout * ohw, xi = x + img * cin * hw
        var r0 = 0
        while r0 < h {
            let r1 = min(h, r0 + rows), cols = (r1 - r0) * w
            im2col(scratch.pointer, dyi, channels: cout, h: oh, w: ow, oh: h, ow: w, oy0: r0, oy1: r1, g)
            if let dx { sgemm(m: cin, n: cols, k: k, wt, lda: k, scratch.pointer, ldb: cols, beta: 1, dx + img * cin * hw + r0 * w, ldc: hw) }
            if let dw { sgemm(transB: true, m: cin, n: k, k: cols, xi + r0 * w, lda: hw, scratch.pointer, ldb: cols, beta: 1, dw, ldc: k) }
            r0 = r1
        }
    }
}

extension Tensor {
    /// Transposed 2-D convolution (groups 1).  self: (N, Cin, H, W); weight: (Cin, Cout, kh, kw).
    public func convTranspose2d(_ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, outputPadding: Int = 0) -> Tensor {
        let x = self
        require(x.rank == 4 && weight.rank == 4 && g.groups == 1 && weight.shape[0] == x.shape[1]
                && weight.shape[2] == g.kh && weight.shape[3] == g.kw, "convTranspose2d",
                "input \(describe(x.shape)) does not fit weight \(describe(weight.shape)) with \(g)")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = weight.shape[1]
        if let bias { require(bias.count == cout, "convTranspose2d", "bias \(describe(bias.shape)) for \(cout) output channels") }
        let (oh, ow) = g.transposedOutputSize(h: h, w: w, outputPadding: outputPadding)
        let y = Tensor(uninitialized: [n, cout, oh, ow])
        convTranspose2dForward(y.data, x.data, weight.data, bias?.data, n: n, cin: cin, h: h, w: w, cout: cout, oh: oh, ow: ow, g)
        Tape.record(y, inputs: bias.map { [x, weight, $0] } ?? [x, weight]) { dy in
            convTranspose2dBackward(dx: x.gradIfNeeded, dw: weight.gradIfNeeded, db: bias?.gradIfNeeded, dy, x.data, weight.data,
                                    n: n, cin: cin, h: h, w: w, cout: cout, oh: oh, ow: ow, g)
        }
        return y
    }
}
