import Testing
import Tensor
import Losses
import TestSupport

@Suite struct PhotometricTests {
    @Test func censusMatchesPyTorch() throws {
        let errors = try compareWithFixture("census_soft_3x3", inputs: ["a", "b"]) { xs, _ in Photometric.census(xs[0], xs[1]) }
        #expect(errors.count == 3)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func censusMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 31)
        let a = Tensor.rand([1, 3, 5, 6], using: &rng), b = Tensor.rand([1, 3, 5, 6], using: &rng)
        let r = GradCheck.check([a, b], eps: 3e-4) { Photometric.census($0[0], $0[1]) }
        #expect(r.worst < 2e-2, "\(r)")
    }

    @Test func ssimDistanceMatchesPyTorch() throws {
        let errors = try compareWithFixture("ssim_distance", inputs: ["img1", "img2"]) { xs, _ in Photometric.ssim(xs[0], xs[1]) }
        #expect(errors.count == 3)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func ssimOfConstantImagesHasItsClosedForm() {
        let a: Float = 0.3, b: Float = 0.7
        let d = Photometric.ssim(Tensor.full([1, 1, 4, 5], a), Tensor.full([1, 1, 4, 5], b))
        #expect(d.shape == [1, 1, 2, 3])
        let c1: Float = 0.0001
        let ssim = (2 * a * b + c1) / (a * a + b * b + c1)
        for v in d.toArray() { #expect(abs(v - (1 - ssim) / 2) < 5e-5) }
        var rng = RandomGenerator(seed: 32)
        let x = Tensor.rand([1, 3, 6, 7], using: &rng)
        #expect(Photometric.ssim(x, x).maxValue() < 1e-4)
    }

    @Test func ssimMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 33)
        let x = Tensor.rand([1, 2, 5, 6], using: &rng), y = Tensor.rand([1, 2, 5, 6], using: &rng)
        let r = GradCheck.check([x, y], eps: 1e-3) { Photometric.ssim($0[0], $0[1]) }
        #expect(r.worst < 2e-2, "\(r)")
    }

    @Test func maskedPhotometricLossIsZeroForAPerfectReconstructionAndGrowsWithError() {
        var rng = RandomGenerator(seed: 34)
        let im = Tensor.rand([1, 3, 8, 9], using: &rng)
        let mask = Tensor.ones([1, 1, 8, 9])
        let w = Photometric.Weights(l1: 0.15, ssim: 0.85, census: 1)
        #expect(Photometric.loss(im, im, mask: mask, weights: w).item < 1e-5)
        let noisy = im + Tensor.randn(im.shape, std: 0.1, using: &rng)
        let l1 = Photometric.loss(im, noisy, mask: mask, weights: w).item
        let l2 = Photometric.loss(im, im + Tensor.randn(im.shape, std: 0.3, using: &rng), mask: mask, weights: w).item
        #expect(l1 > 0.01 && l2 > l1)
    }
}

@Suite struct SmoothnessTests {
    @Test(arguments: ["smooth_1st_alpha10", "smooth_2nd_alpha10"])
    func smoothnessMatchesPyTorch(_ name: String) throws {
        let (t, _) = try Fixtures.op(name)
        let flow = t["flow"]!.clone(), img = t["img"]!.clone()
        flow.requiresGrad = true; img.requiresGrad = true
        let y = name.contains("1st") ? Smoothness.firstOrder(flow, img) : Smoothness.secondOrder(flow, img)
        Tape.backward(y)
        let errors = [("\(name).y", relativeError(y, t["y"]!)), ("\(name).gflow", relativeError(flow.grad!, t["gflow"]!)),
                      ("\(name).gimg", relativeError(img.grad!, t["gimg"]!))]
        for (label, e) in errors {
            WorstError.shared.note(e, label)
            #expect(e <= 1e-4, "\(label): \(e)")
        }
    }

    @Test func smoothnessMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 35)
        let flow = Tensor.randn([1, 2, 5, 6], using: &rng), img = Tensor.rand([1, 3, 5, 6], using: &rng)
        let orders: [(String, (Tensor, Tensor, Float) -> Tensor)] = [("1st", { Smoothness.firstOrder($0, $1, alpha: $2) }), ("2nd", { Smoothness.secondOrder($0, $1, alpha: $2) })]
        for (name, f) in orders {
            let r = GradCheck.check([flow, img], eps: 1e-3) { f($0[0], $0[1], 10) }
            #expect(r.worst < 2e-2, "\(name): \(r)")
        }
    }
}

@Suite struct OcclusionTests {
    @Test func forwardBackwardMatchesPyTorch() throws {
        let (t, _) = try Fixtures.op("fb_occlusion")
        let m = Occlusion.forwardBackward(t["flow_fw"]!, t["flow_bw"]!)
        let expected = t["visible"]!
        var differ = 0
        for i in 0..<m.count where m.data[i] != expected.data[i] { differ += 1 }
        #expect(differ == 0, "\(differ) of \(m.count) pixels differ")
        WorstError.shared.note(Double(differ), "fb_occlusion (pixels differing)")
    }

    @Test func rangeMapFlagsPixelsNothingMapsTo() {
        let zero = Tensor.zeros([1, 2, 4, 5])
        #expect(Occlusion.rangeMap(zero).minValue() == 1)
        // Frame 2 moves 2 px to the right of frame 1 along F_b = −2: columns 3–4 of frame 1 get no mass.
        let shift = Tensor.zeros([1, 2, 4, 5])
        for i in 0..<20 { shift.data[i] = -2 }
        let m = Occlusion.rangeMap(shift)
        for y in 0..<4 { #expect(m.data[y * 5 + 0] == 1 && m.data[y * 5 + 3] == 0 && m.data[y * 5 + 4] == 0) }
    }

    @Test func rangeMapSurvivesNonFiniteAndHugeFlow() {
        let f = Tensor.zeros([1, 2, 3, 3])
        f.data[0] = .nan; f.data[1] = .infinity; f.data[2] = 1e30; f.data[3] = -1e30
        let m = Occlusion.rangeMap(f)
        #expect(m.shape == [1, 1, 3, 3] && m.toArray().allSatisfy { $0 == 0 || $0 == 1 })
    }
}
