import Foundation
import Tensor
import NN

/// A DEQ-Flow net's architecture: which RAFT it is built from, how its hidden state starts, and
/// whether its update block's convolutions are weight-normalized.
public struct DEQRAFTConfig: Sendable, Equatable, Codable {
    public enum Base: String, RecipeChoice {
        /// Full RAFT's encoders and update block (DEQ-Flow-B): hidden 128, context 128.
        case raft
        /// RAFT-small's: hidden 96, context 64, radius 3, bilinear upsampling (no mask head).
        case raftSmall = "raft-small"
        /// DEQ-Flow v2's `--tiny`: full RAFT's encoders with 64 feature channels, hidden and
        /// context 32, a narrow update block.
        case tiny
    }
    /// How the GRU's hidden state starts.
    public enum HiddenInit: String, RecipeChoice {
        /// h₀ = 0 and a context net that outputs only the context channels (DEQ-Flow).
        case zero
        /// h₀ = tanh of the context net's first channels (RAFT): a trained RAFT converts as it is.
        case context
    }

    public var base: Base
    public var hiddenInit: HiddenInit
    /// Weight normalization of the update block's convolutions (keys `weight_g` / `weight_v`).
    public var weightNorm: Bool

    public init(base: Base, hiddenInit: HiddenInit = .zero, weightNorm: Bool = true) {
        self.base = base; self.hiddenInit = hiddenInit; self.weightNorm = weightNorm
    }

    var hiddenDim: Int { base == .raft ? 128 : base == .raftSmall ? 96 : 32 }
    var contextDim: Int { base == .raft ? 128 : base == .raftSmall ? 64 : 32 }
    var featureDim: Int { base == .raft ? 256 : base == .raftSmall ? 128 : 64 }
    var corrRadius: Int { base == .raftSmall ? 3 : 4 }
    let corrLevels = 4
    var updateShape: UpdateBlockShape {
        switch base {
        case .raft: var s = UpdateBlockShape.full; s.mask = false; return s
        case .raftSmall: return .small
        case .tiny: return UpdateBlockShape(corr1: 64, corr2: 48, flow1: 32, flow2: 16, motion: 32, separableGRU: true, flowHead: 64, mask: false)
        }
    }
}

/// What a pair's solve shares across evaluations of f: the correlation pyramid, the context, the
/// start state and the layout of the packed state z = [h, coords1] per sample.
public struct DEQPair {
    let pyramid: CorrelationPyramid
    /// (B, context, h, w) the injection; coords0: (B, 2, h, w).
    let inp: Tensor, coords0: Tensor
    /// (B, D): h₀ and the start coordinates, packed.
    public let z0: Tensor
    let batch: Int, hidden: Int, height: Int, width: Int
}

/// DEQ-Flow (Bai, Geng, Koltun, CVPR 2022): RAFT's update block as the map f(h, c) = (h′, c + Δ)
/// whose fixed point is the flow, found by a solver instead of a fixed number of iterations.
/// Keys as DEQ-Flow v2's: `fnet.*`, `cnet.*`, `update_block.{encoder,gru,flow_head}.*` (with
/// weight norm `weight_g` / `weight_v`), and the mask head at the top level, `mask.{0,2}.*`.
/// Images (N, 3, H, W) with pixels in 0…255, H and W multiples of 8.
public final class DEQRAFT: Module {
    public let config: DEQRAFTConfig
    public let fnet: RAFTEncoder, cnet: RAFTEncoder
    public let updateBlock: UpdateBlock
    public let mask: MaskHead?
    /// The statistics of the last implicit gradient's backward solve (set during backward).
    public var lastBackwardSolve: SolverResult?

    public init(_ config: DEQRAFTConfig) {
        self.config = config
        let small = config.base == .raftSmall
        fnet = RAFTEncoder(outputDim: config.featureDim, norm: .instance, small: small)
        let contextOut = config.contextDim + (config.hiddenInit == .context ? config.hiddenDim : 0)
        cnet = RAFTEncoder(outputDim: contextOut, norm: small ? .none : .batch, small: small)
        let corrChannels = config.corrLevels * (2 * config.corrRadius + 1) * (2 * config.corrRadius + 1)
        updateBlock = UpdateBlock(shape: config.updateShape, corrChannels: corrChannels, hiddenDim: config.hiddenDim,
                                  contextDim: config.contextDim)
        mask = small ? nil : MaskHead(inputDim: config.hiddenDim)
        if config.weightNorm { for c in weightNormed { c.enableWeightNorm() } }
    }

    public var children: [(String, any Module)] {
        [("fnet", fnet), ("cnet", cnet), ("update_block", updateBlock)] + (mask.map { [("mask", $0)] } ?? [])
    }

    /// The update block's convolutions, the ones DEQ-Flow weight-normalizes.
    var weightNormed: [Conv2d] { allConv2d(updateBlock) }

    /// DEQ-Flow's initialization: encoders as RAFT's, PyTorch's default elsewhere, then weight norm
    /// taken from those weights.
    public func initialize(seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        fnet.initialize(using: &rng)
        cnet.initialize(using: &rng)
        for c in weightNormed {
            Init.pytorchDefault(weight: c.weightNorm?.v ?? c.weight, bias: c.bias, using: &rng)
            c.resetWeightNorm()
        }
        if let mask { for (w, b, _) in allConvolutions(mask) { Init.pytorchDefault(weight: w, bias: b, using: &rng) } }
        refreshWeights()
    }

    /// Recomputes the weight-normalized weights (on the tape when recording): once per forward.
    public func refreshWeights() { for c in weightNormed { c.refreshWeightNorm() } }

