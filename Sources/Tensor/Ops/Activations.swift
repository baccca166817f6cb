import CKernels
import Foundation

/// y = max(x, 0).
public enum ReLUKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { x > 0 ? 1 : 0 }
}
/// y = x > 0 ? x : slope·x  (p = slope).
public enum LeakyReLUKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { x > 0 ? x : p * x }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { x > 0 ? 1 : p }
}
/// y = 1 / (1 + e^−x).
public enum SigmoidKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { y * (1 - y) }
    /// Eight lanes at a time (CKernels/activations.c).
    public static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float) {
        mdf_sigmoid(y, x, count, 0)
    }
}
/// y = tanh x.
public enum TanhKernel: UnaryKernel {
    @inline(__always) public static func f(_ x: Float, _ p: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) public static func d(_ x: Float, _ y: Float, _ p: Float) -> Float { 1 - y * y }
    /// Eight lanes at a time (CKernels/activations.c).
    public static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, p: Float) {
        mdf_tanh(y, x, count, 0)
    }
}

extension Tensor {
    public func relu() -> Tensor { unary(ReLUKernel.self) }
    public func leakyReLU(_ slope: Float = 0.01) -> Tensor { unary(LeakyReLUKernel.self, slope) }
    public func sigmoid() -> Tensor { unary(SigmoidKernel.self) }
    public func tanh() -> Tensor { unary(TanhKernel.self) }

    /// σ of the range start ..< start + length along `dim`, without copying that slice first: RAFT's
    /// GRU gates come out of one stacked convolution, and a copied slice would be kept for the
    /// backward pass beside the convolution's output (51 MB in RAFT-small's training step). Equal to
    /// `slice(dim:start:length:).sigmoid()`, bit for bit where each run of the slice is a multiple
    /// of eight elements.
    public func sigmoid(dim: Int, start: Int, length: Int) -> Tensor {
        let (out, outer, rowIn, offset, n) = sliceLayout("sigmoid", dim: dim, start: start, length: length)
        let x = self
        let y = Tensor(uninitialized: out)
        for o in 0..<outer { SigmoidKernel.forward(y.data + o * n, x.data + o * rowIn + offset, count: n, p: 0) }
        Tape.record(y, inputs: [x]) { dy in
            let dx = x.gradPointer()
            for o in 0..<outer {
                let yo = y.data + o * n, go = dy + o * n, dxo = dx + o * rowIn + offset
                for i in 0..<n { dxo[i] += go[i] * SigmoidKernel.d(0, yo[i], 0) }
            }
        }
        return y
    }
}
