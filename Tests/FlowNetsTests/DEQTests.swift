import Foundation
import Testing
import Tensor
import NN
@testable import FlowNets
import TestSupport

/// The fixed-point solvers on a linear contraction f(z) = Az + b, whose fixed point (I − A)⁻¹b is
/// known exactly.
@Suite struct FixedPointSolverTests {
    /// f(z) = Az + b per sample (A symmetric, D × D, spectral radius 0.9) and the exact fixed points.
    static func linearMap(batch: Int = 2, d: Int = 12, seed: UInt64 = 1) -> ((Tensor) -> Tensor, Tensor, [[Double]]) {
        var rng = RandomGenerator(seed: seed)
        // Q orthogonal (Gram–Schmidt of random rows).
        var q = (0..<d).map { _ in (0..<d).map { _ in Double(Float.random(in: -1...1, using: &rng)) } }
        for i in 0..<d {
            for j in 0..<i {
                let dot = zip(q[i], q[j]).reduce(0) { $0 + $1.0 * $1.1 }
                q[i] = zip(q[i], q[j]).map { $0 - dot * $1 }
            }
            let n = q[i].reduce(0) { $0 + $1 * $1 }.squareRoot()
            q[i] = q[i].map { $0 / n }
        }
        // A = Qᵀ diag(λ) Q, eigenvalues in [−0.9, 0.9] with 0.9 among them: spectral radius 0.9.
        let lambdas = (0..<d).map { $0 == 0 ? 0.9 : Double(Float.random(in: -0.9...0.9, using: &rng)) }
        let a = (0..<d).map { i in (0..<d).map { j in (0..<d).reduce(0.0) { $0 + q[$1][i] * lambdas[$1] * q[$1][j] } } }
        let bs = (0..<batch).map { _ in (0..<d).map { _ in Double(Float.random(in: -2...2, using: &rng)) } }
        let f: (Tensor) -> Tensor = { z in
            let out = Tensor(uninitialized: [batch, d])
            for s in 0..<batch {
                for i in 0..<d {
                    var v = bs[s][i]
                    for j in 0..<d { v += a[i][j] * Double(z.data[s * d + j]) }
                    out.data[s * d + i] = Float(v)
                }
            }
            return out
        }
        // (I − A) x = b
        let exact = bs.map { b -> [Double] in
            let m = (0..<d).map { i in (0..<d).map { j in (i == j ? 1 : 0) - a[i][j] } }
            return FixedPointSolver.solveLinear(m, b)!
        }
        return (f, Tensor.zeros([batch, d]), exact)
    }

    func worstError(_ state: Tensor, _ exact: [[Double]]) -> Double {
        let d = exact[0].count
        var worst = 0.0
        for (s, x) in exact.enumerated() { for i in 0..<d { worst = max(worst, abs(Double(state.data[s * d + i]) - x[i])) } }
        return worst
    }

    @Test func bothSolversReachTheFixedPointAndAndersonSooner() {
        let (f, z0, exact) = Self.linearMap()
        var naive = SolverConfig(kind: .naive, maxSteps: 400, tolerance: 1e-5)
        naive.returnBest = true
        let n = FixedPointSolver.solve(f, from: z0, config: naive)
        // λ regularizes GGᵀ, whose entries here fall to 1e-10 near the solution (DEQ-Flow's states
        // are larger: its 1e-4 matters only far below the tolerance there).
        var anderson = SolverConfig(kind: .anderson, maxSteps: 400, tolerance: 1e-5)
        anderson.andersonLambda = 1e-14
        let a = FixedPointSolver.solve(f, from: z0, config: anderson)
        for r in [n, a] {
            #expect(r.relativeResidual.allSatisfy { $0 < 1e-5 }, "residuals \(r.relativeResidual)")
            #expect(worstError(r.state, exact) < 1e-3, "error \(worstError(r.state, exact))")
            #expect(r.diverged == [false, false])
        }
        #expect(a.evaluations < n.evaluations / 3, "Anderson \(a.evaluations) evaluations, naive \(n.evaluations)")
    }

