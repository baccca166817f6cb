import Foundation
import Tensor
import Losses
import FlowData

/// The loss of one training step and its named terms (for logging).
public struct StepLoss {
    public var total: Tensor
    public var terms: [String: Float]
}

/// The MDFlow losses, stage by stage (DESIGN §3).
public enum StageLosses {
    /// Photometric + smoothness on a bidirectional FastFlowNet forward (ARFlow's unFlowLoss).
    /// `flows`: the teacher's outputs on ([I1; I2], [I2; I1]) (batch 2B). Returns the loss, the
    /// visibility masks (2B, 1, H, W) and terms.
    static func unsupervised(flows: [Tensor], a: Tensor, b: Tensor, spec: LossSpec, warmup: Bool, share: BatchShare) -> (Tensor, Tensor, [String: Float]) {
        let full = flows[0]
        let n2 = full.shape[0], n = n2 / 2, h = full.shape[2], w = full.shape[3]
        let ff = full.slice(dim: 0, start: 0, length: n), fb = full.slice(dim: 0, start: n, length: n)
        let visible: Tensor = Tape.noGrad {
            if warmup || spec.occlusion == .range {
                return Tensor.concat([Occlusion.rangeMap(fb.detached()), Occlusion.rangeMap(ff.detached())], dim: 0)
            }
            return Tensor.concat([Occlusion.forwardBackward(ff.detached(), fb.detached(), alpha1: spec.occAlpha1, alpha2: spec.occAlpha2),
                                  Occlusion.forwardBackward(fb.detached(), ff.detached(), alpha1: spec.occAlpha1, alpha2: spec.occAlpha2)], dim: 0)
        }
        let weights = warmup ? spec.warmupPhotometric : spec.photometric
        var loss: Tensor? = nil
        var photo: Float = 0
        // Scales under 4×4 pixels (small crops) are skipped: SSIM's 3×3 window does not fit them.
        for (s, flow) in flows.enumerated() where spec.scaleWeights[s] > 0 && flow.shape[2] >= 4 && flow.shape[3] >= 4 {
            let hs = flow.shape[2], ws = flow.shape[3]
            let (i1, i2) = Tape.noGrad { s == 0 ? (a, b) : (a.resizeArea(height: hs, width: ws), b.resizeArea(height: hs, width: ws)) }
            let recon = warp(i2, by: flow, padding: .border)
            let l = Photometric.loss(i1, recon, mask: Supervision.nearest(visible, height: hs, width: ws), weights: weights, share: share) * spec.scaleWeights[s]
            photo += l.item
            loss = loss.map { $0 + l } ?? l
        }
        var terms: [String: Float] = ["photo": photo]
        if spec.smoothWeight > 0 {
            let scaled = full * (1 / Float(min(h, w)))
            let sm = spec.smoothOrder == 1 ? Smoothness.firstOrder(scaled, a, alpha: spec.smoothAlpha, share: share)
                                           : Smoothness.secondOrder(scaled, a, alpha: spec.smoothAlpha, share: share)
            let l = sm * spec.smoothWeight
            terms["smooth"] = l.item
            loss = loss.map { $0 + l } ?? l
        }
        terms["visible"] = share.part(Float(visible.meanValue()))
        return (loss ?? Tensor.zeros([1]), visible, terms)
    }

