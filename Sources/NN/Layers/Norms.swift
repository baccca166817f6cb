import Tensor

/// nn.BatchNorm2d (affine, tracking running statistics).
///
/// Keys: `weight` (C), `bias` (C) as parameters; `running_mean` (C), `running_var` (C) and
/// `num_batches_tracked` (a one-element tensor, stored as float) as buffers.
/// - training and not frozen: normalizes with the batch statistics and updates the running ones
///   (momentum 0.1, unbiased variance), as PyTorch's `train()` mode;
/// - otherwise (eval, or `frozen`, RAFT's `freeze_bn`): normalizes with the running statistics.
///   `weight` and `bias` still receive gradients.
public final class BatchNorm2d: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let numBatchesTracked: Tensor
    public let momentum: Float
    public let eps: Float
    /// PyTorch's `module.training`.
    public private(set) var isTraining = true
    /// Frozen statistics even in training mode.
    public var frozen = false

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        weight = makeParameter([channels])
        bias = makeParameter([channels])
        Init.constant(weight, 1)
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        numBatchesTracked = Tensor.zeros([])
        self.momentum = momentum
        self.eps = eps
    }

    public var parameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }
    public var buffers: [(String, Tensor)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", numBatchesTracked)]
    }

    public func setTraining(_ training: Bool) { isTraining = training }

    /// Whether this call normalizes with batch statistics.
    public var usesBatchStatistics: Bool { isTraining && !frozen }

    /// x: (N, C, H, W) → same shape
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let train = usesBatchStatistics
        if train { numBatchesTracked.data[0] += 1 }
        return x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: train, momentum: momentum, eps: eps)
    }
}

/// nn.InstanceNorm2d with PyTorch's defaults (no affine parameters, no running statistics), so it
/// has no keys.
public final class InstanceNorm2d: Module {
    public let eps: Float
    public init(_ channels: Int = 0, eps: Float = 1e-5) { self.eps = eps }

    /// x: (N, C, H, W) → same shape
    public func callAsFunction(_ x: Tensor) -> Tensor { x.instanceNorm(eps: eps) }
}
