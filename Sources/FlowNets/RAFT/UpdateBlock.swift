import Tensor
import NN

/// The widths of an update block: its motion encoder's convolutions (correlation, flow and output
/// channels, the output counting the two flow channels it appends), its GRU and flow head, and
/// whether it holds the upsampling mask head.
public struct UpdateBlockShape: Sendable, Equatable, Codable {
    /// convc1's and (nil: none, as in RAFT-small) convc2's output channels.
    public var corr1: Int, corr2: Int?
    /// convf1's and convf2's output channels.
    public var flow1: Int, flow2: Int
    /// Motion features including the flow (conv's output + 2).
    public var motion: Int
    /// SepConvGRU (1×5 then 5×1) rather than ConvGRU (3×3).
    public var separableGRU: Bool
    public var flowHead: Int
    /// The mask head inside the block (RAFT's `update_block.mask`).
    public var mask: Bool

    /// Full RAFT's BasicUpdateBlock.
    public static let full = UpdateBlockShape(corr1: 256, corr2: 192, flow1: 128, flow2: 64, motion: 128, separableGRU: true, flowHead: 256, mask: true)
    /// RAFT-small's SmallUpdateBlock.
    public static let small = UpdateBlockShape(corr1: 96, corr2: nil, flow1: 64, flow2: 32, motion: 82, separableGRU: false, flowHead: 128, mask: false)
}

/// RAFT's motion encoder (and the small one's). Keys `convc1`, (`convc2`),
/// `convf1`, `convf2`, `conv`. Output: [motion features, flow], `shape.motion` channels.
public final class MotionEncoder: Module {
    public let convc1: Conv2d
    public let convc2: Conv2d?
    public let convf1: Conv2d, convf2: Conv2d, conv: Conv2d

    public init(corrChannels: Int, shape: UpdateBlockShape) {
        convc1 = Conv2d(corrChannels, shape.corr1, kernel: 1)
        convc2 = shape.corr2.map { Conv2d(shape.corr1, $0, kernel: 3, padding: 1) }
        convf1 = Conv2d(2, shape.flow1, kernel: 7, padding: 3)
        convf2 = Conv2d(shape.flow1, shape.flow2, kernel: 3, padding: 1)
        conv = Conv2d((shape.corr2 ?? shape.corr1) + shape.flow2, shape.motion - 2, kernel: 3, padding: 1)
    }

    public var children: [(String, any Module)] {
        [("convc1", convc1)] + (convc2.map { [("convc2", $0)] } ?? []) + [("convf1", convf1), ("convf2", convf2), ("conv", conv)]
    }

    /// Output channels including the two flow channels.
    public var outChannels: Int { conv.weight.shape[0] + 2 }

    /// flow: (N, 2, h, w); corr: (N, corrChannels, h, w) → (N, outChannels, h, w)
    public func callAsFunction(flow: Tensor, corr: Tensor) -> Tensor {
        var cor = convc1(corr, leakySlope: 0)
        if let convc2 { cor = convc2(cor, leakySlope: 0) }
        let flo = convf2(convf1(flow, leakySlope: 0), leakySlope: 0)
        let out = conv(Tensor.concat([cor, flo], dim: 1), leakySlope: 0)
        return Tensor.concat([out, flow], dim: 1)
    }
}

/// Convolutional GRU with 3×3 convs (RAFT-small). Keys `convz`, `convr`, `convq`.
public final class ConvGRU: Module {
    public let convz: Conv2d, convr: Conv2d, convq: Conv2d
    /// convz and convr as one convolution (they read the same [h, x]).
    private let gates: StackedConv2d

    public init(hiddenDim: Int, inputDim: Int) {
        convz = Conv2d(hiddenDim + inputDim, hiddenDim, kernel: 3, padding: 1)
        convr = Conv2d(hiddenDim + inputDim, hiddenDim, kernel: 3, padding: 1)
        convq = Conv2d(hiddenDim + inputDim, hiddenDim, kernel: 3, padding: 1)
        gates = StackedConv2d([convz, convr])
    }

    public var children: [(String, any Module)] { [("convz", convz), ("convr", convr), ("convq", convq)] }

    /// h: (N, hidden, h, w); x: (N, input, h, w) → new h
    public func callAsFunction(_ h: Tensor, _ x: Tensor) -> Tensor {
        gruStep(h, x, gates, convq)
    }
}

/// One GRU update: z = σ(Wz[h,x]), r = σ(Wr[h,x]), q = tanh(Wq[r⊙h, x]), h' = (1−z)⊙h + z⊙q.
/// gates: Wz and Wr stacked (z's channels first).
@inline(__always)
func gruStep(_ h: Tensor, _ x: Tensor, _ gates: StackedConv2d, _ convq: Conv2d) -> Tensor {
    let hx = Tensor.concat([h, x], dim: 1)
    let zr = gates(hx), hidden = h.shape[1]
    let z = zr.sigmoid(dim: 1, start: 0, length: hidden)
    let r = zr.sigmoid(dim: 1, start: hidden, length: hidden)
    let q = convq(Tensor.concat([r * h, x], dim: 1)).tanh()
    return h + z * (q - h)
}

