import Tensor

/// nn.Conv2d.  weight: (out, in/groups, kh, kw) key "weight"; bias: (out) key "bias".
public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let geometry: ConvGeometry

    public init(_ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: Int = 1,
                padding: (Int, Int) = (0, 0), dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        geometry = ConvGeometry(kernel: kernel, stride: (stride, stride),
                                padding: (padding.0, padding.0, padding.1, padding.1), dilation: (dilation, dilation), groups: groups)
        weight = makeParameter([outChannels, inChannels / groups, kernel.0, kernel.1])
        self.bias = bias ? makeParameter([outChannels]) : nil
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        self.init(inChannels, outChannels, kernel: (kernel, kernel), stride: stride, padding: (padding, padding),
                  dilation: dilation, groups: groups, bias: bias)
    }

    public var parameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// x: (N, in, H, W) → (N, out, H', W')
    public func callAsFunction(_ x: Tensor) -> Tensor { x.conv2d(weight, bias, geometry) }

    /// The conv followed by a fused leaky ReLU (slope 0: ReLU), one pass over the output.
    public func callAsFunction(_ x: Tensor, leakySlope: Float) -> Tensor { x.conv2d(weight, bias, geometry, leakySlope: leakySlope) }
}

/// nn.ConvTranspose2d (groups 1).  weight: (in, out, kh, kw); bias: (out).
public final class ConvTranspose2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let geometry: ConvGeometry

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        geometry = ConvGeometry(kernel: kernel, stride: stride, padding: padding)
        weight = makeParameter([inChannels, outChannels, kernel, kernel])
        self.bias = bias ? makeParameter([outChannels]) : nil
    }

    public var parameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// x: (N, in, H, W) → (N, out, (H−1)·s − 2p + k, …)
    public func callAsFunction(_ x: Tensor) -> Tensor { x.convTranspose2d(weight, bias, geometry) }
}
