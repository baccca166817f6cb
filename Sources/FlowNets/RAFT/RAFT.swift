import Foundation
import Tensor
import NN

/// RAFT's architecture options.
public struct RAFTConfig: Sendable, Equatable, Codable {
    public var small: Bool
    public var hiddenDim: Int
    public var contextDim: Int
    public var corrLevels: Int
    public var corrRadius: Int

    /// Full RAFT: hidden 128, context 128, 4 levels, radius 4.
    public static let full = RAFTConfig(small: false, hiddenDim: 128, contextDim: 128, corrLevels: 4, corrRadius: 4)
    /// RAFT-small: hidden 96, context 64, 4 levels, radius 3.
    public static let small = RAFTConfig(small: true, hiddenDim: 96, contextDim: 64, corrLevels: 4, corrRadius: 3)

    public init(small: Bool, hiddenDim: Int, contextDim: Int, corrLevels: Int, corrRadius: Int) {
        self.small = small; self.hiddenDim = hiddenDim; self.contextDim = contextDim
        self.corrLevels = corrLevels; self.corrRadius = corrRadius
    }
}

/// The result of a RAFT forward pass.
public struct RAFTOutput {
    /// Full-resolution flow (pixels) after each iteration, in order (the sequence-loss inputs).
    /// With `allPredictions` false only the last one.
    public var predictions: [Tensor]
    /// Flow at 1/8 resolution after the last iteration, in 1/8-resolution pixels (coords1 − coords0),
    /// usable as the next warm start.
    public var lowResolution: Tensor
    /// The final full-resolution flow.
    public var flow: Tensor { predictions[predictions.count - 1] }
}

/// RAFT and RAFT-small: the MDFlow student.
///
/// Images are (N, 3, H, W) with pixels in 0…255 and H, W multiples of 8; the net maps them to
/// [−1, 1]. Keys as PyTorch's: `fnet.*`, `cnet.*`, `update_block.*` (a leading `module.` is
/// accepted on load). Full RAFT's context encoder uses BatchNorm; call `freezeBatchNorm()` to run
/// it on its running statistics (RAFT's `freeze_bn`, every stage after chairs).
public final class RAFT: Module {
    public let config: RAFTConfig
    public let fnet: RAFTEncoder
    public let cnet: RAFTEncoder
    public let updateBlock: UpdateBlock

    public init(_ config: RAFTConfig = .full) {
        self.config = config
        if config.small {
            fnet = RAFTEncoder(outputDim: 128, norm: .instance, small: true)
            cnet = RAFTEncoder(outputDim: config.hiddenDim + config.contextDim, norm: .none, small: true)
        } else {
            fnet = RAFTEncoder(outputDim: 256, norm: .instance, small: false)
            cnet = RAFTEncoder(outputDim: config.hiddenDim + config.contextDim, norm: .batch, small: false)
        }
        let corrChannels = config.corrLevels * (2 * config.corrRadius + 1) * (2 * config.corrRadius + 1)
        updateBlock = UpdateBlock(small: config.small, corrChannels: corrChannels,
                                  hiddenDim: config.hiddenDim, contextDim: config.contextDim)
    }

    /// RAFT-small (`small` true) or full RAFT with the published options.
    public convenience init(small: Bool) { self.init(small ? .small : .full) }

    public var children: [(String, any Module)] { [("fnet", fnet), ("cnet", cnet), ("update_block", updateBlock)] }

    /// RAFT's initialization: encoders as `RAFTEncoder.initialize`; the update block keeps
    /// PyTorch's default conv init.
    public func initialize(seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        fnet.initialize(using: &rng)
        cnet.initialize(using: &rng)
        for (w, b, _) in allConvolutions(updateBlock) { Init.pytorchDefault(weight: w, bias: b, using: &rng) }
    }

    /// Runs every BatchNorm on its running statistics (true) or on batch statistics in training
    /// mode (false). Their weights and biases still train.
    public func freezeBatchNorm(_ frozen: Bool = true) { for bn in allBatchNorms(self) { bn.frozen = frozen } }

