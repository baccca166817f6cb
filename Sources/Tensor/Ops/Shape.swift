import Foundation

/// Row-major strides of a shape.
@inline(__always) func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
    return s
}

/// Spatial padding mode.
public enum PadMode: Sendable { case zeros, replicate }

// MARK: - Kernels

/// Walks y = permute(x) run by run along y's last dimension: body(yOffset, xOffset, run, xStride).
@inline(__always)
func permuteWalk(xShape: [Int], perm: [Int], _ body: (Int, Int, Int, Int) -> Void) {
    let r = xShape.count
    let xs = contiguousStrides(xShape)
    let yShape = perm.map { xShape[$0] }
    let src = perm.map { xs[$0] }          // x stride for each y dimension
    let count = xShape.reduce(1, *)
    if count == 0 { return }
    let inner = yShape[r - 1]
    var idx = [Int](repeating: 0, count: r)
    var off = 0, o = 0
    while o < count {
        body(o, off, inner, src[r - 1])
        o += inner
        var d = r - 2
        while d >= 0 {
            idx[d] += 1; off += src[d]
            if idx[d] < yShape[d] { break }
            off -= src[d] * yShape[d]; idx[d] = 0; d -= 1
        }
        if d < 0 { break }
    }
}

/// y = x with dimensions reordered: y.shape[i] = xShape[perm[i]].
public func permuteForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, xShape: [Int], perm: [Int]) {
    permuteWalk(xShape: xShape, perm: perm) { yo, xo, n, s in for i in 0..<n { y[yo + i] = x[xo + i * s] } }
}

/// dx += dy permuted back, or dx = with `assign` (a permutation writes every element once).
public func permuteBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, xShape: [Int], perm: [Int],
                            assign: Bool = false) {
    if assign {
        permuteForward(dx, dy, xShape: perm.map { xShape[$0] }, perm: inversePermutation(perm))
        return
    }
    permuteWalk(xShape: xShape, perm: perm) { yo, xo, n, s in for i in 0..<n { dx[xo + i * s] += dy[yo + i] } }
}

/// The order that undoes `perm`: inverse[perm[i]] = i.
func inversePermutation(_ perm: [Int]) -> [Int] {
    var inverse = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    return inverse
}

/// Spatial pad of planes.  x: (planes, h, w); y: (planes, h+top+bottom, w+left+right).
public func pad2dForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, planes: Int, h: Int, w: Int,
                         top: Int, bottom: Int, left: Int, right: Int, mode: PadMode) {
    let oh = h + top + bottom, ow = w + left + right
    parallelFor(planes, minCount: 64) { r in
        for p in r {
            let xp = x + p * h * w, yp = y + p * oh * ow
            for oy in 0..<oh {
                var iy = oy - top
                let row = yp + oy * ow
                if iy < 0 || iy >= h {
                    if mode == .zeros { row.update(repeating: 0, count: ow); continue }
                    iy = min(max(iy, 0), h - 1)
                }
                let src = xp + iy * w
                if mode == .zeros {
                    if left > 0 { row.update(repeating: 0, count: left) }
                    if right > 0 { (row + left + w).update(repeating: 0, count: right) }
                } else {
                    for i in 0..<left { row[i] = src[0] }
                    for i in 0..<right { row[left + w + i] = src[w - 1] }
                }
                (row + left).update(from: src, count: w)
            }
        }
    }
}

/// Backward of pad2dForward. Accumulates.
public func pad2dBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, planes: Int, h: Int, w: Int,
                          top: Int, bottom: Int, left: Int, right: Int, mode: PadMode) {
    let oh = h + top + bottom, ow = w + left + right
    parallelFor(planes, minCount: 64) { r in
        for p in r {
            let dxp = dx + p * h * w, dyp = dy + p * oh * ow
            for oy in 0..<oh {
                var iy = oy - top
                if iy < 0 || iy >= h {
                    if mode == .zeros { continue }
                    iy = min(max(iy, 0), h - 1)
                }
                let row = dyp + oy * ow, dst = dxp + iy * w
                for i in 0..<w { dst[i] += row[left + i] }
                if mode == .replicate {
                    for i in 0..<left { dst[0] += row[i] }
                    for i in 0..<right { dst[w - 1] += row[left + w + i] }
                }
            }
        }
    }
}

// MARK: - Tensor ops