    @Test func theTrajectoryHoldsTheStatesOfTheRequestedSteps() {
        let (f, z0, _) = Self.linearMap()
        var config = SolverConfig(kind: .naive, maxSteps: 9, tolerance: 0)
        config.returnBest = false
        let r = FixedPointSolver.solve(f, from: z0, config: config, record: [3, 7])
        #expect(Set(r.trajectory.keys) == [3, 7] && r.evaluations == 9)
        var z = z0
        for step in 1...9 {
            z = f(z)
            if step == 3 { #expect(r.trajectory[3]!.toArray() == z.toArray()) }
            if step == 7 { #expect(r.trajectory[7]!.toArray() == z.toArray()) }
        }
        #expect(r.state.toArray() == z.toArray())
    }

    /// A map that does not contract is reported (no convergence, or divergence when it overflows),
    /// and the returned state stays the best finite one.
    @Test func aNonContractiveMapIsReportedNotTurnedIntoNaN() {
        let grow: (Tensor) -> Tensor = { $0 * 2 + 1 }
        let g = FixedPointSolver.solve(grow, from: Tensor.zeros([1, 4]), config: SolverConfig(kind: .anderson, maxSteps: 20, tolerance: 1e-4))
        // Anderson solves an affine map exactly, so this one converges (to z = −1) — a fixed point
        // of a map with no attraction is still a fixed point.
        #expect(g.state.toArray().allSatisfy { $0.isFinite })
        let blowUp: (Tensor) -> Tensor = { z in Tensor(shape: z.shape, values: z.toArray().map { Foundation.exp($0) * 1e10 }) }
        for kind in SolverConfig.Kind.allCases {
            let r = FixedPointSolver.solve(blowUp, from: Tensor.zeros([2, 3]), config: SolverConfig(kind: kind, maxSteps: 30, tolerance: 1e-4))
            #expect(r.diverged == [true, true], "\(kind)")
            #expect(r.converged(1e-4) == [false, false], "\(kind)")
            #expect(r.state.toArray().allSatisfy { $0.isFinite }, "\(kind)")
        }
    }
}

/// DEQ-Flow against the public code's numbers (Tests/Fixtures/deq, README there): seeded v2
/// weights with weight norm, tiny and base, 128×128.
@Suite struct DEQRAFTParityTests {
    static func net(_ name: String) throws -> (DEQRAFT, [String: Tensor]) {
        let base: DEQRAFTConfig.Base = name == "tiny" ? .tiny : .raft
        let net = DEQRAFT(DEQRAFTConfig(base: base, hiddenInit: .zero, weightNorm: true))
        let weights = try SafeTensors.read(Fixtures.opsDir.appendingPathComponent("deq/deq_flow_\(name).weights.safetensors")).tensors
        try net.load(weights, source: "deq_flow_\(name).weights")
        var io = try SafeTensors.read(Fixtures.opsDir.appendingPathComponent("deq/deq_flow_\(name).io.safetensors")).tensors
        // PyTorch names a strided block's shortcut norm's parameters `norm3.*` (registered first);
        // mdflow's parameters are `downsample.1.*` (`norm3.*` is its state-dict alias).
        for (key, t) in io where key.hasPrefix("grad.") && key.contains(".norm3.") {
            io[key] = nil
            io[key.replacingOccurrences(of: ".norm3.", with: ".downsample.1.")] = t
        }
        return (net, io)
    }

    /// Training mode: f_thres naive steps without gradient, the states at the indexing steps each
    /// through one taped application of f (phantom gradient k = 1, τ = 1), decoded; the flows and
    /// the gradients of Σ flow_k · gflow_k. Inference: one step and N steps from z₀.
    @Test(arguments: ["tiny", "base"])
    func trainingAndInferenceMatchPyTorch(_ name: String) throws {
        let (net, io) = try Self.net(name)
        let steps = name == "tiny" ? (thres: 12, indexing: [6, 12], eval: 18) : (thres: 8, indexing: [4, 8], eval: 12)
        net.setTraining(true)
        let p = net.encode(io["image1"]!, io["image2"]!)
        var config = SolverConfig(kind: .naive, maxSteps: steps.thres, tolerance: 0)
        config.returnBest = false
        let solve = FixedPointSolver.solve({ net.f($0, p) }, from: p.z0, config: config, record: Set(steps.indexing))
        var options = DEQOptions()
        options.phantomSteps = 1
        var flows: [Tensor] = []
        for s in steps.indexing { _ = net.phantom(solve.trajectory[s]!, p, options, into: &flows) }
        var loss: Tensor? = nil
        for (k, flow) in flows.enumerated() {
            let e = relativeError(flow, io["train_flow\(k)"]!)
            #expect(e < 1e-3, "\(name) train_flow\(k): \(e)")
            let l = (flow * io["train_gflow\(k)"]!).sum()
            loss = loss.map { $0 + l } ?? l
        }
        Tape.backward(loss!)
        // The feature encoder's convolution weights that feed an instance norm: the norm's backward
        // removes each map's mean from the gradient, and the part float32 leaves behind, times the
        // positive (post-ReLU) inputs, moves a few elements by up to a few percent on either side
        // (the same on every block's conv1, with or without Winograd). Those are compared by
        // direction and length; everything else element by element at 1e-3.
        func fedToInstanceNorm(_ key: String) -> Bool {
            key.hasPrefix("grad.fnet.") && key.hasSuffix(".weight") && !key.hasPrefix("grad.fnet.conv2.")
        }
        let (worst, worstName) = checkParameterGradients(net, io.filter { !fedToInstanceNorm($0.key) }, tolerance: 1e-3,
                                                         everyParameter: false)
        var directions = 0
        for (key, t) in net.namedParameters() {
            guard let e = io["grad." + key], fedToInstanceNorm("grad." + key), let g = t.grad else { continue }
            var dot = 0.0, gg = 0.0, ee = 0.0
            for i in 0..<g.count { dot += Double(g.data[i]) * Double(e.data[i]); gg += Double(g.data[i] * g.data[i]); ee += Double(e.data[i] * e.data[i]) }
            let cosine = dot / (gg * ee).squareRoot(), ratio = (gg / ee).squareRoot()
            #expect(cosine > 0.99995 && abs(ratio - 1) < 1e-3, "\(name) grad.\(key): cosine \(cosine), length ratio \(ratio)")
            directions += 1
        }
        #expect(directions >= (name == "tiny" ? 15 : 7), "\(name): \(directions) encoder gradients compared by direction")
        print("\(name): worst gradient \(worst) (\(worstName)); \(directions) encoder gradients by direction")
        for (_, t) in net.namedParameters() { t.freeGrad() }

        // Inference from the fixture's weights (the training pass above moved the running statistics).
        let (fresh, _) = try Self.net(name)
        fresh.setTraining(false)
        try Tape.noGrad {
            let net = fresh
            let q = net.encode(io["image1"]!, io["image2"]!)
            for n in [1, steps.eval] {
                var c = SolverConfig(kind: .naive, maxSteps: n, tolerance: 0)
                c.returnBest = false
                let z = FixedPointSolver.solve({ net.f($0, q) }, from: q.z0, config: c).state
                let low = try #require(io["eval\(n)_flow_low"]), up = try #require(io["eval\(n)_flow_up"])
                let el = relativeError(net.lowResolutionFlow(z, q), low), eu = relativeError(net.decode(z, q), up)
                #expect(el < (n == 1 ? 1e-4 : 1e-3) && eu < (n == 1 ? 1e-4 : 1e-3), "\(name) eval\(n): low \(el), up \(eu)")
            }
        }
    }

    @Test func keysAreDEQFlowV2s() {
        let keys = Set(DEQRAFT(DEQRAFTConfig(base: .raft)).stateDict().keys)
        for k in ["mask.0.weight", "mask.2.bias", "update_block.gru.convz1.weight_g", "update_block.gru.convz1.weight_v",
                  "update_block.encoder.convc1.weight_v", "cnet.norm1.running_mean", "fnet.conv2.weight"] {
            #expect(keys.contains(k), "missing \(k)")
        }
        #expect(!keys.contains("update_block.mask.0.weight") && !keys.contains("update_block.gru.convz1.weight"))
        #expect(DEQRAFT(DEQRAFTConfig(base: .raft)).parameterCount == 5_242_816)
        #expect(DEQRAFT(DEQRAFTConfig(base: .tiny)).parameterCount == 2_490_976)
    }
}

/// The phantom gradient and the memory it needs.
@Suite struct DEQGradientTests {
    /// A tiny DEQ-Flow at 64×64 and a detached state three naive steps from z₀.
    static func setup() -> (DEQRAFT, Tensor, Tensor, Tensor) {
        let net = DEQRAFT(DEQRAFTConfig(base: .tiny))
        net.initialize(seed: 21)
        net.setTraining(false)
        var rng = RandomGenerator(seed: 5)
        let a = Tensor.rand([1, 3, 64, 64], using: &rng) * 255
        let b = Tensor(shape: a.shape, values: (0..<a.count).map { a.data[($0 + 3) % a.count] })
        let z = Tape.noGrad {
            let p = net.encode(a, b)
            var c = SolverConfig(kind: .naive, maxSteps: 3, tolerance: 0)
            c.returnBest = false
            return FixedPointSolver.solve({ net.f($0, p) }, from: p.z0, config: c).state
        }
        return (net, a, b, z)
    }

    /// The tape's gradient of the decoded k-step damped unroll from a fixed detached state equals
    /// central finite differences of the same unroll, for the update block's weight-normed
    /// parameters (g and v) and the mask head: k ∈ {1, 3}, τ ∈ {1, 0.5}, every state supervised.
    /// With k > 1 the unroll's later steps look the correlation up where the earlier ones moved
    /// the flow; DEQ-Flow's default does not differentiate that (so its k-step phantom gradient is
    /// not the unroll's exact gradient), `allGrad` does, and that is what is compared there.
    @Test(arguments: [(1, 1.0, false), (3, 0.5, false), (2, 0.5, true)])
    func phantomGradientMatchesFiniteDifferences(_ steps: Int, _ tau: Double, _ supAll: Bool) {
        let (net, a, b, z) = Self.setup()
        var o = DEQOptions()
        o.phantomSteps = steps; o.tau = tau; o.supAll = supAll; o.allGrad = steps > 1
        let gru = net.updateBlock.gru as! SepConvGRU
        let params = [gru.convq2.weightNorm!.g, gru.convz1.weightNorm!.v, net.updateBlock.flowHead.conv2.weightNorm!.g, net.mask!.conv2.bias!]
        let p = Tape.noGrad { net.encode(a, b) }
        let r = GradCheck.check(params, eps: 1e-2, elementwiseLimit: 0, directions: 3) { _ in
            net.refreshWeights()
            var flows: [Tensor] = []
            _ = net.phantom(z, p, o, into: &flows)
            #expect(flows.count == (supAll ? steps : 1))
            return Tensor.concat(flows, dim: 1)
        }
        #expect(r.worst < 2e-2, "k \(steps), τ \(tau), supAll \(supAll): \(r)")
    }

    /// The implicit gradient is the gradient of the fixed point itself. The flow head's last
    /// convolution is zeroed, so f leaves the flow where it is (c′ = c) and the solve is the GRU's
    /// fixed point h* = GRU(h*, context, correlation at c₀), which a solver reaches to 1e-6; there
    /// the Jacobian DEQ-Flow differentiates (flow detached inside f) is exact for h. The tape's
    /// gradient of f(z*) equals central finite differences of the solution, re-solved for each
    /// perturbed GRU weight (g and v), to 2.2e-3 where the one-step gradient (the backward solve
    /// cut to its first iterate, w = v) is 4.4e-2 off; the backward solve w = wJ + v converges.
    @Test func implicitGradientMatchesFiniteDifferencesOfTheSolution() {
        let (net, a, b, _) = Self.setup()
        let head = net.updateBlock.flowHead.conv2
        for t in [head.weightNorm!.g, head.bias!] { t.data.update(repeating: 0, count: t.count) }
        var o = DEQOptions()
        o.gradient = .implicit; o.backwardThres = 100; o.backwardTolerance = 1e-6
        let forward = SolverConfig(kind: .anderson, maxSteps: 100, tolerance: 1e-6)
        let gru = net.updateBlock.gru as! SepConvGRU
        let params = [gru.convq2.weightNorm!.g, gru.convz1.weightNorm!.v, gru.convr2.weightNorm!.g]
        let p = Tape.noGrad { net.encode(a, b) }
        var worstResidual = 0.0
        let r = GradCheck.check(params, eps: 1e-2, elementwiseLimit: 0, directions: 3) { _ in
            net.refreshWeights()
            let solve = FixedPointSolver.solve({ net.f($0, p) }, from: p.z0, config: forward)
            worstResidual = max(worstResidual, solve.relativeResidual.max()!)
            return net.implicitStep(solve.state, p, o)
        }
        #expect(worstResidual < 1e-5, "forward solve residual \(worstResidual)")
        let backward = net.lastBackwardSolve.map { ($0.relativeResidual.max()!, $0.evaluations) }
        #expect(backward != nil && backward!.0 < 1e-5, "backward solve \(String(describing: backward))")
        #expect(r.worst < 1e-2, "\(r)")
    }

    /// The tape a training forward leaves (its records and the tensors they keep for backward) is
    /// the same whether the solve takes 4 or 16 steps; RAFT's grows with its iterations.
    @Test func trainingMemoryDoesNotGrowWithTheSolversSteps() {
        let (net, a, b, _) = Self.setup()
        net.setTraining(true)
        func taped(_ thres: Int) -> (records: Int, elements: Int) {
            var o = DEQOptions()
            o.thres = thres; o.states = 2; o.solver = .naive; o.tolerance = 0
            let out = net.trainForward(a, b, options: o)
            // The tape is this thread's: what other tests running meanwhile allocate does not count.
            let result = (Tape.recordCount, Tape.recordedElements)
            #expect(out.predictions.count == 2 && out.solve.evaluations == thres)
            Tape.clear()
            return result
        }
        _ = taped(2)   // the first pass builds what later passes reuse (weight forms, caches)
        let short = taped(4), long = taped(16)
        #expect(short.records == long.records && short.elements == long.elements, "tape \(short) and \(long)")

        let raft = RAFT(small: true)
        raft.initialize(seed: 1)
        func raftRecords(_ iters: Int) -> Int {
            _ = raft(a, b, iters: iters)
            defer { Tape.clear() }
            return Tape.recordCount
        }
        #expect(raftRecords(8) > raftRecords(4) + 20)
    }
}

/// A trained RAFT-small converts: its weights load strictly into a DEQ-RAFT-small with
/// `hiddenInit: context` and no weight norm, and N plain solver steps are RAFT-small's N iterations.
@Test func raftSmallWeightsConvertToADEQStudent() throws {
    let weights = try Fixtures.net("raft_small.weights")
    let raft = RAFT(small: true)
    try raft.load(weights, source: "raft_small.weights")
    let deq = DEQRAFT(DEQRAFTConfig(base: .raftSmall, hiddenInit: .context, weightNorm: false))
    try deq.load(weights, source: "raft_small.weights")
    raft.setTraining(false); deq.setTraining(false)
    var rng = RandomGenerator(seed: 2)
    let a = Tensor.rand([1, 3, 64, 96], using: &rng) * 255
    let b = Tensor(shape: a.shape, values: (0..<a.count).map { a.data[($0 + 2) % a.count] })
    Tape.noGrad {
        let expected = raft(a, b, iters: 4, allPredictions: false)
        let p = deq.encode(a, b)
        var c = SolverConfig(kind: .naive, maxSteps: 4, tolerance: 0)
        c.returnBest = false
        let z = FixedPointSolver.solve({ deq.f($0, p) }, from: p.z0, config: c).state
        let low = relativeError(deq.lowResolutionFlow(z, p), expected.lowResolution)
        let up = relativeError(deq.decode(z, p), expected.flow)
        #expect(low < 1e-5 && up < 1e-5, "low \(low), full \(up)")
    }
}
