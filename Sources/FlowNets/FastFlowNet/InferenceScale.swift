// The size at which FastFlowNet estimates a pair. Enlarging the frames makes fine motions and
// detail larger in the net's pixels, which helps where the motion is small (a quarter-resolution
// net is imprecise below a pixel or two) and hurts where it is large (enlarged motions leave its
// search range). `auto` decides per pair from a first estimate at the frames' own size.
import Foundation
import Tensor

public enum InferenceScale: Equatable, Sendable, CustomStringConvertible {
    /// Estimate on the frames resized by this factor; the flow comes back at their size.
    case fixed(Double)
    /// Estimate at 1×; then, where the motion is small, again at the largest of `magnifications`
    /// that keeps it in range (95th percentile of |flow| at 1× times the factor under
    /// `motionLimit` pixels), keeping that flow.
    case auto

    /// Chosen on the real video pairs labelled by the student (docs/accuracy.md): enlarged, a
    /// pair's error falls while its 95th-percentile motion stays under about 30 px and rises
    /// beyond.
    public static let magnifications = [2.0, 1.5]
    public static let motionLimit: Float = 30

    /// The factor `auto` picks for a pair whose 95th-percentile motion at 1× is `p95` pixels.
    public static func autoFactor(p95: Float) -> Double {
        magnifications.first { Float($0) * p95 < motionLimit } ?? 1
    }

    /// `auto` or a factor in (0, 8].
    public init?(argument: String) {
        if argument == "auto" { self = .auto; return }
        guard let s = Double(argument), s > 0, s <= 8 else { return nil }
        self = .fixed(s)
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .fixed(let s): return s == s.rounded() ? String(Int(s)) : String(s)
        }
    }

    /// Per sample of a flow batch, the 95th percentile of the motion's magnitude, in pixels.
    /// flow: (N, 2, H, W) → N values
    public static func motionPercentile95(_ flow: Tensor) -> [Float] {
        let n = flow.shape[0], plane = flow.shape[2] * flow.shape[3]
        return (0..<n).map { s in
            let base = s * 2 * plane
            var m = [Float](repeating: 0, count: plane)
            for i in 0..<plane {
                let u = flow.data[base + i], v = flow.data[base + plane + i]
                m[i] = (u * u + v * v).squareRoot()
            }
            m.sort()
            return m[min(plane - 1, Int(Double(plane - 1) * 0.95))]
        }
    }
}

extension FastFlowNet {
    /// `predict` at an `InferenceScale`; `auto` estimates the batch at 1×, then each group of
    /// samples that `InferenceScale.autoFactor` enlarges again at its factor (up to 1 + 2² the cost).
    /// image1, image2: (N, 3, h, w) RGB in [0, 1] → flow in pixels (N, 2, h, w)
    public func predict(_ image1: Tensor, _ image2: Tensor, convention: FastFlowNetInputConvention = .mdflow,
                        scale: InferenceScale) -> Tensor {
        switch scale {
        case .fixed(let s):
            return predict(image1, image2, convention: convention, scale: s)
        case .auto:
            return Tape.noGrad { predictAuto(image1, image2, convention: convention) }
        }
    }

    private func predictAuto(_ image1: Tensor, _ image2: Tensor, convention: FastFlowNetInputConvention) -> Tensor {
        let first = predict(image1, image2, convention: convention, scale: 1)
        let factors = InferenceScale.motionPercentile95(first).map { InferenceScale.autoFactor(p95: $0) }
        if factors.allSatisfy({ $0 == 1 }) { return first }
        var rows = (0..<first.shape[0]).map { first.slice(dim: 0, start: $0, length: 1) }
        for f in Set(factors) where f != 1 {
            let group = factors.indices.filter { factors[$0] == f }
            let pick = { (x: Tensor) in Tensor.concat(group.map { x.slice(dim: 0, start: $0, length: 1) }, dim: 0) }
            let finer = predict(pick(image1), pick(image2), convention: convention, scale: f)
            for (k, s) in group.enumerated() { rows[s] = finer.slice(dim: 0, start: k, length: 1) }
        }
        return rows.count == 1 ? rows[0] : Tensor.concat(rows, dim: 0)
    }
}