extension Tensor {
    /// Same data, new shape (one dimension may be -1). Shares storage.
    public func reshape(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            require(known > 0 && count % known == 0, "reshape", "cannot reshape \(describe(shape)) to \(describe(newShape))")
            s[i] = count / known
        }
        require(s.reduce(1, *) == count, "reshape", "cannot reshape \(describe(shape)) (\(count) elements) to \(describe(newShape))")
        let x = self
        let y = Tensor(shape: s, storage: storage)
        // The gradient is dy itself: one run copy (or sum) the threads share.
        Tape.record(y, inputs: [x]) { dy in
            guard let dx = x.gradSink else { return }
            runPieces([Piece(dst: dx.pointer, src: dy, count: x.count)], accumulate: !dx.assign)
        }
        return y
    }

    /// Dimensions reordered: y.shape[i] = shape[perm[i]].
    public func permute(_ perm: [Int]) -> Tensor {
        require(perm.count == rank && Set(perm) == Set(0..<rank), "permute", "order \(perm) for shape \(describe(shape))")
        let x = self, xShape = shape
        let y = Tensor(uninitialized: perm.map { xShape[$0] })
        // Dimensions that stay last move together: a channel shuffle (FastFlowNet's decoders) moves
        // whole planes, copied as runs the threads share instead of one element at a time.
        var k = rank
        while k > 0 && perm[k - 1] == k - 1 { k -= 1 }
        let run = xShape[k...].reduce(1, *)
        if k < rank && k > 0 && run >= 16 {
            var runs: [(y: Int, x: Int)] = []
            permuteWalk(xShape: Array(xShape[..<k]) + [run], perm: Array(perm[..<k]) + [k]) { yo, xo, _, _ in runs.append((yo, xo)) }
            runPieces(runs.map { Piece(dst: y.data + $0.y, src: x.data + $0.x, count: run) }, accumulate: false)
            Tape.record(y, inputs: [x]) { dy in
                guard let dx = x.gradSink else { return }
                runPieces(runs.map { Piece(dst: dx.pointer + $0.x, src: dy + $0.y, count: run) }, accumulate: !dx.assign)
            }
            return y
        }
        permuteForward(y.data, x.data, xShape: xShape, perm: perm)
        Tape.record(y, inputs: [x]) { dy in
            guard let dx = x.gradSink else { return }
            permuteBackward(dx.pointer, dy, xShape: xShape, perm: perm, assign: dx.assign)
        }
        return y
    }

    /// Concatenates along `dim`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], dim: Int) -> Tensor {
        require(!parts.isEmpty, "concat", "no tensors")
        let first = parts[0].shape
        let d = dim < 0 ? dim + first.count : dim
        for p in parts {
            var a = p.shape, b = first
            require(a.count == b.count, "concat", "shapes \(describe(p.shape)) and \(describe(first)) differ in rank")
            a[d] = 0; b[d] = 0
            require(a == b, "concat", "shapes \(describe(p.shape)) and \(describe(first)) differ outside dim \(d)")
        }
        var out = first
        out[d] = parts.reduce(0) { $0 + $1.shape[d] }
        let outer = first[..<d].reduce(1, *), inner = first[(d + 1)...].reduce(1, *)
        let y = Tensor(uninitialized: out)
        let rowOut = out[d] * inner
        var pieces: [Piece] = [], offset = 0
        for p in parts {
            let n = p.shape[d] * inner
            for o in 0..<outer { pieces.append(Piece(dst: y.data + o * rowOut + offset, src: p.data + o * n, count: n)) }
            offset += n
        }
        runPieces(pieces, accumulate: false)
        Tape.record(y, inputs: parts) { dy in
            // A part's first gradient is copied, a further one (or a part given twice) added.
            var copies: [Piece] = [], adds: [Piece] = [], offset = 0
            for p in parts {
                let n = p.shape[d] * inner
                if let sink = p.gradSink {
                    let dp = sink.pointer
                    for o in 0..<outer {
                        let piece = Piece(dst: dp + o * n, src: dy + o * rowOut + offset, count: n)
                        if sink.assign { copies.append(piece) } else { adds.append(piece) }
                    }
                }
                offset += n
            }
            runPieces(copies, accumulate: false)
            runPieces(adds, accumulate: true)
        }
        return y
    }

    /// A contiguous copy of `length` entries of `dim` starting at `start`.
    public func slice(dim: Int, start: Int, length: Int) -> Tensor {
        let (out, outer, rowIn, offset, n) = sliceLayout("slice", dim: dim, start: start, length: length)
        let x = self
        let y = Tensor(uninitialized: out)
        runPieces((0..<outer).map { Piece(dst: y.data + $0 * n, src: x.data + $0 * rowIn + offset, count: n) },
                  accumulate: false)
        Tape.record(y, inputs: [x]) { dy in
            let dx = x.gradPointer()
            runPieces((0..<outer).map { Piece(dst: dx + $0 * rowIn + offset, src: dy + $0 * n, count: n) },
                      accumulate: true)
        }
        return y
    }

    /// Where a slice start ..< start + length along `dim` lies (`op` names the caller in errors): its
    /// shape, and `outer` runs of n floats, run o at o · rowIn + offset of this tensor.
    func sliceLayout(_ op: String, dim: Int, start: Int, length: Int) -> (shape: [Int], outer: Int, rowIn: Int, offset: Int, n: Int) {
        let d = dim < 0 ? dim + rank : dim
        require(d >= 0 && d < rank && start >= 0 && length >= 0 && start + length <= shape[d], op,
                "range \(start)..<\(start + length) of dim \(dim) in shape \(describe(shape))")
        var out = shape
        out[d] = length
        let outer = shape[..<d].reduce(1, *), inner = shape[(d + 1)...].reduce(1, *)
        return (out, outer, shape[d] * inner, start * inner, length * inner)
    }

    /// Splits along `dim` into pieces of the given sizes.
    public func split(_ sizes: [Int], dim: Int) -> [Tensor] {
        let d = dim < 0 ? dim + rank : dim
        require(sizes.reduce(0, +) == shape[d], "split", "sizes \(sizes) do not sum to dim \(d) of \(describe(shape))")
        var start = 0
        return sizes.map { n in defer { start += n }; return slice(dim: d, start: start, length: n) }
    }

    /// Pads the last two dimensions (left, right, top, bottom), with zeros or edge replication.
    public func pad(left: Int = 0, right: Int = 0, top: Int = 0, bottom: Int = 0, mode: PadMode = .zeros) -> Tensor {
        require(rank >= 2 && min(left, right, top, bottom) >= 0, "pad", "padding \([left, right, top, bottom]) for shape \(describe(shape))")
        let h = shape[rank - 2], w = shape[rank - 1], planes = count / max(h * w, 1)
        require(mode == .zeros || (h > 0 && w > 0), "pad", "replicate padding of an empty plane \(describe(shape))")
        var out = shape
        out[rank - 2] += top + bottom; out[rank - 1] += left + right
        let x = self
        let y = Tensor(uninitialized: out)
        pad2dForward(y.data, x.data, planes: planes, h: h, w: w, top: top, bottom: bottom, left: left, right: right, mode: mode)
        Tape.record(y, inputs: [x]) { dy in
            pad2dBackward(x.gradPointer(), dy, planes: planes, h: h, w: w, top: top, bottom: bottom, left: left, right: right, mode: mode)
        }
        return y
    }

    /// ShuffleNet channel shuffle of (N, C, H, W) with `groups` groups: output channel k·g + j
    /// takes input channel j·(C/g) + k.
    public func channelShuffle(groups g: Int) -> Tensor {
        require(rank == 4 && shape[1] % g == 0, "channelShuffle", "\(g) groups for shape \(describe(shape))")
        if g == 1 { return self }
        let n = shape[0], c = shape[1], hw = shape[2] * shape[3], per = c / g
        // (N, g, per, HW) → (N, per, g, HW)
        return reshape([n, g, per, hw]).permute([0, 2, 1, 3]).reshape([n, c, shape[2], shape[3]])
    }
}

