import Foundation

// MARK: - Kernel protocols (specialized per op, so the inner loops inline and vectorize)

/// y = f(a, b) with its partial derivatives.
public protocol BinaryKernel {
    static func f(_ a: Float, _ b: Float) -> Float
    /// ∂y/∂a given a, b and y.
    static func da(_ a: Float, _ b: Float, _ y: Float) -> Float
    /// ∂y/∂b given a, b and y.
    static func db(_ a: Float, _ b: Float, _ y: Float) -> Float
}

/// y = f(x) with its derivative.
public protocol UnaryKernel {
    static func f(_ x: Float, _ p: Float) -> Float
    /// dy/dx given x, y and the op's scalar parameter p.
    static func d(_ x: Float, _ y: Float, _ p: Float) -> Float
    /// y[i] = f(x[i], p) for i < count; kernels with a vectorized loop supply their own.
    static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float)
}

extension UnaryKernel {
    @inline(__always)
    public static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float) {
        for i in 0..<count { y[i] = f(x[i], p) }
    }
}

public enum AddKernel: BinaryKernel {
    @inline(__always) public static func f(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) public static func da(_ a: Float, _ b: Float, _ y: Float) -> Float { 1 }
    @inline(__always) public static func db(_ a: Float, _ b: Float, _ y: Float) -> Float { 1 }
}
public enum SubKernel: BinaryKernel {
    @inline(__always) public static func f(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) public static func da(_ a: Float, _ b: Float, _ y: Float) -> Float { 1 }
    @inline(__always) public static func db(_ a: Float, _ b: Float, _ y: Float) -> Float { -1 }
}
public enum MulKernel: BinaryKernel {
    @inline(__always) public static func f(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) public static func da(_ a: Float, _ b: Float, _ y: Float) -> Float { b }
    @inline(__always) public static func db(_ a: Float, _ b: Float, _ y: Float) -> Float { a }
}
public enum DivKernel: BinaryKernel {
    @inline(__always) public static func f(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) public static func da(_ a: Float, _ b: Float, _ y: Float) -> Float { 1 / b }
    @inline(__always) public static func db(_ a: Float, _ b: Float, _ y: Float) -> Float { -a / (b * b) }
}
/// Elementwise maximum; at ties the gradient goes to a (PyTorch splits it; ties are measure zero).
public enum MaxKernel: BinaryKernel {
    @inline(__always) public static func f(_ a: Float, _ b: Float) -> Float { a >= b ? a : b }
    @inline(__always) public static func da(_ a: Float, _ b: Float, _ y: Float) -> Float { a >= b ? 1 : 0 }
    @inline(__always) public static func db(_ a: Float, _ b: Float, _ y: Float) -> Float { a >= b ? 0 : 1 }
}
public enum MinKernel: BinaryKernel {
    @inline(__always) public static func f(_ a: Float, _ b: Float) -> Float { a <= b ? a : b }
    @inline(__always) public static func da(_ a: Float, _ b: Float, _ y: Float) -> Float { a <= b ? 1 : 0 }
    @inline(__always) public static func db(_ a: Float, _ b: Float, _ y: Float) -> Float { a <= b ? 0 : 1 }
}

// MARK: - Broadcasting geometry

/// Output shape and per-input element strides (0 along broadcast dimensions), NumPy rules.
struct Broadcast {
    let shape: [Int]
    let aStrides: [Int]
    let bStrides: [Int]

    init(_ op: String, _ a: [Int], _ b: [Int]) {
        let r = max(a.count, b.count)
        let pa = Array(repeating: 1, count: r - a.count) + a
        let pb = Array(repeating: 1, count: r - b.count) + b
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            if pa[i] == pb[i] || pb[i] == 1 { out[i] = pa[i] }
            else if pa[i] == 1 { out[i] = pb[i] }
            else { shapeFailure(op, "shapes \(describe(a)) and \(describe(b)) do not broadcast") }
        }
        func strides(_ s: [Int]) -> [Int] {
            var st = [Int](repeating: 0, count: r)
            var acc = 1
            for i in stride(from: r - 1, through: 0, by: -1) {
                st[i] = s[i] == 1 ? 0 : acc
                acc *= s[i]
            }
            return st
        }
        shape = out
        aStrides = strides(pa)
        bStrides = strides(pb)
    }

    /// Runs of the last dimension (1 for a scalar).
    var rows: Int { shape.isEmpty ? 1 : shape.dropLast().reduce(1, *) }

    /// Calls body(outOffset, aOffset, bOffset, innerCount, aInnerStride, bInnerStride) for each
    /// run of the last dimension in `range` (default all `rows`).
    @inline(__always)
    func forEachRow(_ range: Range<Int>? = nil, _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let r = shape.count
        if r == 0 { body(0, 0, 0, 1, 0, 0); return }
        let inner = shape[r - 1]
        let range = range ?? 0..<rows
        // The index of the first row, dimension by dimension, and its offsets into a and b.
        var idx = [Int](repeating: 0, count: max(r - 1, 0))
        var ao = 0, bo = 0, rest = range.lowerBound
        for d in stride(from: r - 2, through: 0, by: -1) {
            idx[d] = rest % shape[d]; rest /= shape[d]
            ao += idx[d] * aStrides[d]; bo += idx[d] * bStrides[d]
        }
        for row in range {
            body(row * inner, ao, bo, inner, aStrides[r - 1], bStrides[r - 1])
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; ao += aStrides[d]; bo += bStrides[d]
                if idx[d] < shape[d] { break }
                ao -= aStrides[d] * shape[d]; bo -= bStrides[d] * shape[d]; idx[d] = 0
                d -= 1
            }
        }
    }
}

