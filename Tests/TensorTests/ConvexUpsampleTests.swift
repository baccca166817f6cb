import Testing
import Tensor
import TestSupport

/// RAFT's `upsample_flow` written with primitive ops: softmax over the 9 taps of the mask viewed
/// as (N, 9, f², H, W); the 3×3 zero-padded neighbourhood of f·flow (k = ky·3 + kx); the weighted
/// sum; fine pixel (f·h + a, f·w + b) from mask entry a·f + b.
private func composedConvexUpsample(_ flow: Tensor, _ mask: Tensor, f: Int) -> Tensor {
    let n = flow.shape[0], c = flow.shape[1], h = flow.shape[2], w = flow.shape[3]
    let p = mask.reshape([n, 9, f * f * h * w]).softmax(dim: 1).reshape([n, 9, f * f, h, w])
    let padded = (flow * Float(f)).pad(left: 1, right: 1, top: 1, bottom: 1)
    var acc: Tensor? = nil
    for k in 0..<9 {
        let ky = k / 3, kx = k % 3
        let nb = padded.slice(dim: 2, start: ky, length: h).slice(dim: 3, start: kx, length: w).reshape([n, c, 1, h, w])
        let pk = p.slice(dim: 1, start: k, length: 1)                      // (n, 1, f², h, w)
        let term = nb * pk                                                  // (n, c, f², h, w)
        acc = acc.map { $0 + term } ?? term
    }
    // (n, c, a, b, h, w) → (n, c, h, a, w, b)
    return acc!.reshape([n, c, f, f, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([n, c, f * h, f * w])
}

@Suite struct ConvexUpsampleTests {
    @Test func convexUpsampleMatchesRAFTsComposition() {
        var rng = RandomGenerator(seed: 1)
        let flow = Tensor.randn([2, 2, 3, 4], using: &rng), mask = Tensor.randn([2, 36, 3, 4], using: &rng)
        flow.requiresGrad = true; mask.requiresGrad = true
        let y = convexUpsample(flow, mask: mask, factor: 2)
        let gy = Tensor.randn(y.shape, using: &rng)
        Tape.backward(y, seed: gy)
        let gf = flow.grad!.clone(), gm = mask.grad!.clone()
        flow.freeGrad(); mask.freeGrad()
        let r = composedConvexUpsample(flow, mask, f: 2)
        Tape.backward(r, seed: gy)
        #expect(relativeError(y, r) < 1e-6)
        #expect(relativeError(gf, flow.grad!) < 1e-5)
        #expect(relativeError(gm, mask.grad!) < 1e-5)
    }

    @Test func convexUpsampleBackwardMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 2)
        let flow = Tensor.randn([1, 2, 3, 3], using: &rng), mask = Tensor.randn([1, 9 * 4, 3, 3], using: &rng)
        let r = GradCheck.check([flow, mask]) { convexUpsample($0[0], mask: $0[1], factor: 2) }
        #expect(r.worst < 2e-2, "\(r)")
    }

    @Test func convexUpsampleOfConstantFlowIsThatFlowTimesTheFactorAwayFromBorders() {
        var rng = RandomGenerator(seed: 3)
        let flow = Tensor.full([1, 2, 4, 4], 0.5), mask = Tensor.randn([1, 9 * 64, 4, 4], using: &rng)
        let y = Tape.noGrad { convexUpsample(flow, mask: mask, factor: 8) }
        #expect(y.shape == [1, 2, 32, 32])
        // An interior fine pixel (row 12, col 13) has all 9 neighbours inside: a convex combination of 4.
        #expect(abs(y.data[12 * 32 + 13] - 4) < 1e-5)
    }
}
