import Testing
import Tensor
import TestSupport

@Suite struct PoolTests {
    @Test(arguments: [("avg_pool2d_k2s2_floor", 2, 2), ("avg_pool2d_k3s1p0", 3, 1)])
    func avgPool2dMatchesPyTorch(_ name: String, _ kernel: Int, _ stride: Int) throws {
        let errors = try compareWithFixture(name, inputs: ["x"]) { xs, meta in
            #expect(metaInts(meta["kernel"]) == [kernel] && metaInts(meta["stride"]) == [stride])
            return xs[0].avgPool2d(kernel: kernel, stride: stride, padding: metaInts(meta["padding"]).first ?? 0)
        }
        #expect(errors.count == 2)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func resizeAreaMatchesPyTorch() throws {
        let errors = try compareWithFixture("area_down2", inputs: ["x"]) { xs, meta in
            let size = metaInts(meta["size"])
            return xs[0].resizeArea(height: size[0], width: size[1])
        }
        #expect(errors.count == 2)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func avgPool2dCountsPaddingAsZeros() {
        // Ones padded by 1 and pooled 2×2 with stride 1: each window divides by 4 whatever it covers.
        let x = Tensor.ones([1, 1, 2, 2])
        let y = x.avgPool2d(kernel: 2, stride: 1, padding: 1)
        #expect(y.shape == [1, 1, 3, 3])
        #expect(y.toArray() == [0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25])
        // Floor mode drops the last odd row and column.
        let z = Tensor(shape: [1, 3, 3], values: [1, 2, 3, 4, 5, 6, 7, 8, 9]).avgPool2d(kernel: 2)
        #expect(z.shape == [1, 1, 1])
        #expect(z.toArray() == [3])
    }

    @Test func resizeAreaUsesOverlappingAdaptiveWindows() {
        // Width 3 → 2: windows [0, 2) and [1, 3).
        let y = Tensor(shape: [1, 1, 1, 3], values: [1, 2, 4]).resizeArea(height: 1, width: 2)
        #expect(y.toArray() == [1.5, 3])
        // Upsampling repeats: width 2 → 4 windows [0,1) [0,1) [1,2) [1,2).
        let u = Tensor(shape: [1, 2], values: [5, 7]).resizeArea(height: 1, width: 4)
        #expect(u.toArray() == [5, 5, 7, 7])
    }

    @Test(arguments: [(2, 2, 0), (3, 2, 1), (3, 1, 0), (2, 1, 1)])
    func avgPool2dBackwardMatchesFiniteDifferences(_ kernel: Int, _ stride: Int, _ padding: Int) {
        var rng = RandomGenerator(seed: 21)
        let x = Tensor.randn([2, 2, 5, 7], using: &rng)
        let r = GradCheck.check([x]) { $0[0].avgPool2d(kernel: kernel, stride: stride, padding: padding) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test(arguments: [(3, 4), (2, 7), (9, 5)])
    func resizeAreaBackwardMatchesFiniteDifferences(_ oh: Int, _ ow: Int) {
        var rng = RandomGenerator(seed: 22)
        let x = Tensor.randn([1, 2, 7, 9], using: &rng)
        let r = GradCheck.check([x]) { $0[0].resizeArea(height: oh, width: ow) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test func poolBackwardAccumulatesAcrossCalls() {
        var rng = RandomGenerator(seed: 23)
        let x = Tensor.randn([1, 1, 4, 4], using: &rng)
        x.requiresGrad = true
        let seed = Tensor.ones([1, 1, 2, 2])
        Tape.backward(x.avgPool2d(kernel: 2), seed: seed)
        Tape.backward(x.resizeArea(height: 2, width: 2), seed: seed)
        #expect(x.grad!.toArray() == [Float](repeating: 0.5, count: 16))
    }
}
