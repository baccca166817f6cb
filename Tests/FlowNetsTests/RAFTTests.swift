import Foundation
import Testing
import Tensor
import NN
import FlowNets
import TestSupport

@Suite("RAFT")
struct RAFTTests {
    @Test func parameterCountsMatchThePublishedNets() {
        #expect(RAFT(small: true).parameterCount == 990_162)
        #expect(RAFT(small: false).parameterCount == 5_257_536)
    }

    @Test func fullRAFTStateDictListsTheStridedNormTwice() {
        let keys = Set(RAFT(small: false).stateDict().keys)
        for k in ["cnet.layer2.0.norm3.weight", "cnet.layer2.0.downsample.1.weight", "cnet.layer2.0.downsample.1.running_var",
                  "cnet.norm1.num_batches_tracked", "update_block.mask.2.weight", "update_block.gru.convq2.weight"] {
            #expect(keys.contains(k), "missing \(k)")
        }
        #expect(!keys.contains("fnet.norm1.weight"))
    }

    /// RAFT and RAFT-small against fixtures computed by PyTorch (the official RAFT code) from the
    /// shared seeded weights at 128×128, where every correlation level is at least 2×2
    /// (Tests/Fixtures/nets; README, Correctness): flows after each of 3 iterations, and the
    /// gradients of every parameter (RAFT-small, train mode) or of 21 tensors across every module
    /// (RAFT, BatchNorm frozen).
    @Test(arguments: [true, false])
    func flowsAndGradientsAt128MatchPyTorch(small: Bool) throws {
        let name = small ? "raft_small" : "raft_full"
        let weights = try Fixtures.net("\(name).weights")
        let io = try Fixtures.net("\(name)_128.io")
        try checkRAFTParity(small: small, weights: weights, io: io, label: "\(name) 128×128", everyGradient: small)
    }

    /// The reference fixtures (Tests/Fixtures/nets/<name>.io, 128×128, other images): flows after
    /// each of 3 iterations, and the gradients of every parameter where the fixture holds them.
    @Test(arguments: [true, false])
    func referenceFixturesMatchPyTorch(small: Bool) throws {
        let name = small ? "raft_small" : "raft_full"
        try checkRAFTParity(small: small, weights: try Fixtures.net("\(name).weights"), io: try Fixtures.net("\(name).io"),
                            label: name, everyGradient: small)
    }

    /// The whole net's backward pass against central differences of its forward pass, along a
    /// random direction in each of a dozen parameter tensors spread over both encoders, the motion
    /// encoder, the GRU and the heads: a check of the backward pass that does not rest on the
    /// PyTorch fixtures. One iteration: from the second on, RAFT detaches the flow it looks up
    /// around, a path finite differences would include and the gradient rightly does not.
    /// A coarse check: the net runs in Float32 with ReLUs near their kinks at init, so steps large
    /// enough to beat rounding still cross kinks (measured: up to 13% apart for RAFT-small, 39% for
    /// RAFT at its first conv). It catches a missing, doubled or sign-flipped path, not a 5% error.
    @Test(arguments: [true, false])
    func gradientsAlongRandomDirectionsMatchFiniteDifferences(small: Bool) throws {
        let net = RAFT(small: small)
        net.initialize(seed: 3)
        if !small { net.freezeBatchNorm() }
        let big = texture(height: 80, width: 96, seed: 4)
        let a = big.slice(dim: 2, start: 4, length: 64).slice(dim: 3, start: 4, length: 64)
        let b = big.slice(dim: 2, start: 6, length: 64).slice(dim: 3, start: 3, length: 64)
        var rng = RandomGenerator(seed: 9)
        let seeds = [Tensor.randn([1, 2, 64, 64], using: &rng)]
        func loss() -> Double {
            let out = net(a, b, iters: 1)
            var s = 0.0
            for (p, g) in zip(out.predictions, seeds) { for i in 0..<p.count { s += Double(p.data[i]) * Double(g.data[i]) } }
            return s
        }
        net.zeroGrad()
        let out = net(a, b, iters: 1)
        Tape.backward(weightedSum(out.predictions, seeds))
        let names = small
            ? ["fnet.conv1.weight", "fnet.layer2.0.conv2.weight", "fnet.conv2.bias", "cnet.layer1.1.conv3.weight", "cnet.conv2.weight",
               "update_block.encoder.convc1.weight", "update_block.encoder.convf1.weight", "update_block.encoder.conv.bias",
               "update_block.gru.convz.weight", "update_block.gru.convq.weight", "update_block.flow_head.conv1.weight",
               "update_block.flow_head.conv2.bias"]
            : ["fnet.conv1.weight", "fnet.layer3.1.conv2.weight", "cnet.layer2.0.conv1.weight", "cnet.norm1.weight",
               "update_block.encoder.convc2.weight", "update_block.encoder.convf2.weight", "update_block.gru.convz1.weight",
               "update_block.gru.convq2.weight", "update_block.flow_head.conv1.bias", "update_block.mask.0.weight",
               "update_block.mask.2.weight", "update_block.mask.2.bias"]
        let params = Dictionary(uniqueKeysWithValues: net.namedParameters())
        var worst = (0.0, "")
        for name in names {
            let p = try #require(params[name], "no parameter \(name)")
            let grad = try #require(p.grad, "\(name) has no gradient")
            let dir = Tensor.randn(p.shape, using: &rng)
            var analytic = 0.0, norm2 = 0.0, d2 = 0.0
            for i in 0..<p.count {
                analytic += Double(grad.data[i]) * Double(dir.data[i])
                norm2 += Double(p.data[i] * p.data[i]); d2 += Double(dir.data[i] * dir.data[i])
            }
            // A step of 1e-4 of the tensor's norm (biases and norms: an absolute 1e-4): ReLUs at init
            // sit near their kinks, and a 1% step already crossed enough of them to flip signs.
            let h = max(1e-4, 1e-4 * (norm2 / d2).squareRoot())
            let saved = p.clone()
            let numeric: Double = Tape.noGrad {
                for i in 0..<p.count { p.data[i] = saved.data[i] + Float(h) * dir.data[i] }
                let up = loss()
                for i in 0..<p.count { p.data[i] = saved.data[i] - Float(h) * dir.data[i] }
                let down = loss()
                for i in 0..<p.count { p.data[i] = saved.data[i] }
                return (up - down) / (2 * h)
            }
            let e = abs(numeric - analytic) / max(abs(analytic), abs(numeric), 1e-6)
            if e > worst.0 { worst = (e, name) }
            #expect(e < 0.5, "\(name): analytic \(analytic), finite differences \(numeric)")
        }
        print("RAFT\(small ? "-small" : "") gradients vs finite differences: worst relative difference \(worst.0) (\(worst.1))")
    }