// MARK: - Kernels

/// y = K.f(a, b) elementwise, same shapes.  y, a, b: (count)
@inline(__always)
public func binaryForward<K: BinaryKernel>(_ k: K.Type, _ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>,
                                           _ b: UnsafePointer<Float>, count: Int) {
    parallelFor(count, minCount: 1 << 18) { r in for i in r { y[i] = K.f(a[i], b[i]) } }
}

/// da ← dy·∂y/∂a, db ← dy·∂y/∂b (each assigned or added, as its sink says), same shapes; nil
/// skips an input. da is written before db element by element, so a and b may be one tensor.
@inline(__always)
public func binaryBackward<K: BinaryKernel>(_ k: K.Type, _ da: GradientSink?, _ db: GradientSink?,
                                            _ dy: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                            _ y: UnsafePointer<Float>, count: Int) {
    parallelFor(count, minCount: 1 << 18) { r in
        da?.write(r) { dy[$0] * K.da(a[$0], b[$0], y[$0]) }
        db?.write(r) { dy[$0] * K.db(a[$0], b[$0], y[$0]) }
    }
}

/// y = K.f(x, p).  x, y: (count)
@inline(__always)
public func unaryForward<K: UnaryKernel>(_ k: K.Type, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float) {
    parallelFor(count, minCount: 1 << 18) { r in K.forward(y + r.lowerBound, x + r.lowerBound, count: r.count, p: p) }
}

/// dx ← dy·K.d(x, y, p), assigned or added as the sink says.
@inline(__always)
public func unaryBackward<K: UnaryKernel>(_ k: K.Type, _ dx: GradientSink, _ dy: UnsafePointer<Float>,
                                          _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int, p: Float) {
    parallelFor(count, minCount: 1 << 18) { r in dx.write(r) { dy[$0] * K.d(x[$0], y[$0], p) } }
}

// MARK: - Tensor ops

extension Tensor {
    /// Elementwise binary op with broadcasting.
    public func binary<K: BinaryKernel>(_ k: K.Type, _ other: Tensor, op: String) -> Tensor {
        let a = self, b = other
        if a.shape == b.shape {
            let y = Tensor(uninitialized: a.shape)
            binaryForward(K.self, y.data, a.data, b.data, count: y.count)
            Tape.record(y, inputs: [a, b]) { dy in
                binaryBackward(K.self, a.gradSink, b.gradSink, dy, a.data, b.data, y.data, count: y.count)
            }
            return y
        }
        let bc = Broadcast(op, a.shape, b.shape)
        let y = Tensor(uninitialized: bc.shape)
        let yp = y.data, ap = a.data, bp = b.data
        // Rows split across the threads; in the backward pass only for an input of the output's
        // shape, since rows of a broadcast input's gradient take sums from several rows.
        let parallel = y.count >= 1 << 18 ? 2 : Int.max
        let (ys, as_, bs) = (SendablePointer(yp), SendablePointer(ap), SendablePointer(bp))
        parallelFor(bc.rows, minCount: parallel) { rows in
            bc.forEachRow(rows) { yo, ao, bo, n, sa, sb in
                for i in 0..<n { ys.base[yo + i] = K.f(as_.base[ao + i * sa], bs.base[bo + i * sb]) }
            }
        }
        Tape.record(y, inputs: [a, b]) { dy in
            let dys = SendablePointer(dy)
            /// g[its offset] += dy · ∂y/∂(this input), with `second` for b; rows in parallel only
            /// for an input of the output's shape.
            func accumulate(_ input: Tensor, second: Bool) {
                guard let g = input.gradIfNeeded else { return }
                let gs = SendablePointer(g)
                parallelFor(bc.rows, minCount: input.count == y.count ? parallel : Int.max) { rows in
                    bc.forEachRow(rows) { yo, ao, bo, n, sa, sb in
                        for i in 0..<n {
                            let (x, z, out) = (as_.base[ao + i * sa], bs.base[bo + i * sb], ys.base[yo + i])
                            if second { gs.base[bo + i * sb] += dys.base[yo + i] * K.db(x, z, out) }
                            else { gs.base[ao + i * sa] += dys.base[yo + i] * K.da(x, z, out) }
                        }
                    }
                }
            }
            accumulate(a, second: false)
            accumulate(b, second: true)
        }
        return y
    }

