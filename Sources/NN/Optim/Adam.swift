import Foundation
import Tensor

/// Adam and AdamW with PyTorch's exact update (torch.optim.Adam/AdamW, single-tensor path):
///
///     g ← g + wd·p                      (Adam: L2 through the gradient)
///     p ← p·(1 − lr·wd)                 (AdamW: decoupled decay, before the update)
///     m ← m + (1−β1)·(g − m)            (lerp, as PyTorch writes it)
///     v ← β2·v + (1−β2)·g²
///     p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + eps)
///
/// Bias corrections and the step size are computed in Double and rounded once, as Python does.
/// Parameters without a gradient are skipped (their step count still advances, as one shared
/// step, like PyTorch's per-parameter counters when every parameter gets a gradient).
public final class Adam {
    public struct Group {
        public var parameters: [(String, Tensor)]
        public var weightDecay: Float
        public init(_ parameters: [(String, Tensor)], weightDecay: Float = 0) {
            self.parameters = parameters
            self.weightDecay = weightDecay
        }
    }

    public var groups: [Group]
    public var lr: Double
    public let beta1: Float, beta2: Float, eps: Float
    public let decoupled: Bool
    /// Steps taken so far (t of the bias correction).
    public private(set) var step = 0
    var m: [ObjectIdentifier: Storage] = [:]
    var v: [ObjectIdentifier: Storage] = [:]

    /// `decoupled` true is AdamW.
    public init(_ groups: [Group], lr: Double, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, decoupled: Bool = false) {
        self.groups = groups
        self.lr = lr
        (beta1, beta2) = betas
        self.eps = eps
        self.decoupled = decoupled
    }

    /// Applies one update from the parameters' accumulated gradients.
    public func update() {
        step += 1
        let t = Double(step)
        let bc1 = 1 - Foundation.pow(Double(beta1), t)
        let bc2Sqrt = (1 - Foundation.pow(Double(beta2), t)).squareRoot()
        let stepSize = Float(lr / bc1)
        let b2 = beta2, eps = eps, w1 = 1 - beta1, w2 = 1 - beta2
        let bc2s = Float(bc2Sqrt)
        for group in groups {
            let decay = Float(1 - lr * Double(group.weightDecay))
            let l2 = decoupled ? 0 : group.weightDecay
            for (_, p) in group.parameters {
                guard let gs = p.gradStorage else { continue }
                let id = ObjectIdentifier(p)
                let ms = m[id] ?? Storage(zeros: p.count), vs = v[id] ?? Storage(zeros: p.count)
                m[id] = ms; v[id] = vs
                let pp = p.data, gp = gs.pointer, mp = ms.pointer, vp = vs.pointer, n = p.count
                let doDecay = decoupled && group.weightDecay != 0
                // Element by element, so splitting a large tensor across the threads changes nothing.
                parallelFor(n, minCount: 1 << 15) { range in
                    for i in range {
                        var g = gp[i]
                        if l2 != 0 { g = g + l2 * pp[i] }
                        if doDecay { pp[i] = pp[i] * decay }
                        mp[i] = mp[i] + w1 * (g - mp[i])
                        vp[i] = vp[i] * b2 + w2 * (g * g)
                        let denom = vp[i].squareRoot() / bc2s + eps
                        pp[i] = pp[i] - stepSize * (mp[i] / denom)
                    }
                }
            }
        }
    }

    /// Optimizer state as tensors keyed `<param>.exp_avg` / `<param>.exp_avg_sq`, plus the step.
    public func stateDict() -> (tensors: [String: Tensor], step: Int) {
        var d: [String: Tensor] = [:]
        for g in groups {
            for (name, p) in g.parameters {
                let id = ObjectIdentifier(p)
                if let ms = m[id], let vs = v[id] {
                    d[name + ".exp_avg"] = Tensor(shape: p.shape, storage: copyStorage(ms))
                    d[name + ".exp_avg_sq"] = Tensor(shape: p.shape, storage: copyStorage(vs))
                }
            }
        }
        return (d, step)
    }

    /// Restores what `stateDict` saved. A parameter's moments must both be present or absent.
    public func load(_ tensors: [String: Tensor], step: Int, source: String) throws {
        var newM: [ObjectIdentifier: Storage] = [:], newV: [ObjectIdentifier: Storage] = [:]
        for g in groups {
            for (name, p) in g.parameters {
                let a = tensors[name + ".exp_avg"], b = tensors[name + ".exp_avg_sq"]
                if a == nil && b == nil { continue }
                guard let a, let b, a.count == p.count, b.count == p.count else {
                    throw WeightsError("\(source): optimizer state for '\(name)' is incomplete or mis-shaped")
                }
                newM[ObjectIdentifier(p)] = copyStorage(a.storage)
                newV[ObjectIdentifier(p)] = copyStorage(b.storage)
            }
        }
        m = newM; v = newV
        self.step = step
    }

    private func copyStorage(_ s: Storage) -> Storage {
        let c = Storage(count: s.count)
        c.pointer.update(from: s.pointer, count: s.count)
        return c
    }
}

/// Scales all gradients so that their global L2 norm is at most `maxNorm`
/// (torch.nn.utils.clip_grad_norm_: coefficient maxNorm/(norm + 1e-6), clamped to 1).
/// Returns the norm before clipping (NaN/Inf if any gradient is not finite).
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total = 0.0
    for p in parameters {
        guard let g = p.gradStorage else { continue }
        var s = 0.0
        for i in 0..<p.count { s += Double(g.pointer[i]) * Double(g.pointer[i]) }
        total += s
    }
    let norm = Float(total.squareRoot())
    let coef = min(maxNorm / (norm + 1e-6), 1)
    if coef < 1 {
        for p in parameters {
            guard let g = p.gradStorage else { continue }
            for i in 0..<p.count { g.pointer[i] *= coef }
        }
    }
    return norm
}
