import Testing
import Tensor
import Losses

@Suite struct MetricsTests {
    @Test func metricsMatchHandComputedValues() {
        // One 1×3 image: errors 0, 5 (3-4-5 triangle), 2; the middle pixel is occluded.
        let gt = Tensor(shape: [1, 2, 1, 3], values: [0, 10, 1, 0, 0, 0])
        let pred = Tensor(shape: [1, 2, 1, 3], values: [0, 13, 3, 0, 4, 0])
        let occ = Tensor(shape: [1, 1, 1, 3], values: [0, 1, 0])
        var m = FlowMetrics()
        m.add(pred: pred, gt: gt, occluded: occ)
        #expect(abs(m.epe - 7.0 / 3) < 1e-9)
        #expect(abs(m.epeNoc! - 1) < 1e-9)      // (0 + 2) / 2
        #expect(abs(m.epeOcc! - 5) < 1e-9)
        #expect(abs(m.outliers.px1 - 200.0 / 3) < 1e-9)
        #expect(abs(m.outliers.px3 - 100.0 / 3) < 1e-9)
        #expect(m.outliers.px5 == 0)
        // Fl: pixel 2 has EPE 5 > 3 and 5 > 0.05·10 → bad; pixel 3 has EPE 2 → good.
        #expect(abs(m.flAll - 100.0 / 3) < 1e-9)
    }

    @Test func perImageAndPooledAveragesDiffer() {
        var m = FlowMetrics()
        let gt = Tensor.zeros([1, 2, 1, 2])
        m.add(pred: Tensor(shape: [1, 2, 1, 2], values: [1, 1, 0, 0]), gt: gt)                       // EPE 1
        m.add(pred: Tensor(shape: [1, 2, 1, 2], values: [3, 3, 0, 0]), gt: gt,
              valid: Tensor(shape: [1, 1, 1, 2], values: [1, 0]))                                    // EPE 3 on 1 pixel
        #expect(abs(m.epe - 2) < 1e-9)              // (1 + 3) / 2 images
        #expect(abs(m.epePixel - 5.0 / 3) < 1e-9)   // (1 + 1 + 3) / 3 pixels
        #expect(m.images == 2)
    }

    /// Metrics measured on parts of a set add up, through `sums`, to the metrics of the whole.
    @Test func sumsOfPartsGiveTheWhole() {
        var rng = RandomGenerator(seed: 4)
        let images = (0..<5).map { _ in (Tensor.randn([1, 2, 3, 4], using: &rng) * 4, Tensor.randn([1, 2, 3, 4], using: &rng) * 4,
                                          Tensor(shape: [1, 1, 3, 4], values: (0..<12).map { Float($0 % 3 == 0 ? 1 : 0) })) }
        var whole = FlowMetrics(), even = FlowMetrics(), odd = FlowMetrics()
        for (i, (p, g, o)) in images.enumerated() {
            whole.add(pred: p, gt: g, occluded: o)
            if i % 2 == 0 { even.add(pred: p, gt: g, occluded: o) } else { odd.add(pred: p, gt: g, occluded: o) }
        }
        let summed = FlowMetrics(sums: zip(even.sums, odd.sums).map { $0 + $1 })
        for (key, value) in whole.summary { #expect(abs(summed.summary[key]! - value) <= 1e-12 * max(1, abs(value)), "\(key)") }
        #expect(FlowMetrics(sums: whole.sums).sums == whole.sums)
    }
}
