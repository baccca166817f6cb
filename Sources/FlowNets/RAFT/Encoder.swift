import Tensor
import NN

/// A strided block's shortcut, `nn.Sequential(conv1x1, norm)`: keys `0.*` (conv) and `1.*` (norm).
public final class Downsample: Layer {
    public let conv: Conv2d
    public let norm: any Layer
    init(_ inPlanes: Int, _ planes: Int, stride: Int, norm: any Layer) {
        conv = Conv2d(inPlanes, planes, kernel: 1, stride: stride)
        self.norm = norm
    }
    public var children: [(String, any Module)] { [("0", conv), ("1", norm)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { norm(conv(x)) }
}

/// The keys of the shortcut's norm again under `name` (PyTorch registers the same module twice,
/// as `norm3` and as `downsample.1`, so the state dict holds both). Listed as buffers so the
/// optimizer sees each tensor once.
func aliasKeys(_ name: String, _ downsample: Downsample?) -> [(String, Tensor)] {
    guard let d = downsample else { return [] }
    return d.norm.namedParameters(prefix: name + ".") + d.norm.namedBuffers(prefix: name + ".")
}

/// RAFT's ResidualBlock: y = ReLU(n1(conv3×3_s(x))); y = ReLU(n2(conv3×3(y))); the shortcut is
/// n3(conv1×1_s(x)) when strided; out = ReLU(x + y).
public final class ResidualBlock: Layer {
    public let conv1: Conv2d, conv2: Conv2d
    public let norm1: any Layer, norm2: any Layer
    public let downsample: Downsample?

    public init(_ inPlanes: Int, _ planes: Int, norm: NormKind, stride: Int) {
        conv1 = Conv2d(inPlanes, planes, kernel: 3, stride: stride, padding: 1)
        conv2 = Conv2d(planes, planes, kernel: 3, padding: 1)
        norm1 = norm.make(planes); norm2 = norm.make(planes)
        downsample = stride == 1 ? nil : Downsample(inPlanes, planes, stride: stride, norm: norm.make(planes))
    }

    public var children: [(String, any Module)] {
        [("conv1", conv1), ("conv2", conv2), ("norm1", norm1), ("norm2", norm2)] + (downsample.map { [("downsample", $0)] } ?? [])
    }
    public var buffers: [(String, Tensor)] { aliasKeys("norm3", downsample) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = convNormReLU(conv1, norm1, x)
        y = convNormReLU(conv2, norm2, y)
        let s = downsample.map { $0(x) } ?? x
        return (s + y).relu()
    }
}

/// RAFT-small's BottleneckBlock: 1×1 → planes/4, 3×3 stride s, 1×1 → planes, each with norm and
/// ReLU; a 1×1 stride-s shortcut with norm4 when strided; out = ReLU(x + y).
public final class BottleneckBlock: Layer {
    public let conv1: Conv2d, conv2: Conv2d, conv3: Conv2d
    public let norm1: any Layer, norm2: any Layer, norm3: any Layer
    public let downsample: Downsample?

    public init(_ inPlanes: Int, _ planes: Int, norm: NormKind, stride: Int) {
        conv1 = Conv2d(inPlanes, planes / 4, kernel: 1)
        conv2 = Conv2d(planes / 4, planes / 4, kernel: 3, stride: stride, padding: 1)
        conv3 = Conv2d(planes / 4, planes, kernel: 1)
        norm1 = norm.make(planes / 4); norm2 = norm.make(planes / 4); norm3 = norm.make(planes)
        downsample = stride == 1 ? nil : Downsample(inPlanes, planes, stride: stride, norm: norm.make(planes))
    }

    public var children: [(String, any Module)] {
        [("conv1", conv1), ("conv2", conv2), ("conv3", conv3), ("norm1", norm1), ("norm2", norm2), ("norm3", norm3)]
            + (downsample.map { [("downsample", $0)] } ?? [])
    }
    public var buffers: [(String, Tensor)] { aliasKeys("norm4", downsample) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = convNormReLU(conv1, norm1, x)
        y = convNormReLU(conv2, norm2, y)
        y = convNormReLU(conv3, norm3, y)
        let s = downsample.map { $0(x) } ?? x
        return (s + y).relu()
    }
}

/// Two blocks of one stage, `nn.Sequential(block, block)`: keys `0.*`, `1.*`.
public final class Stage: Layer {
    public let blocks: [any Layer]
    init(_ blocks: [any Layer]) { self.blocks = blocks }
    public var children: [(String, any Module)] { blocks.enumerated().map { ("\($0.offset)", $0.element) } }
    public func callAsFunction(_ x: Tensor) -> Tensor { blocks.reduce(x) { $1($0) } }
}

/// RAFT's feature/context encoder (BasicEncoder; SmallEncoder for RAFT-small), output at 1/8
/// resolution. Keys: `conv1.*`, `norm1.*`, `layer1..3.{0,1}.*`, `conv2.*`.
public final class RAFTEncoder: Layer {
    public let small: Bool
    public let conv1: Conv2d
    public let norm1: any Layer
    public let layer1: Stage, layer2: Stage, layer3: Stage
    public let conv2: Conv2d

    /// BasicEncoder (`small` false): widths 64/96/128 of residual blocks; SmallEncoder: 32/64/96
    /// of bottleneck blocks.
    public init(outputDim: Int, norm: NormKind, small: Bool) {
        self.small = small
        let widths = small ? [32, 64, 96] : [64, 96, 128]
        conv1 = Conv2d(3, widths[0], kernel: 7, stride: 2, padding: 3)
        norm1 = norm.make(widths[0])
        var inPlanes = widths[0]
        func stage(_ dim: Int, _ stride: Int) -> Stage {
            defer { inPlanes = dim }
            if small {
                return Stage([BottleneckBlock(inPlanes, dim, norm: norm, stride: stride), BottleneckBlock(dim, dim, norm: norm, stride: 1)])
            }
            return Stage([ResidualBlock(inPlanes, dim, norm: norm, stride: stride), ResidualBlock(dim, dim, norm: norm, stride: 1)])
        }
        layer1 = stage(widths[0], 1)
        layer2 = stage(widths[1], 2)
        layer3 = stage(widths[2], 2)
        conv2 = Conv2d(widths[2], outputDim, kernel: 1)
    }

    public var children: [(String, any Module)] {
        [("conv1", conv1), ("norm1", norm1), ("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("conv2", conv2)]
    }

    /// x: (N, 3, H, W) → (N, outputDim, H/8, W/8)
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = convNormReLU(conv1, norm1, x)
        y = layer3(layer2(layer1(y)))
        return conv2(y)
    }

    /// RAFT's encoder init: Kaiming-normal (fan out, ReLU) conv weights, PyTorch's default conv
    /// biases, norm weights 1 and biases 0.
    func initialize(using rng: inout RandomGenerator) {
        for (w, b, _) in allConvolutions(self) {
            Init.pytorchDefault(weight: w, bias: b, using: &rng)
            Init.kaimingNormal(w, fan: .fanOut, using: &rng)
        }
        for bn in allBatchNorms(self) { Init.constant(bn.weight, 1); Init.constant(bn.bias, 0) }
    }
}
