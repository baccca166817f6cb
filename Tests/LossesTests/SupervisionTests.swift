import Testing
import Tensor
import Losses

/// The supervision losses and confidence masks against values computed by hand.
@Suite struct SupervisionTests {
    @Test func sequenceLossWeighsLaterIterationsMore() {
        // Two iterations on one pixel: |errors| 2 and 1 in u; the second pixel is masked out.
        let target = Tensor(shape: [1, 2, 1, 2], values: [0, 0, 0, 0])
        let p0 = Tensor(shape: [1, 2, 1, 2], values: [2, 9, 0, 9])
        let p1 = Tensor(shape: [1, 2, 1, 2], values: [1, 9, 0, 9])
        let mask = Tensor(shape: [1, 1, 1, 2], values: [1, 0])
        // robust (ε 0, q 1) = mean over the 4 values of |d|·m / mean(m): (2 + 0) / 4 / 0.5 = 1, then 0.5.
        let l = Supervision.sequence([p0, p1], target, mask: mask, gamma: 0.8, eps: 0, q: 1)
        #expect(abs(l.item - (0.8 * 1 + 0.5)) < 1e-5, "\(l.item)")
        let epe = Supervision.endPointError(p0, target, mask: mask)
        #expect(abs(epe.item - 2) < 1e-3, "\(epe.item)")
    }

    @Test func downsampledValidityNeedsEveryFinePixelValid() {
        // 2×4 → 1×2: the left cell is all valid, the right one has a hole.
        let m = Tensor(shape: [1, 1, 2, 4], values: [1, 1, 1, 0, 1, 1, 1, 1])
        #expect(Supervision.downsampleValid(m, height: 1, width: 2).toArray() == [1, 0])
        #expect(Supervision.nearest(m, height: 1, width: 2).toArray() == [1, 1])
    }

    @Test func reliableMaskKeepsConsistentVisiblePixels() {
        // A textured pair related by a 2-px shift to the right; zero backward flow everywhere but
        // the true one makes the forward-backward check fail nowhere inside but at the border.
        let h = 16, w = 24
        var a = [Float](repeating: 0, count: 3 * h * w), b = a
        for c in 0..<3 { for y in 0..<h { for x in 0..<w {
            let v = Float((x * 7 + y * 13 + c * 5) % 11) / 11
            a[(c * h + y) * w + x] = v
            let sx = x - 2
            b[(c * h + y) * w + x] = sx >= 0 ? Float((sx * 7 + y * 13 + c * 5) % 11) / 11 : 0
        } } }
        let i1 = Tensor(shape: [1, 3, h, w], values: a), i2 = Tensor(shape: [1, 3, h, w], values: b)
        var fwd = [Float](repeating: 0, count: 2 * h * w), bwd = fwd
        for i in 0..<(h * w) { fwd[i] = 2; bwd[i] = -2 }
        let f = Tensor(shape: [1, 2, h, w], values: fwd), bk = Tensor(shape: [1, 2, h, w], values: bwd)
        let (mask, kept) = ReliableMask.compute(image1: i1, image2: i2, forward: f, backward: bk,
                                                occlusion: .forwardBackward(alpha1: 0.01, alpha2: 0.5), rule: .threshold(0.25))
        // The right two columns leave the frame: their backward flow samples zeros.
        #expect(kept > 0.75 && kept < 1, "\(kept)")
        #expect(mask.toArray()[5 * w + 10] == 1 && mask.toArray()[5 * w + w - 1] == 0)
        // The wrong flow (zero) is not census-consistent on this texture.
        let zero = Tensor.zeros([1, 2, h, w])
        let (_, keptZero) = ReliableMask.compute(image1: i1, image2: i2, forward: zero, backward: zero,
                                                 occlusion: .forwardBackward(alpha1: 0.01, alpha2: 0.5), rule: .threshold(0.25))
        #expect(keptZero < kept / 2, "zero flow kept \(keptZero)")
        // The quantile rule keeps the most consistent part of the visible pixels (ties included).
        let (_, q) = ReliableMask.compute(image1: i1, image2: i2, forward: zero, backward: zero, occlusion: .rangeMap, rule: .quantile(0.5))
        #expect(q > 0.3 && q < kept, "\(q)")
    }
}
