import Foundation
import Tensor

/// Weight initializers with PyTorch's definitions of fan-in and fan-out for conv weights
/// (fan_in = in/groups·kh·kw, fan_out = out·kh·kw; for ConvTranspose weights (in, out, kh, kw)
/// PyTorch's fan_in is dim 1 · kh·kw).
public enum Init {
    public enum Fan { case fanIn, fanOut }

    static func fans(_ shape: [Int]) -> (Int, Int) {
        let rf = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        return (shape[1] * rf, shape[0] * rf)
    }

    /// Kaiming (He) normal: std = gain/√fan, gain = √(2/(1+a²)) for leaky ReLU slope a.
    public static func kaimingNormal(_ t: Tensor, fan: Fan = .fanIn, slope: Float = 0, using rng: inout RandomGenerator) {
        let (fi, fo) = fans(t.shape)
        let std = (2 / (1 + slope * slope)).squareRoot() / Float(fan == .fanIn ? fi : fo).squareRoot()
        for i in 0..<t.count { t.data[i] = std * Float(rng.normal()) }
    }

    /// PyTorch's default conv init: weights kaiming-uniform with a = √5 (bound 1/√fan_in), bias
    /// uniform(±1/√fan_in).
    public static func pytorchDefault(weight: Tensor, bias: Tensor?, using rng: inout RandomGenerator) {
        let (fi, _) = fans(weight.shape)
        let bound = 1 / Float(max(fi, 1)).squareRoot()
        for i in 0..<weight.count { weight.data[i] = rng.uniformFloat(-bound, bound) }
        if let bias { for i in 0..<bias.count { bias.data[i] = rng.uniformFloat(-bound, bound) } }
    }

    public static func constant(_ t: Tensor, _ v: Float) { t.data.update(repeating: v, count: t.count) }
}