    /// image1, image2: (N, 3, H, W) in 0…255, H and W multiples of 8.
    /// flowInit: optional warm start at 1/8 resolution, (N, 2, H/8, W/8).
    /// With `allPredictions` false only the last iteration is upsampled (inference).
    public func callAsFunction(_ image1: Tensor, _ image2: Tensor, iters: Int = 12, flowInit: Tensor? = nil,
                               allPredictions: Bool = true) -> RAFTOutput {
        require(image1.rank == 4 && image1.shape[1] == 3 && image1.shape == image2.shape, "RAFT",
                "images \(describe(image1.shape)) and \(describe(image2.shape)) must be equal (N, 3, H, W)")
        let n = image1.shape[0], h = image1.shape[2], w = image1.shape[3]
        require(h % 8 == 0 && w % 8 == 0 && h >= 8 && w >= 8, "RAFT", "image size \(h)×\(w) must be a positive multiple of 8")
        require(iters >= 1, "RAFT", "iters \(iters) must be at least 1")
        let h8 = h / 8, w8 = w / 8
        if let flowInit { require(flowInit.shape == [n, 2, h8, w8], "RAFT", "flowInit \(describe(flowInit.shape)) must be [\(n), 2, \(h8), \(w8)]") }

        let x1 = image1 * (2 / 255) - 1
        let x2 = image2 * (2 / 255) - 1
        // Both frames through the feature encoder as one batch (instance norm is per sample).
        let fmaps = fnet(Tensor.concat([x1, x2], dim: 0))
        let fmap1 = fmaps.slice(dim: 0, start: 0, length: n), fmap2 = fmaps.slice(dim: 0, start: n, length: n)
        let pyramid = CorrelationPyramid(fmap1, fmap2, levels: config.corrLevels, radius: config.corrRadius)

        let context = cnet(x1)
        var net = context.slice(dim: 1, start: 0, length: config.hiddenDim).tanh()
        let inp = context.slice(dim: 1, start: config.hiddenDim, length: config.contextDim).relu()

        let coords0 = coordsGrid(batch: n, height: h8, width: w8)
        var coords1 = coords0
        if let flowInit { coords1 = Tape.noGrad { coords0 + flowInit.detached() } }
        var predictions: [Tensor] = []
        var low = coords0
        for it in 0..<iters {
            let c1 = coords1.detached()
            let corr = pyramid.lookup(c1)
            let flow = Tape.noGrad { c1 - coords0 }
            // Only an iteration whose flow is upsampled needs the mask head (full RAFT's 128→256→576
            // convolutions, a fifth of an iteration's work); the reference computes it every time.
            let upsampled = allPredictions || it == iters - 1
            let (h1, mask, delta) = updateBlock(net: net, inp: inp, corr: corr, flow: flow, needMask: upsampled)
            net = h1
            coords1 = c1 + delta
            low = coords1 - coords0
            if upsampled {
                predictions.append(Self.upsample(low, mask: mask))
            }
        }
        return RAFTOutput(predictions: predictions, lowResolution: low)
    }

    /// ×8 upsampling of a 1/8-resolution flow: convex with a mask (full RAFT), else bilinear with
    /// align_corners true (RAFT-small's `upflow8`); values are scaled to full-resolution pixels.
    public static func upsample(_ flow: Tensor, mask: Tensor?) -> Tensor {
        if let mask { return convexUpsample(flow, mask: mask, factor: 8) }
        return flow.resizeBilinear(height: 8 * flow.shape[2], width: 8 * flow.shape[3], alignCorners: true) * 8
    }
}

/// RAFT's `InputPadder` in its default (Sintel) mode: replicate padding to multiples of 8, split
/// evenly between the two sides (the extra pixel, if any, after).
public struct InputPadder: Sendable, Equatable {
    public let left, right, top, bottom: Int
    public let height, width: Int

    public init(height: Int, width: Int, divisor: Int = 8) {
        self.height = height; self.width = width
        let padH = (divisor - height % divisor) % divisor, padW = (divisor - width % divisor) % divisor
        left = padW / 2; right = padW - padW / 2
        top = padH / 2; bottom = padH - padH / 2
    }

    /// x: (N, C, h, w) → (N, C, h + top + bottom, w + left + right)
    public func pad(_ x: Tensor) -> Tensor {
        if left == 0 && right == 0 && top == 0 && bottom == 0 { return x }
        return x.pad(left: left, right: right, top: top, bottom: bottom, mode: .replicate)
    }

    /// Crops a padded tensor back to h × w.
    public func unpad(_ x: Tensor) -> Tensor {
        var y = x
        if top + bottom > 0 { y = y.slice(dim: 2, start: top, length: height) }
        if left + right > 0 { y = y.slice(dim: 3, start: left, length: width) }
        return y
    }
}

extension RAFT {
    /// Inference on two frames of any size, pixels 0…255, without recording gradients: replicate
    /// padding to multiples of 8 (split evenly), `iters` iterations (optionally warm-started at
    /// 1/8 of the padded size), unpadding.  image1, image2: (N, 3, h, w) → (N, 2, h, w)
    public func predict(_ image1: Tensor, _ image2: Tensor, iters: Int = 12, flowInit: Tensor? = nil) -> Tensor {
        Tape.noGrad {
            let padder = InputPadder(height: image1.shape[2], width: image1.shape[3])
            let out = self(padder.pad(image1), padder.pad(image2), iters: iters, flowInit: flowInit, allPredictions: false)
            return padder.unpad(out.flow)
        }
    }
}
