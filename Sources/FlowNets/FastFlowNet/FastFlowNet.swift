import Foundation
import Tensor
import NN

/// FastFlowNet (v2): the MDFlow teacher.
///
/// Input (N, 6, H, W), H and W multiples of 64: frame 1's three channels, then frame 2's.
/// `callAsFunction` returns the training-mode pyramid [flow2, flow3, flow4, flow5, flow6] at
/// 1/4 … 1/64 resolution, in full-resolution pixels divided by 20; `inferFlow` returns the
/// full-resolution flow in pixels. State-dict keys as PyTorch's (`pconv1_1.0.weight`, `rconv2.0.*`,
/// `up3.*`, `decoder2.conv7.*`; 104 tensors, 1,366,114 parameters with groups 3).
public final class FastFlowNet: Module {
    /// The flow unit: every level predicts pixels / 20.
    public static let flowScale: Float = 20
    /// Inputs must be multiples of this.
    public static let sizeDivisor = 64

    public let groups: Int
    public let encoder = HEPPEncoder()
    /// rconv2 (32→32), rconv3…rconv6 (64→32), index 0 = level 2.
    public let rconvs: [ConvLeakyReLU]
    /// up3…up6: learned ×2 transposed convs, index 0 = up3.
    public let ups: [ConvTranspose2d]
    /// decoder2…decoder6, index 0 = level 2.
    public let decoders: [ShuffleBlockDecoder]
    /// The 53 displacements of the center-dense dilated correlation.
    public let displacements = cddcDisplacements(maxDisplacement: 4, denseRadius: 2)

    public init(groups: Int = 3) {
        self.groups = groups
        rconvs = [ConvLeakyReLU(32, 32)] + (3...6).map { _ in ConvLeakyReLU(64, 32) }
        ups = (3...6).map { _ in ConvTranspose2d(2, 2, kernel: 4, stride: 2, padding: 1) }
        decoders = (2...6).map { _ in ShuffleBlockDecoder(inChannels: 87, groups: groups) }
    }

    public var children: [(String, any Module)] {
        var c = encoder.children
        for (i, r) in rconvs.enumerated() { c.append(("rconv\(i + 2)", r)) }
        for (i, u) in ups.enumerated() { c.append(("up\(i + 3)", u)) }
        for (i, d) in decoders.enumerated() { c.append(("decoder\(i + 2)", d)) }
        return c
    }

    /// The default gain of `initialize`'s correlation-aware decoder inputs.
    public static let defaultCorrelationGain: Float = 50

    /// Initialization: FastFlowNet's Kaiming-normal weights (fan in, ReLU gain) for every conv and
    /// transposed conv, zero biases; then, unless `correlationGain` is 0, each decoder's first conv
    /// is made correlation-aware: its weights on the 53 cost-volume channels are made zero-mean
    /// over the displacements (per output channel and kernel tap) and multiplied by
    /// `correlationGain`.
    ///
    /// Why: the cost volume is a channel mean of products of post-LeakyReLU features, so it is
    /// small (about 0.01 at init) and dominated by a common mode, with the displacement signal a
    /// few percent of it. Under plain Kaiming init the decoders never pick that signal up in
    /// practice: supervised on global translations, FastFlowNet stayed at the zero-flow EPE for
    /// 1500 steps, while this init learned within 150 (and RAFT-small, whose normalized features
    /// give a high-contrast volume, within 250). The function class and state-dict are unchanged.
    public func initialize(seed: UInt64, correlationGain: Float = FastFlowNet.defaultCorrelationGain) {
        var rng = RandomGenerator(seed: seed)
        for (w, b, _) in allConvolutions(self) {
            Init.kaimingNormal(w, fan: .fanIn, using: &rng)
            if let b { Init.constant(b, 0) }
        }
        if correlationGain != 0 {
            for d in decoders { Self.balanceCostVolumeInputs(d.conv1.conv.weight, channels: displacements.count, gain: correlationGain) }
        }
    }

    /// Makes the weights on input channels 0..<channels zero-mean over those channels (per output
    /// channel and tap), then scales them by `gain`.  weight: (out, in, kh, kw)
    static func balanceCostVolumeInputs(_ weight: Tensor, channels: Int, gain: Float) {
        let out = weight.shape[0], inC = weight.shape[1], taps = weight.shape[2] * weight.shape[3]
        let w = weight.data
        for o in 0..<out {
            for t in 0..<taps {
                var mean: Float = 0
                for c in 0..<channels { mean += w[(o * inC + c) * taps + t] }
                mean /= Float(channels)
                for c in 0..<channels { w[(o * inC + c) * taps + t] = (w[(o * inC + c) * taps + t] - mean) * gain }
            }
        }
    }