    /// Stage 1 (and the teacher's own term in stage 3): unsupervised loss of the teacher, plus
    /// self-supervision on A(I) against A(F detached) masked by A(O), plus (stage 3) distillation
    /// from the student's flow on the same augmented pass masked by A(O_T). Terms are this
    /// process's shares (`share`), added up over processes by the trainer.
    public static func teacherStep(teacher: TrainableFlowNet, image1: Tensor, image2: Tensor, stage: StageSpec, step: Int,
                                   studentFlow: Tensor?, random: StepRandomness, share: BatchShare = .whole) -> StepLoss {
        let spec = stage.loss
        let n = image1.shape[0]
        let a = Tensor.concat([image1, image2], dim: 0), b = Tensor.concat([image2, image1], dim: 0)
        let flows = teacher.trainForward(a, b)
        var (loss, visible, terms) = unsupervised(flows: flows, a: a, b: b, spec: spec, warmup: step < spec.warmupSteps, share: share)
        let wSelf = spec.selfSupWeight, wDistill = studentFlow == nil ? 0 : spec.distillWeight
        if wSelf > 0 || wDistill > 0 {
            let aug = SelfAugmentation(stage.selfAugment, image1: image1, image2: image2, rngs: random.generators(stream: 0))
            let pred = teacher.trainForward(aug.image1, aug.image2)[0]
            let visF = visible.slice(dim: 0, start: 0, length: n)
            if wSelf > 0 {
                let ff = flows[0].slice(dim: 0, start: 0, length: n)
                let (t, m) = aug.target(flow: ff.detached(), mask: visF)
                let l = Supervision.robust(pred, t, mask: m, eps: spec.robustEps, q: spec.robustQ, share: share) * wSelf
                terms["selfsup"] = l.item
                loss = loss + l
            }
            if let studentFlow, wDistill > 0 {
                let own = flows[0].slice(dim: 0, start: 0, length: n)
                let (mask, fraction) = distillationMask(spec.distillMask, image1: image1, image2: image2, student: studentFlow,
                                                        teacher: own, visible: visF)
                if let fraction { terms["better"] = share.part(fraction) }
                let (t, m) = aug.target(flow: studentFlow, mask: mask)
                let l = Supervision.robust(pred, t, mask: m, eps: spec.robustEps, q: spec.robustQ, share: share) * wDistill
                terms["distill"] = l.item
                loss = loss + l
            }
        }
        return StepLoss(total: loss, terms: terms)
    }

    /// Where the student's flow supervises the teacher (`loss.distillMask`): `occlusion`, the
    /// teacher's visible pixels (MDFlow's figure); `better`, those of them where the student's flow
    /// is the more census-consistent (with the fraction kept); `all`, every pixel (the student's
    /// flow also where the teacher's photometric loss is blind). visible: (B,1,H,W).
    public static func distillationMask(_ kind: LossSpec.DistillMask, image1: Tensor, image2: Tensor, student: Tensor, teacher: Tensor,
                                        visible: Tensor) -> (Tensor, Float?) {
        switch kind {
        case .all: return (Tensor.full(visible.shape, 1), nil)
        case .better:
            let (better, fraction) = ReliableMask.studentIsBetter(image1: image1, image2: image2, student: student, teacher: teacher, visible: visible)
            return (better, fraction)
        case .occlusion: return (visible, nil)
        }
    }

    /// The reliable mask of a pseudo-label under the stage's occlusion model and confidence rule
    /// (`ReliableMask.compute`). → (mask (B,1,H,W), fraction of reliable pixels)
    public static func reliableMask(image1: Tensor, image2: Tensor, forward: Tensor, backward: Tensor, spec: LossSpec) -> (Tensor, Float) {
        ReliableMask.compute(image1: image1, image2: image2, forward: forward, backward: backward,
                             occlusion: spec.occlusion == .range ? .rangeMap : .forwardBackward(alpha1: spec.occAlpha1, alpha2: spec.occAlpha2),
                             rule: spec.confidence == .quantile ? .quantile(spec.quantile) : .threshold(spec.tau))
    }

