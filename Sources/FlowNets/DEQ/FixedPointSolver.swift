import Foundation
import Tensor
import NN

/// How a fixed-point solve z* = f(z*) runs (DEQ-Flow's f_solver, f_thres, f_eps with the relative
/// stop mode, and Anderson's m, λ, β).
public struct SolverConfig: Sendable, Equatable, Codable {
    public enum Kind: String, RecipeChoice {
        /// z ← f(z).
        case naive
        /// Anderson acceleration: the next z mixes the last m iterates by least squares on their
        /// residuals.
        case anderson
    }
    public var kind: Kind = .anderson
    /// Most evaluations of f.
    public var maxSteps: Int = 16
    /// Stop once every sample's relative residual ‖f(z) − z‖ / ‖f(z)‖ is below this.
    public var tolerance: Double = 1e-3
    /// Anderson's history size, regularization and mixing (β = 1: mix the f values only).
    public var andersonM: Int = 6
    public var andersonLambda: Double = 1e-4
    public var andersonBeta: Double = 1
    /// Return the iterate with the lowest residual (true), or the last one (a fixed number of steps).
    public var returnBest: Bool = true

    public init(kind: Kind = .anderson, maxSteps: Int = 16, tolerance: Double = 1e-3) {
        self.kind = kind; self.maxSteps = maxSteps; self.tolerance = tolerance
    }
}

/// What a solve returns: the state and, per sample, how the solve went.
public struct SolverResult {
    /// (B, D): per sample the lowest-residual iterate (or the last, with `returnBest` off).
    public var state: Tensor
    /// The state the solve would have returned had it stopped after step k, for each requested k
    /// it reached.
    public var trajectory: [Int: Tensor]
    /// Per sample: the relative and absolute residual of the returned state.
    public var relativeResidual: [Double], absoluteResidual: [Double]
    /// Per sample: the step (evaluation of f) that produced the returned state.
    public var bestStep: [Int]
    /// Per sample: f's value became non-finite (the returned state is the last finite best).
    public var diverged: [Bool]
    /// Evaluations of f made.
    public var evaluations: Int

    /// The relative residual averaged over the samples (the logged `deq_residual`).
    public var meanRelativeResidual: Double { relativeResidual.reduce(0, +) / Double(max(relativeResidual.count, 1)) }

    /// Per sample: the residual reached the tolerance.
    public func converged(_ tolerance: Double) -> [Bool] { relativeResidual.map { $0 < tolerance } }
}

/// Fixed-point solvers on flat per-sample states (B, D), run without recording gradients.
public enum FixedPointSolver {
    /// Solves z = f(z) from `z0`. `record`: steps whose best-so-far state to keep in `trajectory`.
    public static func solve(_ f: (Tensor) -> Tensor, from z0: Tensor, config: SolverConfig,
                             record: Set<Int> = []) -> SolverResult {
        require(z0.rank == 2, "FixedPointSolver", "state \(describe(z0.shape)) must be (B, D)")
        require(config.maxSteps >= 1, "FixedPointSolver", "maxSteps \(config.maxSteps) must be at least 1")
        return Tape.noGrad {
            var tracker = Tracker(z0, config: config, record: record)
            switch config.kind {
            case .naive:
                var x = z0
                for step in 1...config.maxSteps {
                    let fx = f(x)
                    if tracker.observe(x: x, fx: fx, step: step) { break }
                    x = fx
                }
            case .anderson:
                anderson(f, z0, config, &tracker)
            }
            return tracker.result
        }
    }

