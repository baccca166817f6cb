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
}
