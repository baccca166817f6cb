import Tensor

/// This process's part of a data-parallel batch. Every loss here is a mean over the whole batch
/// (masked means divide by the batch's mask mean), which does not split by sample; so each process
/// computes its share of the global mean — its own mean times `fraction` — and takes the masks'
/// means over all processes through `sum`. The shares' gradients then add up, over processes, to the
/// gradient of the one-process loss. `whole` is the one-process case, and leaves every number as
/// it was.
public struct BatchShare {
    /// Local batch / global batch.
    public let fraction: Float
    /// Adds scalars element-wise over all processes (every process calls it in the same order).
    public let sum: ([Double]) -> [Double]

    public init(fraction: Float, sum: @escaping ([Double]) -> [Double]) {
        self.fraction = fraction
        self.sum = sum
    }

    public static var whole: BatchShare { BatchShare(fraction: 1, sum: { $0 }) }

    public var isWhole: Bool { fraction == 1 }

    /// This process's share of the global batch mean of `x`.  any shape → [1]
    public func mean(_ x: Tensor) -> Tensor { isWhole ? x.mean() : x.mean() * fraction }

    /// The global batch mean of a tensor no gradient flows through (a collective call).
    public func meanValue(_ x: Tensor) -> Double {
        isWhole ? x.meanValue() : sum([x.meanValue() * Double(fraction)])[0]
    }

    /// A local batch mean as this process's share of the global one (for logged terms, which
    /// the trainer adds up over processes).
    public func part(_ localMean: Float) -> Float { isWhole ? localMean : localMean * fraction }
}
