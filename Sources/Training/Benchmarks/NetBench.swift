import Foundation
import Tensor
import NN
import FlowNets

/// Whole-network benchmarks, doing exactly the work of the PyTorch performance anchors'
/// workloads (docs/performance.md), so their figures compare with PyTorch's.
public enum NetBench {
    public enum Workload: String, CaseIterable, Sendable {
        /// FastFlowNet forward without gradients on one pair (1, 6, H, W), output flow2.
        case fastflownetInfer = "fastflownet-infer"
        /// Batch B: training forward; flow = 20 × bilinear (align_corners false) upsampling of
        /// flow2 to H×W; loss = mean |warp(img2, flow) − img1| (border padding); backward; Adam(1e-4) step.
        case fastflownetTrain = "fastflownet-train"
        /// RAFT (small or full) test-mode forward on one pair (1, 3, H, W) in 0…255, N iterations,
        /// full-resolution output.
        case raftInfer = "raft-infer"
        /// Batch B: forward with N iterations; sequence L1 loss (γ 0.8) against a constant flow;
        /// backward; gradient-norm clip 1.0; AdamW(4e-4, wd 1e-4, eps 1e-8) step.
        case raftTrain = "raft-train"
    }

    public struct Options: Sendable {
        public var workload: Workload
        public var small: Bool
        /// raft-infer / raft-train: DEQ-Flow on that RAFT; `iters` is the training solve's steps
        /// (inference solves for iters × 1.5).
        public var deq = false
        /// With `deq`: how the last supervised state is differentiated (implicit: a backward solve
        /// of `iters` vector–Jacobian products).
        public var deqGradient: DEQOptions.Gradient = .phantom
        public var height: Int, width: Int
        public var batch: Int
        public var iters: Int
        public var threads: Int
        public var reps: Int
        public var warmup: Int
        public init(workload: Workload, small: Bool = false, height: Int, width: Int, batch: Int, iters: Int = 12,
                    threads: Int, reps: Int = 5, warmup: Int = 2) {
            self.workload = workload; self.small = small; self.height = height; self.width = width
            self.batch = batch; self.iters = iters; self.threads = threads; self.reps = reps; self.warmup = warmup
        }

        /// The name perf-anchors uses, e.g. "raft-train (small)".
        public var label: String {
            switch workload {
            case .raftInfer, .raftTrain:
                let kind = deq ? (deqGradient == .implicit ? "deq implicit " : "deq ") : ""
                return workload.rawValue + " (" + kind + (small ? "small" : "full") + ")"
            default: return workload.rawValue
            }
        }
    }

    public struct Result: Sendable {
        public let options: Options
        /// Sorted run times in milliseconds.
        public let times: [Double]
        /// Sorted process CPU times of the runs in milliseconds (all threads, steal left out).
        public let cpuTimes: [Double]
        public let peakRSSMB: Double
        /// Most tensor memory (Storage) alive at once, MB.
        public let peakTensorsMB: Double
        public var medianMS: Double { Timing.median(times) }
        public var minMS: Double { times.first ?? 0 }
        public var medianCPUMS: Double { Timing.median(cpuTimes) }

        /// One JSON line: workload, sizes, threads, median_ms, min_ms, cpu_median_ms, peak_rss_mb,
        /// peak_tensors_mb, runs.
        public var json: String {
            let o = options
            let runs = times.map { String(format: "%.1f", $0) }.joined(separator: ",")
            return "{\"workload\":\"\(o.workload.rawValue)\",\"net\":\"\(netName)\",\"size\":\"\(o.height)x\(o.width)\","
                + "\"batch\":\(o.batch),\"iters\":\(usesIters ? String(o.iters) : "null"),\"threads\":\(o.threads),"
                + "\"reps\":\(o.reps),\"median_ms\":\(String(format: "%.1f", medianMS)),\"min_ms\":\(String(format: "%.1f", minMS)),"
                + "\"cpu_median_ms\":\(String(format: "%.1f", medianCPUMS)),"
                + "\"peak_rss_mb\":\(String(format: "%.0f", peakRSSMB)),\"peak_tensors_mb\":\(String(format: "%.0f", peakTensorsMB)),"
                + "\"runs_ms\":[\(runs)]}"
        }

        public var usesIters: Bool { options.workload == .raftInfer || options.workload == .raftTrain }
        var netName: String {
            switch options.workload {
            case .fastflownetInfer, .fastflownetTrain: return "fastflownet"
            default: return (options.deq ? "deq-" : "") + (options.small ? "raft-small" : "raft")
            }
        }
    }

    /// Runs `warmup` untimed and `reps` timed repetitions of the workload.
    public static func run(_ o: Options) -> Result {
        Runtime.setThreads(o.threads)
        let body = makeWorkload(o)
        let seconds = Timing.measure(reps: o.reps, warmup: o.warmup, body)
        return Result(options: o, times: seconds.wall.map { $0 * 1000 }, cpuTimes: seconds.cpu.map { $0 * 1000 },
                      peakRSSMB: Timing.peakRSSMB(),
                      peakTensorsMB: Double(StorageMemory.usage.peak) / 1048576)
    }

