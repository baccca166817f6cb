import Foundation

/// Learning rate as a function of the step (0-based: the rate used for update number step+1).
public protocol LRSchedule: Sendable {
    func lr(at step: Int) -> Double
}

/// A fixed rate.
public struct ConstantLR: LRSchedule {
    public let base: Double
    public init(_ base: Double) { self.base = base }
    public func lr(at step: Int) -> Double { base }
}

/// torch StepLR: base · γ^⌊step / stepSize⌋.
public struct StepLR: LRSchedule {
    public let base: Double, stepSize: Int, gamma: Double
    public init(base: Double, stepSize: Int, gamma: Double) { self.base = base; self.stepSize = max(1, stepSize); self.gamma = gamma }
    public func lr(at step: Int) -> Double { base * Foundation.pow(gamma, Double(step / stepSize)) }
}

/// torch OneCycleLR with linear annealing and no momentum cycling (RAFT: pct_start 0.05,
/// total = steps + 100): warm up from max/div to max over pct·total − 1 steps, then anneal
/// linearly to max/(div·finalDiv) at step total − 1.
public struct OneCycleLR: LRSchedule {
    public let maxLR: Double, totalSteps: Int, pctStart: Double, divFactor: Double, finalDivFactor: Double
    public init(maxLR: Double, totalSteps: Int, pctStart: Double = 0.3, divFactor: Double = 25, finalDivFactor: Double = 1e4) {
        self.maxLR = maxLR; self.totalSteps = totalSteps; self.pctStart = pctStart
        self.divFactor = divFactor; self.finalDivFactor = finalDivFactor
    }
    public func lr(at step: Int) -> Double {
        let initial = maxLR / divFactor, minLR = initial / finalDivFactor
        let warmEnd = pctStart * Double(totalSteps) - 1, end = Double(totalSteps - 1)
        let t = Double(step)
        if t <= warmEnd { return initial + (warmEnd > 0 ? t / warmEnd : 1) * (maxLR - initial) }
        return maxLR + ((t - warmEnd) / (end - warmEnd)) * (minLR - maxLR)
    }
}