    @Test func predictionsAreDetachedAcrossIterationsExceptThroughTheHiddenState() throws {
        // With a seed only on the first prediction, the second iteration's Δflow gets no gradient:
        // its flow head's last bias gradient equals the first iteration's contribution alone.
        let net = RAFT(small: true)
        net.initialize(seed: 2)
        var rng = RandomGenerator(seed: 5)
        let a = Tensor.rand([1, 3, 64, 64], 0, 255, using: &rng), b = Tensor.rand([1, 3, 64, 64], 0, 255, using: &rng)
        net.zeroGrad()
        let one = net(a, b, iters: 1)
        Tape.backward(one.predictions[0].sum())
        let g1 = net.updateBlock.flowHead.conv2.bias!.grad!.clone()
        net.zeroGrad()
        let two = net(a, b, iters: 2)
        Tape.backward(two.predictions[0].sum())
        let g2 = net.updateBlock.flowHead.conv2.bias!.grad!
        #expect(relativeError(g2, g1) < 1e-5)
    }

    @Test func warmStartFromZeroEqualsColdStartAndANonzeroInitMovesTheLookup() {
        let net = RAFT(small: true)
        net.initialize(seed: 2)
        var rng = RandomGenerator(seed: 6)
        let a = Tensor.rand([1, 3, 64, 72], 0, 255, using: &rng), b = Tensor.rand([1, 3, 64, 72], 0, 255, using: &rng)
        let cold = Tape.noGrad { net(a, b, iters: 2) }
        let zero = Tape.noGrad { net(a, b, iters: 2, flowInit: Tensor.zeros([1, 2, 8, 9])) }
        #expect(relativeError(zero.lowResolution, cold.lowResolution) == 0)
        let shift = Tensor.full([1, 2, 8, 9], 1.5)
        let warm = Tape.noGrad { net(a, b, iters: 2, flowInit: shift) }
        #expect(relativeError(warm.lowResolution, cold.lowResolution) > 0.01)
        #expect(warm.flow.shape == [1, 2, 64, 72])
    }

    /// Test mode (only the last prediction) skips full RAFT's mask head on the other iterations; its
    /// flow is the last of all predictions, bit for bit.
    @Test func lastPredictionOnlyEqualsTheLastOfAll() {
        let net = RAFT(small: false)
        net.initialize(seed: 5)
        var rng = RandomGenerator(seed: 8)
        let a = Tensor.rand([1, 3, 128, 128], 0, 255, using: &rng), b = Tensor.rand([1, 3, 128, 128], 0, 255, using: &rng)
        let all = Tape.noGrad { net(a, b, iters: 3) }
        let last = Tape.noGrad { net(a, b, iters: 3, allPredictions: false) }
        #expect(all.predictions.count == 3 && last.predictions.count == 1)
        #expect(relativeError(last.predictions[0], all.predictions[2]) == 0)
        #expect(relativeError(all.predictions[1], all.predictions[2]) > 0)
    }

