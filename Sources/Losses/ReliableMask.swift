// Which pixels of a pseudo-label to trust (MDFlow's confidence masks): the teacher's reliable
// flows for the student, and where the student's flow beats the teacher's own.
import Foundation
import Tensor

/// How occluded pixels are found.
public enum OcclusionModel: Sendable, Equatable {
    /// The forward–backward check (`Occlusion.forwardBackward`).
    case forwardBackward(alpha1: Float, alpha2: Float)
    /// The range map of the backward flow (`Occlusion.rangeMap`).
    case rangeMap
}

/// Which visible pixels count as reliable, by their census distance after warping.
public enum ConfidenceRule: Sendable, Equatable {
    /// Census distance ≤ τ.
    case threshold(Float)
    /// The most consistent fraction q of the visible pixels.
    case quantile(Float)
}

public enum ReliableMask {
    /// Visible (under `occlusion`) ∧ census distance(I1, warp(I2, F)) passes `rule`.
    /// images: (B, 3, H, W); flows: (B, 2, H, W) → (mask (B, 1, H, W), fraction of pixels kept)
    public static func compute(image1: Tensor, image2: Tensor, forward: Tensor, backward: Tensor,
                               occlusion: OcclusionModel, rule: ConfidenceRule) -> (Tensor, Float) {
        Tape.noGrad {
            let visible: Tensor
            switch occlusion {
            case .rangeMap: visible = Occlusion.rangeMap(backward)
            case let .forwardBackward(a1, a2): visible = Occlusion.forwardBackward(forward, backward, alpha1: a1, alpha2: a2)
            }
            let d = Photometric.census(image1, warp(image2, by: forward, padding: .border))
            var tau: Float
            switch rule {
            case .threshold(let t): tau = t
            case .quantile(let q):
                var values: [Float] = []
                for i in 0..<d.count where visible.data[i] > 0.5 { values.append(d.data[i]) }
                values.sort()
                tau = values.isEmpty ? 0 : values[min(values.count - 1, Int(Float(values.count) * q))]
            }
            return visibleWhere(visible) { d.data[$0] <= tau }
        }
    }

    /// Where the student's flow explains I1 better than the teacher's own: visible ∧ census
    /// distance(I1, warp(I2, F_S)) < census distance(I1, warp(I2, F_T)).
    /// → (mask (B, 1, H, W), fraction of pixels kept)
    public static func studentIsBetter(image1: Tensor, image2: Tensor, student: Tensor, teacher: Tensor, visible: Tensor) -> (Tensor, Float) {
        Tape.noGrad {
            let ds = Photometric.census(image1, warp(image2, by: student.detached(), padding: .border))
            let dt = Photometric.census(image1, warp(image2, by: teacher.detached(), padding: .border))
            return visibleWhere(visible) { ds.data[$0] < dt.data[$0] }
        }
    }

    /// 1 where visible and `keep(i)`, else 0; with the fraction of pixels kept.  visible: (B, 1, H, W)
    static func visibleWhere(_ visible: Tensor, _ keep: (Int) -> Bool) -> (Tensor, Float) {
        let m = Tensor(uninitialized: visible.shape)
        var kept = 0
        for i in 0..<m.count {
            let ok = visible.data[i] > 0.5 && keep(i)
            m.data[i] = ok ? 1 : 0
            if ok { kept += 1 }
        }
        return (m, Float(kept) / Float(max(m.count, 1)))
    }
}