    /// Anderson acceleration with history m: after two plain steps, each next x is
    /// β·Σαᵢ f(xᵢ) + (1−β)·Σαᵢ xᵢ over the last n ≤ m iterates, α minimizing ‖Σαᵢ (f(xᵢ) − xᵢ)‖² + λ‖α‖²
    /// subject to Σαᵢ = 1 (per sample). The residuals gᵢ = f(xᵢ) − xᵢ and their Gram matrix are kept
    /// between steps, so a step adds n dot products per sample.
    static func anderson(_ f: (Tensor) -> Tensor, _ z0: Tensor, _ config: SolverConfig, _ tracker: inout Tracker) {
        let b = z0.shape[0], d = z0.shape[1], m = max(1, config.andersonM)
        var xs: [Tensor] = [], fs: [Tensor] = [], gs: [[Float]] = []
        // gram[s][i][j] = ⟨gᵢ, gⱼ⟩ for sample s, over the kept history.
        var gram = [[[Double]]](repeating: [], count: b)
        var x = z0
        for step in 1...config.maxSteps {
            let fx = f(x)
            if tracker.observe(x: x, fx: fx, step: step) { return }
            if xs.count == m {
                xs.removeFirst(); fs.removeFirst(); gs.removeFirst()
                for s in 0..<b { gram[s].removeFirst(); for i in gram[s].indices { gram[s][i].removeFirst() } }
            }
            var g = [Float](repeating: 0, count: b * d)
            g.withUnsafeMutableBufferPointer { gp in
                let fp = fx.data, xp = x.data
                for k in 0..<(b * d) { gp[k] = fp[k] - xp[k] }
            }
            xs.append(x); fs.append(fx); gs.append(g)
            let n = xs.count
            for s in 0..<b {
                var row = [Double](repeating: 0, count: n)
                for i in 0..<n { row[i] = dot(gs[i], g, offset: s * d, count: d) }
                for i in 0..<(n - 1) { gram[s][i].append(row[i]) }
                gram[s].append(row)
            }
            if step < 2 { x = fx; continue }
            let next = Tensor(uninitialized: [b, d])
            for s in 0..<b {
                // The bordered system [[0, 1ᵀ], [1, GGᵀ + λI]] [ν; α] = [1; 0].
                var h = [[Double]](repeating: [Double](repeating: 0, count: n + 1), count: n + 1)
                for i in 0..<n {
                    h[0][i + 1] = 1; h[i + 1][0] = 1
                    for j in 0..<n { h[i + 1][j + 1] = gram[s][i][j] + (i == j ? config.andersonLambda : 0) }
                }
                var rhs = [Double](repeating: 0, count: n + 1)
                rhs[0] = 1
                let alpha = solveLinear(h, rhs).map { $0.dropFirst().map { Float($0) } } ?? [Float](repeating: 0, count: n - 1) + [1]
                let out = next.data + s * d
                let beta = Float(config.andersonBeta)
                out.update(repeating: 0, count: d)
                for i in 0..<n {
                    let wf = beta * alpha[i], wx = (1 - beta) * alpha[i]
                    let fp = fs[i].data + s * d, xp = xs[i].data + s * d
                    if wx == 0 { for k in 0..<d { out[k] += wf * fp[k] } }
                    else { for k in 0..<d { out[k] += wf * fp[k] + wx * xp[k] } }
                }
            }
            x = next
        }
    }

    /// ⟨a, b⟩ over `count` elements from `offset`, accumulated in Double.
    static func dot(_ a: [Float], _ b: [Float], offset: Int, count: Int) -> Double {
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                var s = 0.0
                for k in offset..<(offset + count) { s += Double(ap[k]) * Double(bp[k]) }
                return s
            }
        }
    }

    /// Gaussian elimination with partial pivoting; nil when the matrix is singular.
    static func solveLinear(_ a: [[Double]], _ b: [Double]) -> [Double]? {
        var a = a, b = b
        let n = b.count
        for c in 0..<n {
            guard let p = (c..<n).max(by: { abs(a[$0][c]) < abs(a[$1][c]) }), abs(a[p][c]) > 1e-300 else { return nil }
            a.swapAt(c, p); b.swapAt(c, p)
            for r in (c + 1)..<n {
                let factor = a[r][c] / a[c][c]
                if factor == 0 { continue }
                for k in c..<n { a[r][k] -= factor * a[c][k] }
                b[r] -= factor * b[c]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = b[r]
            for k in (r + 1)..<n { s -= a[r][k] * x[k] }
            x[r] = s / a[r][r]
        }
        return x.allSatisfy(\.isFinite) ? x : nil
    }

    /// Per-sample residuals, the best (or last) state so far and the recorded trajectory.
    struct Tracker {
        let config: SolverConfig
        let record: Set<Int>
        let b: Int, d: Int
        var best: Tensor
        var relative: [Double], absolute: [Double], bestStep: [Int], diverged: [Bool]
        var trajectory: [Int: Tensor] = [:]
        var evaluations = 0

        init(_ z0: Tensor, config: SolverConfig, record: Set<Int>) {
            self.config = config
            self.record = record
            b = z0.shape[0]; d = z0.shape[1]
            best = z0.clone()
            relative = [Double](repeating: .infinity, count: b)
            absolute = [Double](repeating: .infinity, count: b)
            bestStep = [Int](repeating: 0, count: b)
            diverged = [Bool](repeating: false, count: b)
        }

        /// Takes f(x) at `step`; returns true when every sample is within the tolerance.
        mutating func observe(x: Tensor, fx: Tensor, step: Int) -> Bool {
            evaluations += 1
            var allConverged = true
            for s in 0..<b {
                let xp = x.data + s * d, fp = fx.data + s * d
                var diff = 0.0, norm = 0.0
                for k in 0..<d {
                    let r = Double(fp[k]) - Double(xp[k])
                    diff += r * r; norm += Double(fp[k]) * Double(fp[k])
                }
                let abs = diff.squareRoot(), rel = abs / (norm.squareRoot() + 1e-8)
                guard rel.isFinite else { diverged[s] = true; allConverged = false; continue }
                if !config.returnBest || rel < relative[s] {
                    relative[s] = rel; absolute[s] = abs; bestStep[s] = step
                    (best.data + s * d).update(from: fp, count: d)
                }
                if rel >= config.tolerance { allConverged = false }
            }
            if record.contains(step) { trajectory[step] = best.clone() }
            return allConverged
        }

        var result: SolverResult {
            SolverResult(state: best, trajectory: trajectory, relativeResidual: relative, absoluteResidual: absolute,
                         bestStep: bestStep, diverged: diverged, evaluations: evaluations)
        }
    }
}