/// Separable convolutional GRU (full RAFT): a horizontal pass with 1×5 convs, then a vertical
/// pass with 5×1 convs. Keys `convz1`, `convr1`, `convq1`, `convz2`, `convr2`, `convq2`.
public final class SepConvGRU: Module {
    public let convz1: Conv2d, convr1: Conv2d, convq1: Conv2d
    public let convz2: Conv2d, convr2: Conv2d, convq2: Conv2d
    /// Each pass's z and r convolutions as one (they read the same [h, x]).
    private let gates1: StackedConv2d, gates2: StackedConv2d

    public init(hiddenDim: Int, inputDim: Int) {
        let c = hiddenDim + inputDim
        convz1 = Conv2d(c, hiddenDim, kernel: (1, 5), padding: (0, 2))
        convr1 = Conv2d(c, hiddenDim, kernel: (1, 5), padding: (0, 2))
        convq1 = Conv2d(c, hiddenDim, kernel: (1, 5), padding: (0, 2))
        convz2 = Conv2d(c, hiddenDim, kernel: (5, 1), padding: (2, 0))
        convr2 = Conv2d(c, hiddenDim, kernel: (5, 1), padding: (2, 0))
        convq2 = Conv2d(c, hiddenDim, kernel: (5, 1), padding: (2, 0))
        gates1 = StackedConv2d([convz1, convr1])
        gates2 = StackedConv2d([convz2, convr2])
    }

    public var children: [(String, any Module)] {
        [("convz1", convz1), ("convr1", convr1), ("convq1", convq1), ("convz2", convz2), ("convr2", convr2), ("convq2", convq2)]
    }

    public func callAsFunction(_ h: Tensor, _ x: Tensor) -> Tensor {
        let h1 = gruStep(h, x, gates1, convq1)
        return gruStep(h1, x, gates2, convq2)
    }
}

/// Flow head: 3×3 conv, ReLU, 3×3 conv to Δflow. Keys `conv1`, `conv2`.
public final class FlowHead: Module {
    public let conv1: Conv2d, conv2: Conv2d
    public init(inputDim: Int, hiddenDim: Int) {
        conv1 = Conv2d(inputDim, hiddenDim, kernel: 3, padding: 1)
        conv2 = Conv2d(hiddenDim, 2, kernel: 3, padding: 1)
    }
    public var children: [(String, any Module)] { [("conv1", conv1), ("conv2", conv2)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { conv2(conv1(x, leakySlope: 0)) }
}

/// Convex-upsampling mask head, `nn.Sequential(conv3×3, ReLU, conv1×1)`: keys `0.*`, `2.*`.
/// Its output is scaled by 0.25.
public final class MaskHead: Module {
    public let conv0: Conv2d, conv2: Conv2d
    public init(inputDim: Int, factor: Int = 8) {
        conv0 = Conv2d(inputDim, 256, kernel: 3, padding: 1)
        conv2 = Conv2d(256, factor * factor * 9, kernel: 1)
    }
    public var children: [(String, any Module)] { [("0", conv0), ("2", conv2)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { conv2(conv0(x, leakySlope: 0)) * 0.25 }
}

/// RAFT's update block: motion encoder, GRU, flow head (and mask head for full RAFT).
/// Keys `encoder.*`, `gru.*`, `flow_head.*`, `mask.*`.
public final class UpdateBlock: Module {
    public let encoder: MotionEncoder
    public let gru: any Module
    public let flowHead: FlowHead
    public let mask: MaskHead?
    let step: (Tensor, Tensor) -> Tensor

    public convenience init(small: Bool, corrChannels: Int, hiddenDim: Int, contextDim: Int) {
        self.init(shape: small ? .small : .full, corrChannels: corrChannels, hiddenDim: hiddenDim, contextDim: contextDim)
    }

    public init(shape: UpdateBlockShape, corrChannels: Int, hiddenDim: Int, contextDim: Int) {
        encoder = MotionEncoder(corrChannels: corrChannels, shape: shape)
        let inputDim = contextDim + shape.motion
        if shape.separableGRU {
            let g = SepConvGRU(hiddenDim: hiddenDim, inputDim: inputDim)
            gru = g; step = { g($0, $1) }
        } else {
            let g = ConvGRU(hiddenDim: hiddenDim, inputDim: inputDim)
            gru = g; step = { g($0, $1) }
        }
        flowHead = FlowHead(inputDim: hiddenDim, hiddenDim: shape.flowHead)
        mask = shape.mask ? MaskHead(inputDim: hiddenDim) : nil
    }

    public var children: [(String, any Module)] {
        [("encoder", encoder), ("gru", gru), ("flow_head", flowHead)] + (mask.map { [("mask", $0)] } ?? [])
    }

    /// net: hidden state; inp: context features; corr: lookup; flow: current flow at 1/8.
    /// → (new hidden state, mask logits × 0.25 or nil, Δflow). Without `needMask` the mask head is
    /// skipped (nil): an iteration whose flow is not upsampled does not use it.
    public func callAsFunction(net: Tensor, inp: Tensor, corr: Tensor, flow: Tensor,
                               needMask: Bool = true) -> (Tensor, Tensor?, Tensor) {
        let motion = encoder(flow: flow, corr: corr)
        let h = step(net, Tensor.concat([inp, motion], dim: 1))
        let delta = flowHead(h)
        return (h, needMask ? mask.map { $0(h) } : nil, delta)
    }
}
