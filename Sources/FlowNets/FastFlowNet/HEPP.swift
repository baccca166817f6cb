import Tensor
import NN

/// FastFlowNet's head-enhanced pooling pyramid, shared by both frames. Levels 1-3
/// are strided conv stacks; levels 4-6 are 2×2 average pools of level 3. It holds no module of
/// its own in the key tree: its convs are FastFlowNet's children `pconv1_1` … `pconv3_3`.
public final class HEPPEncoder {
    public let pconv1_1 = ConvLeakyReLU(3, 16, stride: 2)
    public let pconv1_2 = ConvLeakyReLU(16, 16)
    public let pconv2_1 = ConvLeakyReLU(16, 32, stride: 2)
    public let pconv2_2 = ConvLeakyReLU(32, 32)
    public let pconv2_3 = ConvLeakyReLU(32, 32)
    public let pconv3_1 = ConvLeakyReLU(32, 64, stride: 2)
    public let pconv3_2 = ConvLeakyReLU(64, 64)
    public let pconv3_3 = ConvLeakyReLU(64, 64)

    public init() {}

    /// Key names and modules, in PyTorch's order.
    public var children: [(String, any Module)] {
        [("pconv1_1", pconv1_1), ("pconv1_2", pconv1_2), ("pconv2_1", pconv2_1), ("pconv2_2", pconv2_2),
         ("pconv2_3", pconv2_3), ("pconv3_1", pconv3_1), ("pconv3_2", pconv3_2), ("pconv3_3", pconv3_3)]
    }

    /// x: (N, 3, H, W) → features of levels 2…6: (N, 32, H/4, W/4), (N, 64, H/8, W/8), then
    /// (N, 64, …) at H/16, H/32, H/64.
    public func callAsFunction(_ x: Tensor) -> [Tensor] {
        let f1 = pconv1_2(pconv1_1(x))
        let f2 = pconv2_3(pconv2_2(pconv2_1(f1)))
        let f3 = pconv3_3(pconv3_2(pconv3_1(f2)))
        let f4 = f3.avgPool2d(kernel: 2, stride: 2)
        let f5 = f4.avgPool2d(kernel: 2, stride: 2)
        let f6 = f5.avgPool2d(kernel: 2, stride: 2)
        return [f2, f3, f4, f5, f6]
    }
}
