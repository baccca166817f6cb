import Foundation
import Tensor
import NN

/// DEQ-Flow's solver and gradient options (recipe key `student.deq`).
public struct DEQOptions: Sendable, Equatable, Codable {
    /// How the supervised states are picked along the training solve.
    public enum Core: String, RecipeChoice {
        /// One solve of `thres` steps; its best-so-far states after (i+1)·⌊thres/states⌋ steps.
        case indexing
        /// `states` solves of ⌊thres/states⌋ steps, each continuing from the previous one's
        /// gradient steps.
        case sliced
    }
    public var solver: SolverConfig.Kind = .anderson
    /// Evaluations of f in a training solve.
    public var thres: Int = 16
    /// Evaluations at inference: thres × evalFactor.
    public var evalFactor: Double = 1.5
    /// Relative residual at which a solve stops.
    public var tolerance: Double = 1e-3
    public var andersonM: Int = 6
    public var andersonLambda: Double = 1e-4
    public var andersonBeta: Double = 1
    public var core: Core = .indexing
    /// States supervised per pair (the sparse fixed-point correction's n).
    public var states: Int = 2
    /// Damped steps on the tape from each detached state (the phantom gradient's k) and their damping τ.
    public var phantomSteps: Int = 1
    public var tau: Double = 1
    /// Supervise every phantom step's state, not only the last.
    public var supAll: Bool = false
    /// Differentiate through the coordinates inside f (DEQ-Flow's `--all_grad`): the phantom steps
    /// then give the exact gradient of their unrolled map.
    public var allGrad: Bool = false
    public var hiddenInit: DEQRAFTConfig.HiddenInit = .zero
    public var weightNorm: Bool = true
    /// How the last supervised state is differentiated.
    public enum Gradient: String, RecipeChoice {
        /// `phantomSteps` damped steps on the tape from the detached state.
        case phantom
        /// Implicit differentiation: f(z*) on the tape, the gradient v reaching it replaced by the
        /// solution of w = wJ + v (J = ∂f/∂z at z*), a backward solve with vector–Jacobian products.
        case implicit
    }
    public var gradient: Gradient = .phantom
    /// Evaluations (vector–Jacobian products) in the implicit gradient's backward solve, and the
    /// relative residual at which it stops.
    public var backwardThres: Int = 16
    public var backwardTolerance: Double = 1e-3

    public init() {}

    /// Problems with these values, each naming its key under `deq`.
    public var problems: [String] {
        var p: [String] = []
        if thres < 1 { p.append("thres: \(thres) must be at least 1") }
        if states < 1 || states > max(thres, 1) { p.append("states: \(states) must be between 1 and thres (\(thres))") }
        if evalFactor <= 0 || !evalFactor.isFinite { p.append("evalFactor: \(evalFactor) must be > 0") }
        if !(tolerance >= 0) { p.append("tolerance: \(tolerance) must be ≥ 0") }
        if andersonM < 1 { p.append("andersonM: \(andersonM) must be at least 1") }
        if !(andersonLambda >= 0) { p.append("andersonLambda: \(andersonLambda) must be ≥ 0") }
        if phantomSteps < 1 { p.append("phantomSteps: \(phantomSteps) must be at least 1") }
        if !(tau > 0 && tau <= 1) { p.append("tau: \(tau) must be in (0, 1]") }
        if backwardThres < 1 { p.append("backwardThres: \(backwardThres) must be at least 1") }
        if !(backwardTolerance >= 0) { p.append("backwardTolerance: \(backwardTolerance) must be ≥ 0") }
        return p
    }

    func solverConfig(steps: Int) -> SolverConfig {
        var c = SolverConfig(kind: solver, maxSteps: max(1, steps), tolerance: tolerance)
        c.andersonM = andersonM; c.andersonLambda = andersonLambda; c.andersonBeta = andersonBeta
        return c
    }

    /// The implicit gradient's backward solve.
    public var backwardSolver: SolverConfig { var c = solverConfig(steps: backwardThres); c.tolerance = backwardTolerance; return c }

    /// The inference solve's configuration.
    public var evaluationSolver: SolverConfig { solverConfig(steps: Int((Double(thres) * evalFactor).rounded(.down))) }
}

/// A DEQ forward pass's result.
public struct DEQOutput {
    /// Full-resolution flows: in training the supervised states in order (the sequence loss's
    /// inputs, later ones weighing more), at inference the solution alone.
    public var predictions: [Tensor]
    /// The last solve's statistics.
    public var solve: SolverResult
    /// The solution's flow at 1/8 resolution and hidden state (a warm start for the next pair).
    public var lowResolution: Tensor, hidden: Tensor
    public var flow: Tensor { predictions[predictions.count - 1] }
}

