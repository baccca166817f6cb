import Foundation

// Instance normalization (per sample and channel, affine off: RAFT's InstanceNorm2d) and batch
// normalization (per channel over the batch and space, with weight and bias: RAFT's BatchNorm2d).
// Statistics are accumulated in Double; variances are biased (divide by the element count) when
// they normalize, as in PyTorch.

// MARK: - Instance norm kernels

/// Σ f(x[i]) in Double over n floats, eight running sums (two vectors of four doubles) so the loop
/// vectorizes; a fixed order for a given n.
@inline(__always)
private func doubleSum(_ n: Int, _ load: (Int) -> SIMD8<Float>, _ scalar: (Int) -> Double) -> Double {
    var a0 = SIMD4<Double>(), a1 = SIMD4<Double>()
    var i = 0
    while i + 8 <= n {
        let v = load(i)
        a0 += SIMD4<Double>(v.lowHalf); a1 += SIMD4<Double>(v.highHalf)
        i += 8
    }
    var s = (a0 + a1).sum()
    while i < n { s += scalar(i); i += 1 }
    return s
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}

/// y = (x − mean) · invstd per plane, saving mean and invstd = 1/√(var + eps) for backward.
/// x, y: (planes, size)   mean, invstd: (planes)
func instanceNormForward(_ y: UnsafeMutablePointer<Float>, _ mean: UnsafeMutablePointer<Float>,
                         _ invstd: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                         planes: Int, size: Int, eps: Float) {
    parallelFor(planes, minCount: max(2, (1 << 15) / max(1, size))) { range in
        for p in range {
            let xp = x + p * size, yp = y + p * size
            let m = doubleSum(size, { load8(xp, $0) }, { Double(xp[$0]) }) / Double(size)
            // Deviations from the (Float) mean and their squares in Float, summed in Double.
            let mf = Float(m)
            let v = doubleSum(size, { let d = load8(xp, $0) - mf; return d * d }, { let d = xp[$0] - mf; return Double(d * d) })
            let inv = Float(1 / (v / Double(size) + Double(eps)).squareRoot())
            for i in 0..<size { yp[i] = (xp[i] - mf) * inv }
            mean[p] = mf; invstd[p] = inv
        }
    }
}

/// dx ← invstd · (dy − mean(dy) − x̂ · mean(dy · x̂)) per plane, x̂ = (x − mean) · invstd, assigned or
/// added as the sink says.   dy, x, dx: (planes, size)   mean, invstd: (planes)
func instanceNormBackward(_ dx: GradientSink, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                          _ mean: UnsafePointer<Float>, _ invstd: UnsafePointer<Float>, planes: Int, size: Int) {
    parallelFor(planes, minCount: max(2, (1 << 15) / max(1, size))) { range in
        for p in range {
            let xp = x + p * size, gp = dy + p * size
            let m = mean[p], inv = invstd[p]
            let sg = doubleSum(size, { load8(gp, $0) }, { Double(gp[$0]) })
            let sgx = doubleSum(size, { load8(gp, $0) * ((load8(xp, $0) - m) * inv) },
                                { Double(gp[$0] * ((xp[$0] - m) * inv)) })
            let mg = Float(sg / Double(size)), mgx = Float(sgx / Double(size))
            dx.write(p * size..<(p + 1) * size) { inv * (dy[$0] - mg - (x[$0] - m) * inv * mgx) }
        }
    }
}

// MARK: - Batch norm kernels

/// Per-channel mean and biased variance over the batch and the inner (spatial) elements.
/// x: (n, c, inner)   mean, variance: (c)
func batchNormStatistics(_ mean: UnsafeMutablePointer<Float>, _ variance: UnsafeMutablePointer<Float>,
                         _ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int) {
    let count = Double(n * inner)
    parallelFor(c, minCount: max(2, (1 << 15) / max(1, n * inner))) { range in
        for ch in range {
            var s = 0.0
            for b in 0..<n {
                let xp = x + (b * c + ch) * inner
                for i in 0..<inner { s += Double(xp[i]) }
            }
            let m = s / count
            var v = 0.0
            for b in 0..<n {
                let xp = x + (b * c + ch) * inner
                for i in 0..<inner { let d = Double(xp[i]) - m; v += d * d }
            }
            mean[ch] = Float(m); variance[ch] = Float(v / count)
        }
    }
}

/// y = (x − mean[c]) · invstd[c] · weight[c] + bias[c]; a nil weight is 1, a nil bias 0.
/// x, y: (n, c, inner)   mean, invstd, weight, bias: (c)
func batchNormForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                      _ mean: UnsafePointer<Float>, _ invstd: UnsafePointer<Float>,
                      _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
                      n: Int, c: Int, inner: Int) {
    parallelFor(n * c, minCount: max(2, (1 << 16) / max(1, inner))) { range in
        for plane in range {
            let ch = plane % c
            let scale = invstd[ch] * (weight?[ch] ?? 1)
            let shift = (bias?[ch] ?? 0) - mean[ch] * scale
            let xp = x + plane * inner, yp = y + plane * inner
            for i in 0..<inner { yp[i] = xp[i] * scale + shift }
        }
    }
}

