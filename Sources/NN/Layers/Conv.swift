import Tensor

/// nn.Conv2d.  weight: (out, in/groups, kh, kw) key "weight"; bias: (out) key "bias". With
/// weight normalization (`enableWeightNorm`), keys "weight_g" (out, 1, 1, 1) and "weight_v" in
/// place of "weight".
public final class Conv2d: Module {
    /// The weight the convolution uses: the parameter itself, or under weight normalization the one
    /// `refreshWeightNorm` last computed from g and v.
    public private(set) var weight: Tensor
    public let bias: Tensor?
    public let geometry: ConvGeometry
    /// Weight normalization's parameters, or nil.
    public private(set) var weightNorm: (g: Tensor, v: Tensor)? = nil

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

    public var parameters: [(String, Tensor)] {
        (weightNorm.map { [("weight_g", $0.g), ("weight_v", $0.v)] } ?? [("weight", weight)]) + (bias.map { [("bias", $0)] } ?? [])
    }

    /// Reparameterizes the weight as torch.nn.utils.weight_norm does: v = the weight, g = its norm
    /// per output channel.
    public func enableWeightNorm() {
        guard weightNorm == nil else { return }
        weightNorm = (makeParameter([weight.shape[0], 1, 1, 1]), weight)
        resetWeightNorm()
    }

    /// Sets g = ‖v‖ per output channel (after v was re-initialized) and refreshes the weight.
    public func resetWeightNorm() {
        guard let (g, v) = weightNorm else { return }
        let out = v.shape[0], n = v.count / out
        for o in 0..<out {
            var s = 0.0
            for i in 0..<n { s += Double(v.data[o * n + i]) * Double(v.data[o * n + i]) }
            g.data[o] = Float(s.squareRoot())
        }
        refreshWeightNorm()
    }

    /// Recomputes the weight from g and v (recorded on the tape when gradients are), after they
    /// changed; once per forward pass, as DEQ-Flow's `reset_weight_norm`.
    public func refreshWeightNorm() {
        if let (g, v) = weightNorm { weight = Tensor.weightNorm(g: g, v: v) }
    }

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