    /// A smooth synthetic frame pair (sinusoids), frame 2 shifted by about (1.5, −1) px.
    /// → two (n, 3, h, w) tensors with values in [0, 1]
    static func framePair(n: Int, h: Int, w: Int) -> (Tensor, Tensor) {
        let a = Tensor(uninitialized: [n, 3, h, w]), b = Tensor(uninitialized: [n, 3, h, w])
        let pa = a.data, pb = b.data
        for img in 0..<n {
            for c in 0..<3 {
                let base = (img * 3 + c) * h * w
                let fx = 0.05 + 0.02 * Float(c), fy = 0.04 + 0.015 * Float(img + c)
                for y in 0..<h {
                    for x in 0..<w {
                        let v = { (xx: Float, yy: Float) -> Float in
                            0.5 + 0.25 * sinf(fx * xx + 0.3 * Float(c)) * cosf(fy * yy) + 0.2 * sinf(0.013 * (xx + yy))
                        }
                        pa[base + y * w + x] = v(Float(x), Float(y))
                        pb[base + y * w + x] = v(Float(x) - 1.5, Float(y) + 1)
                    }
                }
            }
        }
        return (a, b)
    }

    /// RAFT's sequence L1 loss (γ 0.8) against the constant flow (1.5, −1).
    static func sequenceLoss(_ preds: [Tensor]) -> Tensor {
        let target = Tensor(shape: [1, 2, 1, 1], values: [1.5, -1])
        var loss: Tensor? = nil
        for (i, p) in preds.enumerated() {
            let term = (p - target).abs().mean() * Float(Foundation.pow(0.8, Double(preds.count - i - 1)))
            loss = loss.map { $0 + term } ?? term
        }
        return loss!
    }

    /// DEQ-Flow on the chosen RAFT with DEQ-Flow's defaults (Anderson, 2 supervised states, one
    /// phantom step or the implicit gradient, weight norm), solving for `iters` steps in training
    /// (and in the implicit gradient's backward solve).
    static func deqNet(_ o: Options) -> (DEQRAFT, DEQOptions) {
        let net = DEQRAFT(DEQRAFTConfig(base: o.small ? .raftSmall : .raft))
        net.initialize(seed: 1)
        var options = DEQOptions()
        options.thres = o.iters
        options.tolerance = 0      // always the full solve: the figure is per step count
        options.gradient = o.deqGradient
        options.backwardThres = o.iters
        options.backwardTolerance = 0
        return (net, options)
    }

    static func makeWorkload(_ o: Options) -> () -> Void {
        let (h, w) = (o.height, o.width)
        switch o.workload {
        case .fastflownetInfer:
            let net = FastFlowNet()
            net.initialize(seed: 1)
            let (a, b) = framePair(n: 1, h: h, w: w)
            let input = Tensor.concat([a - 0.5, b - 0.5], dim: 1)
            return { _ = Tape.noGrad { net(input)[0] } }

        case .fastflownetTrain:
            let net = FastFlowNet()
            net.initialize(seed: 1)
            let (a, b) = framePair(n: o.batch, h: h, w: w)
            let input = Tensor.concat([a - 0.5, b - 0.5], dim: 1)
            let adam = Adam([.init(net.namedParameters())], lr: 1e-4)
            return {
                let flows = net(input)
                let flow = flows[0].resizeBilinear(height: h, width: w, alignCorners: false) * FastFlowNet.flowScale
                let loss = (warp(b, by: flow, padding: .border) - a).abs().mean()
                Tape.backward(loss)
                adam.update()
                net.zeroGrad()
            }

        case .raftInfer where o.deq:
            let (net, options) = deqNet(o)
            net.setTraining(false)
            let (a, b) = framePair(n: 1, h: h, w: w)
            let a255 = a * 255, b255 = b * 255
            return { _ = net.infer(a255, b255, options: options).flow }

        case .raftTrain where o.deq:
            let (net, options) = deqNet(o)
            net.setTraining(true)
            let (a, b) = framePair(n: o.batch, h: h, w: w)
            let a255 = a * 255, b255 = b * 255
            let params = net.namedParameters()
            let adamw = Adam([.init(params, weightDecay: 1e-4)], lr: 4e-4, eps: 1e-8, decoupled: true)
            return {
                let preds = net.trainForward(a255, b255, options: options).predictions
                Tape.backward(sequenceLoss(preds))
                _ = clipGradNorm(params.map(\.1), maxNorm: 1)
                adamw.update()
                net.zeroGrad()
            }

        case .raftInfer:
            let net = RAFT(small: o.small)
            net.initialize(seed: 1)
            net.setTraining(false)
            let (a, b) = framePair(n: 1, h: h, w: w)
            let a255 = a * 255, b255 = b * 255
            return { _ = Tape.noGrad { net(a255, b255, iters: o.iters, allPredictions: false).flow } }

        case .raftTrain:
            let net = RAFT(small: o.small)
            net.initialize(seed: 1)
            net.setTraining(true)           // BatchNorm on batch statistics, as RAFT's chairs stage
            let (a, b) = framePair(n: o.batch, h: h, w: w)
            let a255 = a * 255, b255 = b * 255
            let params = net.namedParameters()
            let adamw = Adam([.init(params, weightDecay: 1e-4)], lr: 4e-4, eps: 1e-8, decoupled: true)
            let iters = o.iters
            return {
                let preds = net(a255, b255, iters: iters).predictions
                Tape.backward(sequenceLoss(preds))
                _ = clipGradNorm(params.map(\.1), maxNorm: 1)
                adamw.update()
                net.zeroGrad()
            }
        }
    }
}
