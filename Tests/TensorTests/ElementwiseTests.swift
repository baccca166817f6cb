import Testing
import Tensor
import TestSupport

@Suite struct ElementwiseTests {
    @Test func broadcastingArithmeticIsExact() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3], values: [10, 20, 30])
        #expect((a + b).toArray() == [11, 22, 33, 14, 25, 36])
        #expect((a * Tensor(shape: [2, 1], values: [2, 3])).toArray() == [2, 4, 6, 12, 15, 18])
        #expect((b - a).shape == [2, 3])
        #expect((a / 2).toArray() == [0.5, 1, 1.5, 2, 2.5, 3])
        #expect((1 - a).toArray() == [0, -1, -2, -3, -4, -5])
    }

    @Test func binaryOpsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.rand([2, 3, 4], 0.5, 2, using: &rng)
        let b = Tensor.rand([3, 1], 0.5, 2, using: &rng)
        let same = Tensor.rand([2, 3, 4], 0.5, 2, using: &rng)
        let ops: [(String, ([Tensor]) -> Tensor)] = [
            ("add", { $0[0] + $0[1] }), ("sub", { $0[0] - $0[1] }), ("mul", { $0[0] * $0[1] }), ("div", { $0[0] / $0[1] }),
        ]
        for (name, f) in ops {
            let r = GradCheck.check([a, b], f)
            #expect(r.worst < 1e-2, "\(name) broadcast: \(r)")
            let r2 = GradCheck.check([a, same], f)
            #expect(r2.worst < 1e-2, "\(name) same shape: \(r2)")
        }
        // max/min away from ties.
        let c = a + 0.25
        let r = GradCheck.check([c, same]) { $0[0].maximum($0[1]) + $0[0].minimum($0[1]) * 3 }
        #expect(r.worst < 1e-2, "max/min: \(r)")
    }

    @Test func unaryOpsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 2)
        let x = Tensor.rand([3, 4], 0.3, 2, using: &rng)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("abs", { ($0 - 1.15).abs() }), ("sqrt", { $0.sqrt() }), ("exp", { $0.exp() }), ("log", { $0.log() }),
            ("pow", { $0.pow(0.4) }), ("square", { $0.square() }), ("scalar", { 3 - 2 * $0 / 4 + 1 }),
            ("rdiv", { 2 / $0 }), ("neg", { -$0 }),
        ]
        for (name, f) in ops {
            let r = GradCheck.check([x]) { f($0[0]) }
            #expect(r.worst < 1e-2, "\(name): \(r)")
        }
    }

    @Test func clampMatchesFiniteDifferencesAwayFromItsBounds() {
        // Values straddle both bounds but stay ≥ 0.1 from them, so no step crosses a kink.
        let x = Tensor(shape: [8], values: [0.2, 0.5, 0.85, 1.0, 1.3, 1.45, 1.8, 2.0])
        let r = GradCheck.check([x], eps: 1e-2) { $0[0].clamp(min: 0.7, max: 1.6) }
        #expect(r.worst < 1e-2, "\(r)")
        let y = x.clamp(min: 0.7, max: 1.6).toArray()
        #expect(y == [0.7, 0.7, 0.85, 1.0, 1.3, 1.45, 1.6, 1.6])
    }

    @Test func comparisonsGiveMasksWithoutGradient() {
        let a = Tensor(shape: [4], values: [-1, 0, 1, 2])
        a.requiresGrad = true
        #expect(a.gt(0).toArray() == [0, 0, 1, 1])
        #expect(a.le(0).toArray() == [1, 1, 0, 0])
        #expect(a.lt(Tensor(shape: [1], values: [1])).toArray() == [1, 1, 0, 0])
        #expect(!a.gt(0).requiresGrad)
    }

    @Test func backwardAccumulatesAcrossCalls() {
        let x = Tensor(shape: [3], values: [1, 2, 3], requiresGrad: true)
        Tape.backward((x * x).sum())
        Tape.backward((x * x).sum())
        #expect(x.grad!.toArray() == [4, 8, 12])
    }

    @Test func tensorUsedTwiceGetsBothContributions() {
        let x = Tensor(shape: [2], values: [3, 5], requiresGrad: true)
        let y = (x * 2 + x * x).sum()
        Tape.backward(y)
        #expect(x.grad!.toArray() == [8, 12])
    }

    @Test func noGradRecordsNothingAndDetachBlocks() {
        let x = Tensor(shape: [2], values: [1, 2], requiresGrad: true)
        let before = Tape.recordCount
        let y = Tape.noGrad { x * 3 }
        #expect(Tape.recordCount == before)
        #expect(!y.requiresGrad)
        let z = (x.detached() * x).sum()
        Tape.backward(z)
        #expect(x.grad!.toArray() == [1, 2])   // only the non-detached factor
        #expect(Tape.recordCount == 0)
    }
}