/// One contiguous run of a concat or slice: count floats from src to dst.
struct Piece {
    let dst: UnsafeMutablePointer<Float>
    let src: UnsafePointer<Float>
    let count: Int
}

/// dst = src (or dst += src with `accumulate`) for every piece, cut into runs of at most 32 Ki
/// floats that the threads share once the whole is large enough to be worth it. Accumulating
/// pieces whose destinations overlap (a tensor concatenated with itself) run serially, in order.
func runPieces(_ pieces: [Piece], accumulate: Bool) {
    if accumulate {
        let byDst = pieces.sorted { $0.dst < $1.dst }
        for (a, b) in zip(byDst, byDst.dropFirst()) where a.dst + a.count > b.dst {
            for p in pieces { for i in 0..<p.count { p.dst[i] += p.src[i] } }
            return
        }
    }
    let run = 1 << 15
    var runs: [Piece] = []
    var total = 0
    for p in pieces {
        total += p.count
        var i = 0
        while i < p.count {
            let m = min(run, p.count - i)
            runs.append(Piece(dst: p.dst + i, src: p.src + i, count: m))
            i += m
        }
    }
    parallelFor(runs.count, minCount: total >= 1 << 16 ? 2 : Int.max) { r in
        for t in r {
            let p = runs[t]
            if accumulate { for i in 0..<p.count { p.dst[i] += p.src[i] } } else { p.dst.update(from: p.src, count: p.count) }
        }
    }
}