extension DEQRAFT {
    /// Training forward with the sparse fixed-point correction and the phantom gradient: solves
    /// without recording, then from each supervised (detached) state runs `phantomSteps` damped
    /// steps z ← (1−τ)z + τ f(z) on the tape and decodes them, so the memory the tape holds does not
    /// grow with the solver's steps.  image1, image2: (N, 3, H, W) in 0…255
    public func trainForward(_ image1: Tensor, _ image2: Tensor, options o: DEQOptions) -> DEQOutput {
        let p = encode(image1, image2)
        var predictions: [Tensor] = []
        var last = p.z0
        var solve: SolverResult
        let segment = max(1, o.thres / o.states)
        switch o.core {
        case .indexing:
            let steps = (1...o.states).map { $0 * segment }
            solve = FixedPointSolver.solve({ f($0, p) }, from: p.z0, config: o.solverConfig(steps: o.thres), record: Set(steps))
            for (i, s) in steps.enumerated() {
                last = gradientSteps(solve.trajectory[s] ?? solve.state, p, o, final: i == steps.count - 1, into: &predictions)
            }
        case .sliced:
            var start = p.z0
            solve = FixedPointSolver.solve({ f($0, p) }, from: start, config: o.solverConfig(steps: segment))
            for k in 0..<o.states {
                if k > 0 {
                    start = last.detached()
                    solve = FixedPointSolver.solve({ f($0, p) }, from: start, config: o.solverConfig(steps: segment))
                }
                last = gradientSteps(solve.state, p, o, final: k == o.states - 1, into: &predictions)
            }
        }
        return DEQOutput(predictions: predictions, solve: solve, lowResolution: lowResolutionFlow(last, p), hidden: hiddenState(last, p))
    }

    /// The taped steps from a supervised state: the implicit gradient for the last one when
    /// chosen, the phantom gradient otherwise.
    func gradientSteps(_ z: Tensor, _ p: DEQPair, _ o: DEQOptions, final: Bool, into predictions: inout [Tensor]) -> Tensor {
        guard final && o.gradient == .implicit else { return phantom(z, p, o, into: &predictions) }
        let y = implicitStep(z, p, o)
        predictions.append(decode(y, p))
        return y
    }

    /// f(z) on the tape with the implicit gradient: the gradient v reaching it is replaced by the
    /// solution of w = wJ + v, by `backwardSolver` from w = v. The backward solve's statistics
    /// go to `lastBackwardSolve`.  (B, D) → (B, D)
    func implicitStep(_ z: Tensor, _ p: DEQPair, _ o: DEQOptions) -> Tensor {
        Tape.implicitLayer(z, { f($0, p, allGrad: o.allGrad) }, adjoint: { [weak self] vjp, v in
            let result = FixedPointSolver.solve({ vjp($0) + v }, from: v, config: o.backwardSolver)
            self?.lastBackwardSolve = result
            return result.state
        })
    }

    /// The phantom gradient's damped steps from `z` (detached), decoding the last (every one with
    /// supAll) into `predictions`; returns the last state.
    func phantom(_ z: Tensor, _ p: DEQPair, _ o: DEQOptions, into predictions: inout [Tensor]) -> Tensor {
        var state = z.detached()
        let tau = Float(o.tau)
        for k in 1...o.phantomSteps {
            let next = f(state, p, allGrad: o.allGrad)
            state = tau == 1 ? next : state * (1 - tau) + next * tau
            if o.supAll || k == o.phantomSteps { predictions.append(decode(state, p)) }
        }
        return state
    }

    /// Inference: one solve of `evaluationSolver`'s steps, the solution decoded. flowInit (1/8
    /// resolution) and hidden: a warm start, such as the previous pair's solution of a video.
    public func infer(_ image1: Tensor, _ image2: Tensor, options o: DEQOptions, flowInit: Tensor? = nil,
                      hidden: Tensor? = nil) -> DEQOutput {
        Tape.noGrad {
            let p = encode(image1, image2, flowInit: flowInit, hidden: hidden)
            let solve = FixedPointSolver.solve({ f($0, p) }, from: p.z0, config: o.evaluationSolver)
            return DEQOutput(predictions: [decode(solve.state, p)], solve: solve,
                             lowResolution: lowResolutionFlow(solve.state, p), hidden: hiddenState(solve.state, p))
        }
    }
}
