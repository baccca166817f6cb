import Testing
import Tensor
import TestSupport

@Suite struct ResizeTests {
    @Test(arguments: ["bilinear_up4_alignFalse", "bilinear_up8_alignTrue", "bilinear_down_alignFalse", "bilinear_odd_alignTrue"])
    func resizeBilinearMatchesPyTorch(_ name: String) throws {
        let errors = try compareWithFixture(name, inputs: ["x"]) { xs, meta in
            let size = metaInts(meta["size"])
            #expect(size.count == 2)
            let align = meta["align_corners"] == "true"
            #expect(align == name.hasSuffix("alignTrue"))
            return xs[0].resizeBilinear(height: size[0], width: size[1], alignCorners: align)
        }
        #expect(errors.count == 2)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func halfPixelCentresClampAtZeroAndRepeatTheLastPixel() {
        let x = Tensor(shape: [1, 1, 1, 2], values: [0, 1])
        // align_corners=false, 2 → 4: src = (d + 0.5)/2 − 0.5 = −0.25 (→ 0), 0.25, 0.75, 1.25 (→ last pixel).
        #expect(x.resizeBilinear(height: 1, width: 4, alignCorners: false).toArray() == [0, 0.25, 0.75, 1])
        // align_corners=true, 2 → 3: src = d/2.
        #expect(x.resizeBilinear(height: 1, width: 3, alignCorners: true).toArray() == [0, 0.5, 1])
        // A single output with align_corners=true takes the first pixel.
        #expect(x.resizeBilinear(height: 1, width: 1, alignCorners: true).toArray() == [0])
    }

    @Test(arguments: [(9, 13, false), (9, 13, true), (3, 4, false), (3, 4, true), (5, 1, true)])
    func resizeBilinearBackwardMatchesFiniteDifferences(_ oh: Int, _ ow: Int, _ align: Bool) {
        var rng = RandomGenerator(seed: 31)
        let x = Tensor.randn([2, 2, 5, 6], using: &rng)
        let r = GradCheck.check([x]) { $0[0].resizeBilinear(height: oh, width: ow, alignCorners: align) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test func resizeBilinearBackwardAccumulates() {
        var rng = RandomGenerator(seed: 32)
        let x = Tensor.randn([1, 1, 3, 3], using: &rng)
        x.requiresGrad = true
        let seed = Tensor.ones([1, 1, 6, 6])
        Tape.backward(x.resizeBilinear(height: 6, width: 6, alignCorners: false), seed: seed)
        let once = x.grad!.clone()
        Tape.backward(x.resizeBilinear(height: 6, width: 6, alignCorners: false), seed: seed)
        // Every output distributes weight 1, so the gradient sums to the output count per call.
        #expect(abs(once.toArray().reduce(0, +) - 36) < 1e-4)
        #expect(zip(x.grad!.toArray(), once.toArray()).allSatisfy { abs($0 - 2 * $1) < 1e-5 })
    }
}