    /// Runs every BatchNorm on its running statistics (true) or batch statistics (false).
    public func freezeBatchNorm(_ frozen: Bool = true) { for bn in allBatchNorms(self) { bn.frozen = frozen } }

    // MARK: - The map and its state

    /// Encodes a pair: features, correlation pyramid, context and the start state. flowInit:
    /// a warm start at 1/8 resolution (B, 2, H/8, W/8); hidden: a start hidden state (B, hidden, H/8, W/8)
    /// (a previous pair's solution).
    public func encode(_ image1: Tensor, _ image2: Tensor, flowInit: Tensor? = nil, hidden: Tensor? = nil) -> DEQPair {
        require(image1.rank == 4 && image1.shape[1] == 3 && image1.shape == image2.shape, "DEQRAFT",
                "images \(describe(image1.shape)) and \(describe(image2.shape)) must be equal (N, 3, H, W)")
        let n = image1.shape[0], h = image1.shape[2], w = image1.shape[3]
        require(h % 8 == 0 && w % 8 == 0 && h >= 8 && w >= 8, "DEQRAFT", "image size \(h)×\(w) must be a positive multiple of 8")
        let h8 = h / 8, w8 = w / 8, hd = config.hiddenDim
        if let flowInit { require(flowInit.shape == [n, 2, h8, w8], "DEQRAFT", "flowInit \(describe(flowInit.shape)) must be [\(n), 2, \(h8), \(w8)]") }
        if let hidden { require(hidden.shape == [n, hd, h8, w8], "DEQRAFT", "hidden \(describe(hidden.shape)) must be [\(n), \(hd), \(h8), \(w8)]") }
        refreshWeights()
        let x1 = image1 * (2 / 255) - 1, x2 = image2 * (2 / 255) - 1
        let fmaps = fnet(Tensor.concat([x1, x2], dim: 0))
        let pyramid = CorrelationPyramid(fmaps.slice(dim: 0, start: 0, length: n), fmaps.slice(dim: 0, start: n, length: n),
                                         levels: config.corrLevels, radius: config.corrRadius)
        let context = cnet(x1)
        let inp: Tensor, h0: Tensor
        switch config.hiddenInit {
        case .zero:
            inp = context.relu()
            h0 = Tensor.zeros([n, hd, h8, w8])
        case .context:
            inp = context.slice(dim: 1, start: hd, length: config.contextDim).relu()
            h0 = Tape.noGrad { context.slice(dim: 1, start: 0, length: hd).tanh() }
        }
        let coords0 = coordsGrid(batch: n, height: h8, width: w8)
        let c0 = Tape.noGrad { flowInit.map { coords0 + $0.detached() } ?? coords0 }
        let start = Tape.noGrad { Self.pack(hidden?.detached() ?? h0, c0) }
        return DEQPair(pyramid: pyramid, inp: inp, coords0: coords0, z0: start, batch: n, hidden: hd, height: h8, width: w8)
    }

    /// z = [h, coords1] per sample, flattened.  h: (B, hidden, h, w); c: (B, 2, h, w) → (B, D)
    static func pack(_ h: Tensor, _ c: Tensor) -> Tensor {
        let b = h.shape[0]
        return Tensor.concat([h.reshape([b, h.count / b]), c.reshape([b, c.count / b])], dim: 1)
    }

    /// (B, D) → h (B, hidden, h, w), coords1 (B, 2, h, w)
    func unpack(_ z: Tensor, _ p: DEQPair) -> (Tensor, Tensor) {
        let hw = p.height * p.width
        let h = z.slice(dim: 1, start: 0, length: p.hidden * hw).reshape([p.batch, p.hidden, p.height, p.width])
        let c = z.slice(dim: 1, start: p.hidden * hw, length: 2 * hw).reshape([p.batch, 2, p.height, p.width])
        return (h, c)
    }

    /// One application of the map: f(h, c) = (h′, c + Δ) with (h′, Δ) the update block on the
    /// correlation looked up at c. c is not differentiated through (DEQ-Flow's default) unless
    /// `allGrad` (its `--all_grad`).  (B, D) → (B, D)
    public func f(_ z: Tensor, _ p: DEQPair, allGrad: Bool = false) -> Tensor {
        let (h, c) = unpack(z, p)
        let cd = allGrad ? c : c.detached()
        let corr = p.pyramid.lookup(cd)
        let flow = allGrad ? cd - p.coords0 : Tape.noGrad { cd - p.coords0 }
        let (h1, _, delta) = updateBlock(net: h, inp: p.inp, corr: corr, flow: flow, needMask: false)
        return Self.pack(h1, cd + delta)
    }

    /// The flow of a state at 1/8 resolution (coords1 − coords0, in 1/8 pixels).  → (B, 2, h, w)
    public func lowResolutionFlow(_ z: Tensor, _ p: DEQPair) -> Tensor { unpack(z, p).1 - p.coords0 }

    /// The hidden state of a state.  → (B, hidden, h, w)
    public func hiddenState(_ z: Tensor, _ p: DEQPair) -> Tensor { unpack(z, p).0 }

    /// The full-resolution flow of a state: convex upsampling with the mask head (bilinear ×8 for
    /// the RAFT-small base).  → (B, 2, H, W)
    public func decode(_ z: Tensor, _ p: DEQPair) -> Tensor {
        let (h, c) = unpack(z, p)
        return RAFT.upsample(c - p.coords0, mask: mask.map { $0(h) })
    }
}

/// Every Conv2d reached from `module`.
func allConv2d(_ module: any Module) -> [Conv2d] {
    var out: [Conv2d] = []
    if let c = module as? Conv2d { out.append(c) }
    for (_, child) in module.children { out += allConv2d(child) }
    return out
}