    /// A supervised step on ground truth, the frames and the flow under the stage's augmentation
    /// ("A", which re-expresses the flow exactly). FastFlowNet: mean end-point error at every scale
    /// it outputs, measured in full-resolution pixels and weighted by `loss.scaleWeights`; RAFT:
    /// its sequence loss (L1, weights γ^(N−i)).
    /// flow: (B, 2, H, W) ground truth; valid: (B, 1, H, W)
    public static func supervisedStep(net: TrainableFlowNet, image1: Tensor, image2: Tensor, flow: Tensor, valid: Tensor,
                                      stage: StageSpec, random: StepRandomness, share: BatchShare = .whole) -> StepLoss {
        let spec = stage.loss
        let aug = SelfAugmentation(stage.selfAugment, image1: image1, image2: image2, rngs: random.generators(stream: 0))
        let (target, mask) = aug.target(flow: flow, mask: valid)
        let preds = net.trainForward(aug.image1, aug.image2)
        var loss: Tensor? = nil
        var terms: [String: Float] = [:]
        if net is TeacherNet {
            let w = target.shape[3]
            for (s, pred) in preds.enumerated() where spec.scaleWeights[s] > 0 {
                let hs = pred.shape[2], ws = pred.shape[3]
                // Level predictions are in pixels of their own grid; compare in full-resolution pixels.
                let factor = Float(w) / Float(ws)
                let (t, m) = Tape.noGrad {
                    s == 0 ? (target, mask) : (target.resizeArea(height: hs, width: ws) * (1 / factor), Supervision.downsampleValid(mask, height: hs, width: ws))
                }
                let l = Supervision.endPointError(pred, t, mask: m, share: share) * (spec.scaleWeights[s] * factor)
                if s == 0 { terms["epe"] = l.item / spec.scaleWeights[s] }
                loss = loss.map { $0 + l } ?? l
            }
        } else {
            loss = Supervision.sequence(preds, target, mask: mask, gamma: spec.sequenceGamma, eps: 0, q: 1, share: share)
            terms["epe"] = Supervision.endPointError(preds[preds.count - 1].detached(), target, mask: mask, share: share).item
        }
        terms["valid"] = share.part(Float(mask.meanValue()))
        return StepLoss(total: loss ?? Tensor.zeros([1]), terms: terms)
    }

    /// Stage 2: the frozen teacher's flows, filtered by the reliable mask, supervise the student
    /// on A(I) with RAFT's sequence weighting γ^(N−i).
    public static func studentStep(teacher: TrainableFlowNet, student: TrainableFlowNet, image1: Tensor, image2: Tensor,
                                   stage: StageSpec, random: StepRandomness, share: BatchShare = .whole) -> StepLoss {
        let spec = stage.loss
        let n = image1.shape[0]
        let both = teacher.infer(Tensor.concat([image1, image2], dim: 0), Tensor.concat([image2, image1], dim: 0))
        let ff = both.slice(dim: 0, start: 0, length: n), fb = both.slice(dim: 0, start: n, length: n)
        let (mask, forwardFraction) = reliableMask(image1: image1, image2: image2, forward: ff, backward: fb, spec: spec)
        var fraction = forwardFraction
        var targets = [(ff, mask)]
        var frames = [(image1, image2)]
        if spec.bidirectional {
            let (mb, fr) = reliableMask(image1: image2, image2: image1, forward: fb, backward: ff, spec: spec)
            targets.append((fb, mb)); frames.append((image2, image1))
            fraction = (fraction + fr) / 2
        }
        var loss: Tensor? = nil
        for (k, (f, m)) in targets.enumerated() {
            let aug = SelfAugmentation(stage.selfAugment, image1: frames[k].0, image2: frames[k].1, rngs: random.generators(stream: k))
            let (t, tm) = aug.target(flow: f, mask: m)
            let preds = student.trainForward(aug.image1, aug.image2)
            let l = Supervision.sequence(preds, t, mask: tm, gamma: spec.sequenceGamma, eps: spec.robustEps, q: spec.robustQ, share: share)
            loss = loss.map { $0 + l } ?? l
        }
        let total = loss! * (1 / Float(targets.count))
        var terms = ["distill": total.item, "reliable": share.part(fraction)]
        // A DEQ student's last solve: its mean residual and step, and how many samples diverged.
        for (key, value) in (student as? StudentNet)?.diagnostics ?? [:] { terms[key] = key == "deq_diverged" ? value : share.part(value) }
        return StepLoss(total: total, terms: terms)
    }
}
