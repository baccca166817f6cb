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

    /// A broadcast op over more than 2^18 elements splits its rows across the threads (and so does
    /// the gradient of its full-shape input); every value is still the scalar loop's, bit for bit.
    @Test func largeBroadcastsMatchTheScalarLoop() {
        var rng = RandomGenerator(seed: 9)
        let (n, c, h, w) = (2, 3, 150, 300)
        let a = Tensor.rand([n, c, h, w], -1, 1, using: &rng), b = Tensor.rand([1, c, 1, w], -1, 1, using: &rng)
        a.requiresGrad = true; b.requiresGrad = true
        let y = a * b
        let gy = Tensor.rand(y.shape, -1, 1, using: &rng)
        Tape.backward(y, seed: gy)
        var db = [Float](repeating: 0, count: c * w), wrong = 0
        let (yv, av, bv, gv, dav) = (y.toArray(), a.toArray(), b.toArray(), gy.toArray(), a.grad!.toArray())
        for i in 0..<n * c * h * w {
            let j = (i / (h * w)) % c * w + i % w
            if yv[i] != av[i] * bv[j] || dav[i] != gv[i] * bv[j] { wrong += 1 }
            db[j] += gv[i] * av[i]
        }
        #expect(wrong == 0)
        #expect(b.grad!.toArray() == db)
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

    /// The first gradient to reach a tensor is assigned into a new buffer (GradientSink), later ones
    /// added: every order of assigning ops (binary, unary, reshape, permute, concat, instance norm,
    /// conv) and accumulating ones (slice) gives each use's contribution once.
    @Test func firstGradientAssignsAndLaterOnesAdd() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.rand([1, 2, 3, 4], -1, 1, using: &rng)
        x.requiresGrad = true
        let w = Tensor.rand([2, 2, 3, 3], -1, 1, using: &rng)
        let uses: [(String, (Tensor) -> Tensor)] = [
            ("x·x", { $0 * $0 }),
            ("relu", { $0.relu() }),
            ("reshape", { $0.reshape([6, 4]) * 3 }),
            ("permute", { $0.permute([0, 3, 1, 2]) * 2 }),
            ("concat", { Tensor.concat([$0, $0 * 0.5], dim: 1) }),
            ("instanceNorm", { $0.instanceNorm() }),
            ("conv", { $0.conv2d(w, nil, ConvGeometry(kernel: 3, padding: 1)) }),
            ("slice", { $0.slice(dim: 3, start: 1, length: 2) }),
        ]
        // Each use's gradient alone (fixed upstream weights), then pairs in both orders.
        func gradient(_ fs: [(Tensor) -> Tensor]) -> [Float] {
            x.freeGrad()
            var total: Tensor? = nil
            for (k, f) in fs.enumerated() {
                var r = RandomGenerator(seed: UInt64(100 + k))
                let y = f(x)
                let term = (y * Tensor.rand(y.shape, -1, 1, using: &r)).sum()
                total = total.map { $0 + term } ?? term
            }
            Tape.backward(total!)
            return x.grad!.toArray()
        }
        for i in uses.indices {
            for j in uses.indices where j != i {
                let alone = (gradient([uses[i].1]), gradient([{ _ in x.sum() * 0 }, uses[j].1]))
                let both = gradient([uses[i].1, uses[j].1])
                let worst = zip(both, zip(alone.0, alone.1)).map { abs($0 - $1.0 - $1.1) }.max()!
                #expect(worst < 1e-5, "\(uses[i].0) then \(uses[j].0): off by \(worst)")
            }
        }
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