/// Backward of batch norm. Accumulates; nil skips an output.
///   dweight += Σ dy · x̂,  dbias += Σ dy  (sums over batch and inner; x̂ = (x − mean) · invstd)
///   training (batch statistics): dx += weight · invstd · (dy − mean(dy) − x̂ · mean(dy · x̂))
///   eval (fixed statistics):     dx += weight · invstd · dy
/// dy, x, dx: (n, c, inner)   mean, invstd, weight, dweight, dbias: (c)
func batchNormBackward(_ dx: UnsafeMutablePointer<Float>?, _ dweight: UnsafeMutablePointer<Float>?,
                       _ dbias: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                       _ mean: UnsafePointer<Float>, _ invstd: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?,
                       n: Int, c: Int, inner: Int, training: Bool) {
    let count = Double(n * inner)
    parallelFor(c, minCount: max(2, (1 << 15) / max(1, n * inner))) { range in
        for ch in range {
            let m = mean[ch], inv = invstd[ch]
            var sg = 0.0, sgx = 0.0
            for b in 0..<n {
                let xp = x + (b * c + ch) * inner, gp = dy + (b * c + ch) * inner
                for i in 0..<inner {
                    let g = Double(gp[i])
                    sg += g; sgx += g * Double((xp[i] - m) * inv)
                }
            }
            if let dweight { dweight[ch] += Float(sgx) }
            if let dbias { dbias[ch] += Float(sg) }
            guard let dx else { continue }
            let scale = inv * (weight?[ch] ?? 1)
            let mg: Float = training ? Float(sg / count) : 0
            let mgx: Float = training ? Float(sgx / count) : 0
            for b in 0..<n {
                let xp = x + (b * c + ch) * inner, gp = dy + (b * c + ch) * inner, dp = dx + (b * c + ch) * inner
                for i in 0..<inner { dp[i] += scale * (gp[i] - mg - (xp[i] - m) * inv * mgx) }
            }
        }
    }
}

// MARK: - Tensor ops

extension Tensor {
    /// Instance normalization: each (sample, channel) plane to zero mean and unit biased variance,
    /// no affine parameters (PyTorch `InstanceNorm2d` defaults).
    /// x: (N, C, …) → same shape
    public func instanceNorm(eps: Float = 1e-5) -> Tensor {
        let x = self
        require(rank >= 3, "instanceNorm", "input \(describe(shape)) must be (N, C, H, W) or (N, C, L)")
        let planes = shape[0] * shape[1], size = count / max(1, planes)
        require(size >= 1, "instanceNorm", "input \(describe(shape)) has empty planes")
        let y = Tensor(uninitialized: shape)
        let stats = Tensor(uninitialized: [2, planes])
        let mean = stats.data, invstd = stats.data + planes
        instanceNormForward(y.data, mean, invstd, x.data, planes: planes, size: size, eps: eps)
        Tape.record(y, inputs: [x]) { dy in
            guard let dx = x.gradSink else { return }
            instanceNormBackward(dx, dy, x.data, stats.data, stats.data + planes, planes: planes, size: size)
        }
        return y
    }

    /// Batch normalization over channel dimension 1, PyTorch `F.batch_norm`.
    /// - training: normalizes with the batch mean and biased variance; when given, `runningMean`
    ///   and `runningVar` are updated in place (not on the tape) as
    ///   r ← (1 − momentum)·r + momentum·stat, with the UNBIASED batch variance.
    /// - otherwise: normalizes with `runningMean` and `runningVar` (both required).
    /// `weight` and `bias` (C) may be nil (1 and 0) and receive gradients when they require them.
    /// x: (N, C, …) → same shape
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
        let x = self
        require(rank >= 2, "batchNorm", "input \(describe(shape)) must be (N, C, …)")
        let n = shape[0], c = shape[1], inner = count / max(1, n * c)
        for (name, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            if let t { require(t.count == c, "batchNorm", "\(name) \(describe(t.shape)) must hold \(c) values for input \(describe(shape))") }
        }
        let stats = Tensor(uninitialized: [2, c])
        let mean = stats.data, invstd = stats.data + c
        if training {
            require(n * inner > 1, "batchNorm", "training needs more than one value per channel, input \(describe(shape))")
            let variance = invstd
            batchNormStatistics(mean, variance, x.data, n: n, c: c, inner: inner)
            let unbias = Float(n * inner) / Float(n * inner - 1)
            if let rm = runningMean?.data {
                for ch in 0..<c { rm[ch] = (1 - momentum) * rm[ch] + momentum * mean[ch] }
            }
            if let rv = runningVar?.data {
                for ch in 0..<c { rv[ch] = (1 - momentum) * rv[ch] + momentum * variance[ch] * unbias }
            }
            for ch in 0..<c { invstd[ch] = 1 / (variance[ch] + eps).squareRoot() }
        } else {
            guard let runningMean, let runningVar else {
                shapeFailure("batchNorm", "eval mode needs runningMean and runningVar for input \(describe(shape))")
            }
            for ch in 0..<c {
                mean[ch] = runningMean.data[ch]
                invstd[ch] = 1 / (runningVar.data[ch] + eps).squareRoot()
            }
        }
        let y = Tensor(uninitialized: shape)
        batchNormForward(y.data, x.data, mean, invstd, weight?.data, bias?.data, n: n, c: c, inner: inner)
        var inputs = [x]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        Tape.record(y, inputs: inputs) { dy in
            batchNormBackward(x.gradIfNeeded, weight?.gradIfNeeded, bias?.gradIfNeeded, dy, x.data,
                              stats.data, stats.data + c, weight?.data, n: n, c: c, inner: inner, training: training)
        }
        return y
    }
}
