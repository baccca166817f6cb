import Tensor
import NN

/// FastFlowNet's shuffle-block decoder: conv 87→96; three 96→96 convs with
/// `groups` groups, each followed by a channel shuffle; 96→64; 64→32; a plain 32→2 conv.
/// Keys: `conv1.0.*` … `conv6.0.*`, `conv7.*`.
public final class ShuffleBlockDecoder: Module {
    public let groups: Int
    public let conv1: ConvLeakyReLU
    public let conv2: ConvLeakyReLU
    public let conv3: ConvLeakyReLU
    public let conv4: ConvLeakyReLU
    public let conv5: ConvLeakyReLU
    public let conv6: ConvLeakyReLU
    public let conv7: Conv2d

    public init(inChannels: Int = 87, groups: Int = 3) {
        self.groups = groups
        conv1 = ConvLeakyReLU(inChannels, 96)
        conv2 = ConvLeakyReLU(96, 96, groups: groups)
        conv3 = ConvLeakyReLU(96, 96, groups: groups)
        conv4 = ConvLeakyReLU(96, 96, groups: groups)
        conv5 = ConvLeakyReLU(96, 64)
        conv6 = ConvLeakyReLU(64, 32)
        conv7 = Conv2d(32, 2, kernel: 3, padding: 1)
    }

    public var children: [(String, any Module)] {
        [("conv1", conv1), ("conv2", conv2), ("conv3", conv3), ("conv4", conv4),
         ("conv5", conv5), ("conv6", conv6), ("conv7", conv7)]
    }

    /// x: (N, 87, h, w) → (N, 2, h, w)
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var out = conv1(x)
        out = conv2(out).channelShuffle(groups: groups)
        out = conv3(out).channelShuffle(groups: groups)
        out = conv4(out).channelShuffle(groups: groups)
        return conv7(conv6(conv5(out)))
    }
}
