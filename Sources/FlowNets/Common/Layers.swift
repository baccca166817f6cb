import Tensor
import NN

/// A module that maps one tensor to one tensor, so blocks can hold convs and norms alike.
public protocol Layer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

extension Conv2d: Layer {}
extension ConvTranspose2d: Layer {}
extension BatchNorm2d: Layer {}
extension InstanceNorm2d: Layer {}

/// A layer with no keys that returns its input (PyTorch's empty `nn.Sequential()` norm).
public final class Identity: Layer {
    public init() {}
    public func callAsFunction(_ x: Tensor) -> Tensor { x }
}

/// The normalization a RAFT encoder uses after its convolutions.
public enum NormKind: String, Sendable, Codable {
    /// BatchNorm2d (parameters and running statistics).
    case batch
    /// InstanceNorm2d without affine parameters (no keys).
    case instance
    /// No normalization (no keys).
    case none

    /// A norm layer of this kind over `channels` channels.
    func make(_ channels: Int) -> any Layer {
        switch self {
        case .batch: return BatchNorm2d(channels)
        case .instance: return InstanceNorm2d(channels)
        case .none: return Identity()
        }
    }
}

/// `nn.Sequential(conv, LeakyReLU(slope))`: the conv's keys sit under "0", as PyTorch's
/// `convrelu` helper writes them (`pconv1_1.0.weight`).
public final class ConvLeakyReLU: Layer {
    public let conv: Conv2d
    public let slope: Float

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int = 3, stride: Int = 1, groups: Int = 1, slope: Float = 0.1) {
        conv = Conv2d(inChannels, outChannels, kernel: kernel, stride: stride, padding: kernel / 2, groups: groups)
        self.slope = slope
    }

    public var children: [(String, any Module)] { [("0", conv)] }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x, leakySlope: slope) }
}

/// relu(norm(conv(x))), the ReLU fused into the conv when there is no norm in between.
func convNormReLU(_ conv: Conv2d, _ norm: any Layer, _ x: Tensor) -> Tensor {
    norm is Identity ? conv(x, leakySlope: 0) : norm(conv(x)).relu()
}

/// Every Conv2d / ConvTranspose2d reached from `module`, for initialization.
func allConvolutions(_ module: any Module) -> [(weight: Tensor, bias: Tensor?, transposed: Bool)] {
    var out: [(Tensor, Tensor?, Bool)] = []
    if let c = module as? Conv2d { out.append((c.weight, c.bias, false)) }
    if let c = module as? ConvTranspose2d { out.append((c.weight, c.bias, true)) }
    for (_, child) in module.children { out += allConvolutions(child) }
    return out
}

/// Every BatchNorm2d reached from `module`.
func allBatchNorms(_ module: any Module) -> [BatchNorm2d] {
    var out: [BatchNorm2d] = []
    if let b = module as? BatchNorm2d { out.append(b) }
    for (_, child) in module.children { out += allBatchNorms(child) }
    return out
}
