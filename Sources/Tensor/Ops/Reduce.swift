import Foundation

extension Tensor {
    /// Sum of every element, shape [1]. Accumulates in Double.
    public func sum() -> Tensor {
        let x = self
        var s = 0.0
        for i in 0..<count { s += Double(data[i]) }
        let y = Tensor.scalar(Float(s))
        Tape.record(y, inputs: [x]) { dy in
            let g = dy[0], dx = x.gradPointer()
            for i in 0..<x.count { dx[i] += g }
        }
        return y
    }

    /// Mean of every element, shape [1].
    public func mean() -> Tensor { sum() * (1 / Float(max(count, 1))) }

    /// Sum over `dims` (negative counts from the end); kept as size-1 dims when `keepDims`.
    public func sum(dims: [Int], keepDims: Bool = false) -> Tensor {
        let ds = Set(dims.map { $0 < 0 ? $0 + rank : $0 })
        require(ds.allSatisfy { $0 >= 0 && $0 < rank }, "sum", "dims \(dims) for shape \(describe(shape))")
        let kept = shape.enumerated().map { ds.contains($0.offset) ? 1 : $0.element }
        // Output strides over the input's index space: 0 along reduced dims.
        let ks = contiguousStrides(kept)
        let map = (0..<rank).map { ds.contains($0) ? 0 : ks[$0] }
        let x = self, xShape = shape
        let y = Tensor.zeros(kept)
        let yp = y.data, xp = x.data
        var acc = [Double](repeating: 0, count: y.count)
        Tensor.walk(xShape, map) { xo, yo, n, s in
            for i in 0..<n { acc[yo + i * s] += Double(xp[xo + i]) }
        }
        for i in 0..<y.count { yp[i] = Float(acc[i]) }
        let result = keepDims ? y : y.reshapedWithoutTape(shape.enumerated().filter { !ds.contains($0.offset) }.map(\.element))
        Tape.record(result, inputs: [x]) { dy in
            let dx = x.gradPointer()
            Tensor.walk(xShape, map) { xo, yo, n, s in
                for i in 0..<n { dx[xo + i] += dy[yo + i * s] }
            }
        }
        return result
    }

    /// Mean over `dims`.
    public func mean(dims: [Int], keepDims: Bool = false) -> Tensor {
        let ds = Set(dims.map { $0 < 0 ? $0 + rank : $0 })
        let n = ds.reduce(1) { $0 * shape[$1] }
        return sum(dims: dims, keepDims: keepDims) * (1 / Float(max(n, 1)))
    }

    /// Mean of every element in Double (no gradient): mask fractions and normalizers.
    public func meanValue() -> Double {
        var s = 0.0
        for i in 0..<count { s += Double(data[i]) }
        return s / Double(Swift.max(count, 1))
    }

    /// Largest element (no gradient); named so that `max(_:_:)` stays unambiguous inside extensions.
    public func maxValue() -> Float {
        var m = -Float.infinity
        for i in 0..<count { m = Swift.max(m, data[i]) }
        return m
    }

    /// Smallest element (no gradient).
    public func minValue() -> Float {
        var m = Float.infinity
        for i in 0..<count { m = Swift.min(m, data[i]) }
        return m
    }

    /// A view with a new shape that records nothing (internal reshapes of fresh outputs).
    func reshapedWithoutTape(_ s: [Int]) -> Tensor { Tensor(shape: s, storage: storage) }

    /// Walks a contiguous tensor of `shape` row by row along its last dim, passing (offset,
    /// mapped offset, run length, mapped inner stride) where the mapped offset uses `map` strides.
    static func walk(_ shape: [Int], _ map: [Int], _ body: (Int, Int, Int, Int) -> Void) {
        let r = shape.count
        if r == 0 { body(0, 0, 1, 0); return }
        let inner = shape[r - 1], rows = shape.dropLast().reduce(1, *)
        if inner == 0 { return }
        var idx = [Int](repeating: 0, count: Swift.max(r - 1, 0))
        var mo = 0
        for row in 0..<rows {
            body(row * inner, mo, inner, map[r - 1])
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; mo += map[d]
                if idx[d] < shape[d] { break }
                mo -= map[d] * shape[d]; idx[d] = 0; d -= 1
            }
        }
    }
}
