/// A contiguous float32 tensor (NCHW for images). Tensors are reference types because the tape
/// needs their identity; data lives in a pooled `Storage` and is reached through `data`, a raw
/// pointer that kernels take once, outside their loops.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: Storage
    /// Whether gradients flow into this tensor (parameters, and results of ops on them).
    public var requiresGrad: Bool
    /// The accumulated gradient, allocated (zeroed) by the first backward that reaches it.
    public private(set) var gradStorage: Storage?

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    /// Raw pointer to the elements, row-major.
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.pointer }

    /// A tensor over existing storage (which must hold exactly the shape's element count).
    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        let n = shape.reduce(1, *)
        require(n == storage.count, "Tensor", "shape \(describe(shape)) needs \(n) elements, storage has \(storage.count)")
        require(shape.allSatisfy { $0 >= 0 }, "Tensor", "negative dimension in \(describe(shape))")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// Uninitialized tensor; every element must be written before it is read.
    public convenience init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: Storage(count: shape.reduce(1, *)))
    }

    /// A tensor holding `values` (row-major).
    public convenience init(shape: [Int], values: [Float], requiresGrad: Bool = false) {
        let n = shape.reduce(1, *)
        require(values.count == n, "Tensor", "\(values.count) values for shape \(describe(shape))")
        self.init(shape: shape, storage: Storage(count: n), requiresGrad: requiresGrad)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: n) }
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(zeros: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(repeating: value, count: t.count)
        return t
    }

    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }

    /// A one-element tensor of shape [1].
    public static func scalar(_ value: Float) -> Tensor { full([1], value) }

    /// The single value of a one-element tensor.
    public var item: Float {
        require(count == 1, "item", "tensor of shape \(describe(shape)) has \(count) elements")
        return data[0]
    }

    /// Copies the elements out (tests and small reads only).
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Size of dimension `d` (negative counts from the end).
    public func size(_ d: Int) -> Int { shape[d < 0 ? d + rank : d] }

    /// A deep copy that records nothing on the tape.
    public func clone() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// The same values with the gradient path cut (stop-gradient; RAFT's `coords1.detach()`).
    /// Shares storage: no copy.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    // MARK: gradients

    /// The gradient as a tensor (shares the gradient storage), or nil before any backward.
    public var grad: Tensor? { gradStorage.map { Tensor(shape: shape, storage: $0) } }

    /// Pointer to the gradient buffer, allocating it zeroed on first use.
    public func gradPointer() -> UnsafeMutablePointer<Float> {
        if let g = gradStorage { return g.pointer }
        let g = Storage(zeros: count)
        gradStorage = g
        return g.pointer
    }

    /// Where a backward kernel should accumulate this tensor's gradient: nil when no gradient is
    /// wanted for it.
    @inlinable public var gradIfNeeded: UnsafeMutablePointer<Float>? { requiresGrad ? gradPointer() : nil }

    /// Where a backward kernel that can overwrite should put this tensor's gradient: nil when no
    /// gradient is wanted. The first backward to reach the tensor gets a new, uninitialized buffer
    /// (`assign`: it must write every element), later ones the buffer to add into. Kernels that
    /// write only part of a gradient take `gradIfNeeded`, which starts from zeros.
    public var gradSink: GradientSink? {
        guard requiresGrad else { return nil }
        if let g = gradStorage { return GradientSink(pointer: g.pointer, assign: false) }
        let g = Storage(count: count)
        gradStorage = g
        return GradientSink(pointer: g.pointer, assign: true)
    }

    /// Sets the gradient to zero (keeping the buffer).
    public func zeroGrad() { if let g = gradStorage { g.pointer.update(repeating: 0, count: count) } }

    /// Drops the gradient buffer.
    public func freeGrad() { gradStorage = nil }

    /// Replaces the gradient buffer (optimizer state restore, tests).
    public func setGrad(_ g: Tensor?) {
        guard let g else { gradStorage = nil; return }
        require(g.count == count, "setGrad", "gradient \(describe(g.shape)) for tensor \(describe(shape))")
        let s = Storage(count: count)
        s.pointer.update(from: g.data, count: count)
        gradStorage = s
    }

    /// Writes `values` into this tensor in place (no tape record); for parameters and tests.
    public func copy(from other: Tensor) {
        require(other.count == count, "copy", "source \(describe(other.shape)) into \(describe(shape))")
        data.update(from: other.data, count: count)
    }
}

/// One input's gradient as a backward kernel receives it: `assign`, write `pointer[i] = g` for every
/// element (the buffer is new and uninitialized); otherwise `pointer[i] += g`. Assigning skips the
/// zero fill and the read of a first contribution (most gradients have one contribution).
public struct GradientSink {
    public let pointer: UnsafeMutablePointer<Float>
    public let assign: Bool

    public init(pointer: UnsafeMutablePointer<Float>, assign: Bool) {
        self.pointer = pointer
        self.assign = assign
    }

    /// pointer[i] = value(i), or += with an existing gradient, for i in `range`.
    @inlinable @inline(__always)
    public func write(_ range: Range<Int>, _ value: (Int) -> Float) {
        let p = pointer
        if assign { for i in range { p[i] = value(i) } } else { for i in range { p[i] += value(i) } }
    }

    /// The pointer for a kernel that only accumulates: a new buffer is zeroed first.
    public func zeroedIfNew(count: Int) -> UnsafeMutablePointer<Float> {
        if assign { pointer.update(repeating: 0, count: count) }
        return pointer
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = toArray().prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(describe(shape))[\(head)\(count > 8 ? ", …" : "")]"
    }
}

import Foundation