    /// Elementwise unary op with one scalar parameter.
    public func unary<K: UnaryKernel>(_ k: K.Type, _ p: Float = 0) -> Tensor {
        let x = self
        let y = Tensor(uninitialized: shape)
        unaryForward(K.self, y.data, x.data, count: count, p: p)
        Tape.record(y, inputs: [x]) { dy in
            if let dx = x.gradSink { unaryBackward(K.self, dx, dy, x.data, y.data, count: y.count, p: p) }
        }
        return y
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.binary(AddKernel.self, b, op: "add") }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.binary(SubKernel.self, b, op: "sub") }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.binary(MulKernel.self, b, op: "mul") }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.binary(DivKernel.self, b, op: "div") }
    /// Elementwise maximum of two tensors (broadcasting).
    public func maximum(_ other: Tensor) -> Tensor { binary(MaxKernel.self, other, op: "maximum") }
    /// Elementwise minimum of two tensors (broadcasting).
    public func minimum(_ other: Tensor) -> Tensor { binary(MinKernel.self, other, op: "minimum") }

    public static func + (a: Tensor, s: Float) -> Tensor { a.unary(AddScalarKernel.self, s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.unary(AddScalarKernel.self, s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.unary(AddScalarKernel.self, -s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.unary(RSubScalarKernel.self, s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.unary(MulScalarKernel.self, s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.unary(MulScalarKernel.self, s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.unary(MulScalarKernel.self, 1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor { a.unary(RDivScalarKernel.self, s) }
    public static prefix func - (a: Tensor) -> Tensor { a.unary(MulScalarKernel.self, -1) }

    public func abs() -> Tensor { unary(AbsKernel.self) }
    public func sqrt() -> Tensor { unary(SqrtKernel.self) }
    public func exp() -> Tensor { unary(ExpKernel.self) }
    public func log() -> Tensor { unary(LogKernel.self) }
    /// x^p for a scalar exponent (x > 0 unless p is an integer).
    public func pow(_ p: Float) -> Tensor { unary(PowKernel.self, p) }
    public func square() -> Tensor { unary(SquareKernel.self) }
    /// Clamps to [lo, hi]; the gradient is zero where clamped (PyTorch's rule).
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        var t = self
        if lo > -.infinity { t = t.unary(ClampMinKernel.self, lo) }
        if hi < .infinity { t = t.unary(ClampMaxKernel.self, hi) }
        return t === self ? clone() : t
    }
}

public enum AddScalarKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x + p }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { 1 }
}
public enum RSubScalarKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { p - x }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { -1 }
}
public enum MulScalarKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x * p }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { p }
}
public enum RDivScalarKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { p / x }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { -p / (x * x) }
}
public enum AbsKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { Swift.abs(x) }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
public enum SqrtKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x.squareRoot() }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { 0.5 / y }
}
public enum ExpKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { Foundation.exp(x) }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { y }
}
public enum LogKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { Foundation.log(x) }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { 1 / x }
}
public enum PowKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { Foundation.pow(x, p) }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { p == 0 ? 0 : p * Foundation.pow(x, p - 1) }
}
public enum SquareKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x * x }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { 2 * x }
}
public enum ClampMinKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x < p ? p : x }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { x < p ? 0 : 1 }
}
public enum ClampMaxKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x > p ? p : x }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { x > p ? 0 : 1 }
}

// MARK: - Comparisons (masks; never differentiable)

extension Tensor {
    /// 1 where the comparison holds, else 0; broadcasting; records nothing.
    public func compare(_ other: Tensor, _ op: String, _ test: (Float, Float) -> Bool) -> Tensor {
        let bc = Broadcast(op, shape, other.shape)
        let y = Tensor(uninitialized: bc.shape)
        let yp = y.data, ap = data, bp = other.data
        bc.forEachRow { yo, ao, bo, n, sa, sb in
            for i in 0..<n { yp[yo + i] = test(ap[ao + i * sa], bp[bo + i * sb]) ? 1 : 0 }
        }
        return y
    }

    public func gt(_ s: Float) -> Tensor { mask { $0 > s } }
    public func lt(_ s: Float) -> Tensor { mask { $0 < s } }
    public func ge(_ s: Float) -> Tensor { mask { $0 >= s } }
    public func le(_ s: Float) -> Tensor { mask { $0 <= s } }
    public func gt(_ t: Tensor) -> Tensor { compare(t, "gt", >) }
    public func lt(_ t: Tensor) -> Tensor { compare(t, "lt", <) }
    public func ge(_ t: Tensor) -> Tensor { compare(t, "ge", >=) }
    public func le(_ t: Tensor) -> Tensor { compare(t, "le", <=) }

    /// 1 where `test` holds, else 0; records nothing.
    public func mask(_ test: (Float) -> Bool) -> Tensor {
        let y = Tensor(uninitialized: shape)
        for i in 0..<count { y.data[i] = test(data[i]) ? 1 : 0 }
        return y
    }

    /// True when every element is finite.
    public var isFinite: Bool {
        for i in 0..<count where !data[i].isFinite { return false }
        return true
    }
}