    /// Training-mode forward.  input: (N, 6, H, W) → [flow2 … flow6], flow_l: (N, 2, H/2^l, W/2^l)
    public func callAsFunction(_ input: Tensor) -> [Tensor] {
        require(input.rank == 4 && input.shape[1] == 6, "FastFlowNet", "input \(describe(input.shape)) must be (N, 6, H, W)")
        let n = input.shape[0], h = input.shape[2], w = input.shape[3]
        require(h % Self.sizeDivisor == 0 && w % Self.sizeDivisor == 0 && h > 0 && w > 0, "FastFlowNet",
                "input \(describe(input.shape)): height and width must be positive multiples of 64")
        // Both frames through the shared encoder as one batch of 2N.
        let frames = Tensor.concat([input.slice(dim: 1, start: 0, length: 3), input.slice(dim: 1, start: 3, length: 3)], dim: 0)
        let feats = encoder(frames)
        let f1 = feats.map { $0.slice(dim: 0, start: 0, length: n) }
        let f2 = feats.map { $0.slice(dim: 0, start: n, length: n) }

        // Level 6 (index 4): no previous flow.
        let zero = Tensor.zeros([n, 2, f1[4].shape[2], f1[4].shape[3]])
        let cv6 = localCorrelation(f1[4], f2[4], maxDisplacement: 4, displacements: displacements)
        var flow = decoders[4](Tensor.concat([cv6, rconvs[4](f1[4]), zero], dim: 1))
        var flows = [flow]
        for level in stride(from: 5, through: 2, by: -1) {
            let i = level - 2
            let up = ups[i](flow)                               // ups[i] = up(level+1)
            let warped = warp(f2[i], by: up * (Self.flowScale / Float(1 << level)), padding: .zeros)
            let cv = localCorrelation(f1[i], warped, maxDisplacement: 4, displacements: displacements)
            flow = decoders[i](Tensor.concat([cv, rconvs[i](f1[i]), up], dim: 1)) + up
            flows.append(flow)
        }
        return flows.reversed()
    }

    /// Inference output: 20 × bilinear (align_corners false) upsampling of flow2 to the input size,
    /// in pixels.  input: (N, 6, H, W) → (N, 2, H, W)
    public func inferFlow(_ input: Tensor) -> Tensor {
        let flow2 = self(input)[0]
        return flow2.resizeBilinear(height: input.shape[2], width: input.shape[3], alignCorners: false) * Self.flowScale
    }
}

/// How FastFlowNet weights expect their input.
public enum FastFlowNetInputConvention: String, Sendable, Codable, CaseIterable {
    /// MDFlow's weights: RGB in [0, 1] minus one scalar, the mean over both frames and all channels.
    case mdflow
    /// The supervised FastFlowNet weights: BGR in [0, 1] minus per-channel means over both frames.
    case supervised
}

extension FastFlowNet {
    /// Builds the network input from two RGB frames in [0, 1] of any size: centralizes them as
    /// `convention` says (statistics per sample, over both original frames), then resizes both
    /// bilinearly (align_corners false) to the multiples of 64 at or above `scale` × their size.
    /// image1, image2: (N, 3, h, w) → (N, 6, H, W)
    public static func preprocess(_ image1: Tensor, _ image2: Tensor, convention: FastFlowNetInputConvention = .mdflow,
                                  scale: Double = 1) -> Tensor {
        require(image1.rank == 4 && image1.shape[1] == 3 && image1.shape == image2.shape, "FastFlowNet.preprocess",
                "frames \(describe(image1.shape)) and \(describe(image2.shape)) must be equal (N, 3, h, w)")
        require(scale > 0 && scale.isFinite, "FastFlowNet.preprocess", "scale \(scale) must be positive")
        let h = image1.shape[2], w = image1.shape[3]
        func target(_ n: Int) -> Int { max(1, Int((Double(n) * scale / Double(sizeDivisor)).rounded(.up))) * sizeDivisor }
        let hh = scale == 1 ? (h + sizeDivisor - 1) / sizeDivisor * sizeDivisor : target(h)
        let ww = scale == 1 ? (w + sizeDivisor - 1) / sizeDivisor * sizeDivisor : target(w)
        var a = image1, b = image2
        switch convention {
        case .mdflow:
            let both = Tensor.concat([a, b], dim: 1)
            let mean = both.mean(dims: [1, 2, 3], keepDims: true)        // (N, 1, 1, 1)
            a = a - mean; b = b - mean
        case .supervised:
            func bgr(_ x: Tensor) -> Tensor {
                Tensor.concat([x.slice(dim: 1, start: 2, length: 1), x.slice(dim: 1, start: 1, length: 1),
                               x.slice(dim: 1, start: 0, length: 1)], dim: 1)
            }
            a = bgr(a); b = bgr(b)
            let mean = Tensor.concat([a, b], dim: 3).mean(dims: [2, 3], keepDims: true)   // (N, 3, 1, 1)
            a = a - mean; b = b - mean
        }
        let input = Tensor.concat([a, b], dim: 1)
        return (hh == h && ww == w) ? input : input.resizeBilinear(height: hh, width: ww, alignCorners: false)
    }

    /// Resizes a flow field bilinearly (align_corners false) to h × w, scaling u by w/W and v by
    /// h/H (MDFlow's `resize_flow`).  flow: (N, 2, H, W) → (N, 2, h, w)
    public static func resizeFlow(_ flow: Tensor, height h: Int, width w: Int) -> Tensor {
        let hh = flow.shape[2], ww = flow.shape[3]
        if hh == h && ww == w { return flow }
        let r = flow.resizeBilinear(height: h, width: w, alignCorners: false)
        let scale = Tensor(shape: [1, 2, 1, 1], values: [Float(w) / Float(ww), Float(h) / Float(hh)])
        return r * scale
    }

    /// Full inference on two RGB frames in [0, 1] of any size, without recording gradients:
    /// preprocess (at `scale` × the frames' size, rounded up to multiples of 64), forward, 20 ×
    /// upsampling of flow2, resize back to the frames' size.
    /// image1, image2: (N, 3, h, w) → flow in pixels (N, 2, h, w)
    public func predict(_ image1: Tensor, _ image2: Tensor, convention: FastFlowNetInputConvention = .mdflow,
                        scale: Double = 1) -> Tensor {
        Tape.noGrad {
            let input = Self.preprocess(image1, image2, convention: convention, scale: scale)
            let flow = inferFlow(input)
            return Self.resizeFlow(flow, height: image1.shape[2], width: image1.shape[3])
        }
    }
}
