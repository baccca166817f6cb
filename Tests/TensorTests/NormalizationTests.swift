import Testing
import Foundation
import Tensor
import TestSupport

/// Parses a JSON array metadata value into a tensor.
private func metaTensor(_ s: String?) throws -> Tensor {
    let values = try JSONDecoder().decode([Double].self, from: Data((s ?? "[]").utf8)).map(Float.init)
    return Tensor(shape: [values.count], values: values)
}

@Suite struct NormalizationTests {
    @Test func instanceNormMatchesPyTorch() throws {
        let errors = try compareWithFixture("instance_norm", inputs: ["x"]) { xs, meta in
            xs[0].instanceNorm(eps: Float(meta["eps"] ?? "") ?? 1e-5)
        }
        #expect(errors.count == 2)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func batchNormTrainingMatchesPyTorchAndUpdatesRunningStatistics() throws {
        let c = 4
        let runningMean = Tensor.zeros([c]), runningVar = Tensor.ones([c])
        let errors = try compareWithFixture("batch_norm_train", inputs: ["x", "w", "b"]) { xs, meta in
            #expect(meta["training"] == "true")
            return xs[0].batchNorm(weight: xs[1], bias: xs[2], runningMean: runningMean, runningVar: runningVar,
                                   training: true, momentum: Float(meta["momentum"] ?? "") ?? 0.1,
                                   eps: Float(meta["eps"] ?? "") ?? 1e-5)
        }
        #expect(errors.count == 4)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
        let (t, _) = try Fixtures.op("batch_norm_train")
        let em = relativeError(runningMean, t["running_mean_after"]!)
        let ev = relativeError(runningVar, t["running_var_after"]!)
        WorstError.shared.note(em, "batch_norm_train.running_mean_after")
        WorstError.shared.note(ev, "batch_norm_train.running_var_after")
        #expect(em <= 1e-4 && ev <= 1e-4, "running mean \(em), running var \(ev)")
    }

    @Test func batchNormEvalMatchesPyTorch() throws {
        let errors = try compareWithFixture("batch_norm_eval", inputs: ["x", "w", "b"]) { xs, meta in
            let rm = try! metaTensor(meta["running_mean"]), rv = try! metaTensor(meta["running_var"])
            #expect(rm.count == 4 && rv.count == 4)
            let rmBefore = rm.toArray()
            let y = xs[0].batchNorm(weight: xs[1], bias: xs[2], runningMean: rm, runningVar: rv,
                                    training: false, eps: Float(meta["eps"] ?? "") ?? 1e-5)
            #expect(rm.toArray() == rmBefore)   // eval leaves the statistics alone
            return y
        }
        #expect(errors.count == 4)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func runningStatisticsUseUnbiasedVarianceAndMomentum() {
        // One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3.
        let x = Tensor(shape: [4, 1], values: [1, 2, 3, 4])
        let rm = Tensor.zeros([1]), rv = Tensor.ones([1])
        let y = x.batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, eps: 0)
        #expect(abs(rm.data[0] - 0.25) < 1e-6)
        #expect(abs(rv.data[0] - (0.9 + 0.1 * 5 / 3)) < 1e-6)
        let inv = 1 / Float(1.25).squareRoot()
        #expect(zip(y.toArray(), [-1.5, -0.5, 0.5, 1.5].map { $0 * inv }).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func instanceNormNormalizesEachPlane() {
        var rng = RandomGenerator(seed: 71)
        let y = (Tensor.randn([2, 3, 4, 5], using: &rng) * 3 + 2).instanceNorm(eps: 0)
        for p in 0..<6 {
            let v = Array(y.toArray()[(p * 20)..<(p * 20 + 20)])
            let m = v.reduce(0, +) / 20
            let s = v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 20
            #expect(abs(m) < 1e-5 && abs(s - 1) < 1e-4)
        }
    }

    @Test func instanceNormBackwardMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 72)
        let x = Tensor.randn([2, 3, 3, 4], using: &rng)
        let r = GradCheck.check([x], eps: 1e-2) { $0[0].instanceNorm() }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test(arguments: [true, false])
    func batchNormBackwardMatchesFiniteDifferences(_ training: Bool) {
        var rng = RandomGenerator(seed: 73)
        let x = Tensor.randn([3, 2, 3, 4], using: &rng)
        let w = Tensor.randn([2], using: &rng), b = Tensor.randn([2], using: &rng)
        let rm = Tensor(shape: [2], values: [0.3, -0.2]), rv = Tensor(shape: [2], values: [0.7, 1.4])
        let r = GradCheck.check([x, w, b]) { xs in
            // Fresh running statistics per call, so training-mode updates do not leak between evaluations.
            xs[0].batchNorm(weight: xs[1], bias: xs[2], runningMean: rm.clone(), runningVar: rv.clone(), training: training)
        }
        #expect(r.worst < 1e-2, "\(r)")
    }
}