    @Test func paddingIsReplicateSplitEvenlyAndUnpadRestoresTheSize() {
        let p = InputPadder(height: 61, width: 95)
        #expect(p.top == 1 && p.bottom == 2 && p.left == 0 && p.right == 1)
        let x = Tensor.rand([1, 3, 61, 95], using: &RandomGenerator.shared)
        let padded = p.pad(x)
        #expect(padded.shape == [1, 3, 64, 96])
        #expect(padded.data[0] == x.data[0])
        #expect(relativeError(p.unpad(padded), x) == 0)
    }

    @Test func predictReturnsTheFramesSize() {
        let net = RAFT(small: true)
        net.initialize(seed: 2)
        let a = Tensor.full([1, 3, 60, 75], 100), b = Tensor.full([1, 3, 60, 75], 100)
        let f = net.predict(a, b, iters: 2)
        #expect(f.shape == [1, 2, 60, 75])
        #expect(f.isFinite)
    }

    /// A warm start 300 px beyond each border (and beyond a corner) puts every lookup window of the
    /// first iteration wholly outside the correlation maps, as a large motion near a border or a
    /// wild early estimate does: RAFT and RAFT-small must read zeros there and give a finite flow,
    /// forward and backward.
    @Test(arguments: [true, false])
    func warmStartFarOutsideTheImageGivesFiniteFlow(small: Bool) {
        let net = RAFT(small: small)
        net.initialize(seed: 5)
        if !small { net.freezeBatchNorm() }
        let a = texture(height: 64, width: 96, seed: 6), b = texture(height: 64, width: 96, seed: 7)
        for (u, v): (Float, Float) in [(0, 300), (0, -300), (300, 0), (-300, 0), (-300, 300)] {
            let warm = Tensor.zeros([1, 2, 8, 12])
            for i in 0..<96 { warm.data[i] = u / 8; warm.data[96 + i] = v / 8 }
            net.zeroGrad()
            let out = net(a, b, iters: 2, flowInit: warm)
            #expect(out.predictions.allSatisfy { $0.isFinite }, "shift (\(u), \(v))")
            Tape.backward(out.predictions.last!.sum())
            #expect(net.namedParameters().allSatisfy { $0.1.grad?.isFinite ?? true }, "shift (\(u), \(v)): gradients")
        }
    }
}

/// Runs the net (full RAFT with frozen BatchNorm) on the fixture's images for 3 iterations and
/// compares each iteration's flow (within 1e-4 of its largest value) and, where the fixture has
/// them, the parameter gradients of Σ_k sum(flow_k ⊙ gflow_k) (within 1e-3).
func checkRAFTParity(small: Bool, weights: [String: Tensor], io: [String: Tensor], label: String, everyGradient: Bool,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
    let net = RAFT(small: small)
    try net.load(weights, source: label)
    if !small { net.freezeBatchNorm() }
    let running = small ? nil : net.cnet.layer1.blocks[0].namedBuffers().first { $0.0 == "norm1.running_mean" }!.1
    let runningBefore = running?.clone()
    net.zeroGrad()
    let t0 = Date()
    let out = net(io["image1"]!, io["image2"]!, iters: 3)
    #expect(out.predictions.count == 3, sourceLocation: sourceLocation)
    var report: [String] = []
    for k in 0..<3 {
        let e = relativeError(out.predictions[k], io["flow_iter\(k)"]!)
        WorstError.shared.note(e, "\(label) flow_iter\(k)")
        report.append("iter\(k) \(e)")
        #expect(e <= 1e-4, "\(label) flow_iter\(k): relative error \(e)", sourceLocation: sourceLocation)
    }
    var worst = (0.0, "none")
    if io.keys.contains(where: { $0.hasPrefix("grad.") }) {
        Tape.backward(weightedSum(out.predictions, (0..<3).map { io["gflow_iter\($0)"]! }))
        worst = checkParameterGradients(net, io, tolerance: 1e-3, everyParameter: everyGradient, sourceLocation: sourceLocation)
    }
    if let running, let runningBefore {
        #expect(relativeError(running, runningBefore) == 0, "frozen BatchNorm must not update its statistics", sourceLocation: sourceLocation)
    }
    print("\(label) parity: \(report.joined(separator: ", ")); worst gradient \(worst.0) (\(worst.1)); \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
}

extension RandomGenerator {
    nonisolated(unsafe) static var shared = RandomGenerator(seed: 11)
}
