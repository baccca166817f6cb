import ArgumentParser
import Foundation
import Tensor
import Training
import FlowNets
import FlowData

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed (release builds only give meaningful numbers).",
        discussion: """
        Workloads:
          loader             augmented pairs per second from the data loader (synthetic
                             pairs, full augmentation, background decoding),
                             --size HxW --batch B.
          conv               convolution forward / backward-data / backward-weight
                             GFLOP/s, each alternating with plain sgemm of the same
                             (M, K, N), at FastFlowNet and RAFT layer shapes.
          fastflownet-infer  FastFlowNet forward on one pair (1, 6, H, W), output
                             flow2.
          fastflownet-train  batch B: training forward, 20× bilinear upsampling of
                             flow2, mean |warp(img2) − img1| (border padding),
                             backward, Adam(1e-4) step.
          raft-infer         RAFT [--small] test-mode forward on one pair, --iters
                             iterations, full-resolution output.
          raft-train         RAFT [--small] batch B: --iters iterations, sequence L1
                             loss (γ 0.8) against a constant flow, backward, gradient
                             clip 1.0, AdamW(4e-4, wd 1e-4) step.

        The network workloads are the PyTorch performance anchors (docs/performance.md). Figures are \
        medians over --reps runs after 2 warm-ups; --json prints one JSON line with median_ms, \
        min_ms, cpu_median_ms (process CPU time per run, all threads; a virtual machine leaves \
        out the time stolen by its host, so at one thread it is the steadier figure) and \
        peak_rss_mb.

        Examples:
          mdflow bench fastflownet-infer --threads 2 --size 448x1024
          mdflow bench raft-train --small --threads 1 --batch 2 --size 256x320 --json
          mdflow bench raft-train --small --deq --iters 24 --json     (peak_rss_mb against RAFT's)
          mdflow bench conv --threads 1,2 --layers pconv1_1
        """)

    @Argument(help: "Workload: conv, loader, fastflownet-infer, fastflownet-train, raft-infer, raft-train.")
    var workload: String

    @Option(help: "Thread count (network workloads: one number; conv: a comma-separated list, default 1,2).")
    var threads: String?

    @Option(help: "Timed repetitions (the median is reported); default 15 for conv (each product alternating with its sgemm), 5 otherwise.")
    var reps: Int?

    @Option(help: "Input size HxW (default 384x512 for inference, 256x320 for training).")
    var size: String?

    @Option(help: "Batch size (default 1 for inference, 4 for fastflownet-train, 2 for raft-train).")
    var batch: Int?

    @Option(help: "RAFT iterations.")
    var iters: Int = 12

    @Flag(help: "RAFT-small instead of full RAFT.")
    var small = false

    @Flag(help: "raft-infer / raft-train: DEQ-Flow on that RAFT (Anderson, weight norm, 2 supervised states, one phantom step); --iters is the training solve's step count, inference solves for 1.5× as many.")
    var deq = false

    @Option(help: "With --deq: phantom (damped steps on the tape) or implicit (implicit differentiation: a backward solve of --iters vector–Jacobian products).")
    var deqGradient: DEQOptions.Gradient = .phantom

    @Flag(help: "Print one JSON line.")
    var json = false

    @Option(help: "conv: only the layers whose name contains one of these comma-separated words (e.g. pconv1_1,s2; default: every layer).")
    var layers: String?

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write("warning: debug build; build with -c release for real figures\n".data(using: .utf8)!)
        #endif
        if workload == "conv" {
            let spec = threads ?? "1,2"
            let ts = spec.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !ts.isEmpty, ts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads must list positive integers, got '\(spec)'") }
            let r = reps ?? 15
            print("OpenBLAS: \(Runtime.blasConfig)")
            let words = (layers ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let chosen = ConvBench.layers.filter { l in words.isEmpty || words.contains { l.name.contains($0) } }
            guard !chosen.isEmpty else {
                throw ValidationError("--layers '\(layers ?? "")' matches no layer; known: " + ConvBench.layers.map(\.name).joined(separator: "; "))
            }
            let rows = ConvBench.run(chosen, threads: ts, reps: r) { FileHandle.standardError.write("  \($0)\n".data(using: .utf8)!) }
            print("GFLOP/s, medians of \(r) runs (1 image):")
            print(ConvBench.table(rows))
            return
        }
        if workload == "loader" {
            if let t = threads, let n = Int(t) { Runtime.setThreads(n) }
            let (h, wd) = try parseSize(size ?? "256x320")
            let r = try benchmarkLoader(pairs: 64, height: h, width: wd, batchSize: batch ?? 8, batches: reps ?? 20)
            if json {
                print("{\"workload\":\"loader\",\"size\":\"\(h)x\(wd)\",\"batch\":\(r.batchSize),\"threads\":\(r.threads),\"pairs_per_s\":\(String(format: "%.1f", r.pairsPerSecond))}")
            } else {
                print(r)
            }
            return
        }
        guard let w = NetBench.Workload(rawValue: workload) else {
            throw ValidationError("unknown workload '\(workload)'; known: conv, " + NetBench.Workload.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let training = w == .fastflownetTrain || w == .raftTrain
        let (h, wd) = try parseSize(size ?? (training ? "256x320" : "384x512"))
        if w == .fastflownetInfer || w == .fastflownetTrain {
            guard h % 64 == 0 && wd % 64 == 0 else { throw ValidationError("--size \(h)x\(wd): FastFlowNet needs multiples of 64") }
        } else {
            guard h % 8 == 0 && wd % 8 == 0 && h >= 64 && wd >= 64 else { throw ValidationError("--size \(h)x\(wd): RAFT needs multiples of 8, at least 64x64") }
        }
        let t: Int
        if let threads {
            guard let v = Int(threads), v >= 1 else { throw ValidationError("--threads must be one positive integer for \(workload), got '\(threads)'") }
            t = v
        } else {
            t = ProcessInfo.processInfo.activeProcessorCount
        }
        let b = batch ?? (w == .fastflownetTrain ? 4 : w == .raftTrain ? 2 : 1)
        guard b >= 1, iters >= 1 else { throw ValidationError("--batch and --iters must be positive") }
        if !training && b != 1 { throw ValidationError("\(workload) runs on one pair; --batch must be 1") }
        if deq && w != .raftInfer && w != .raftTrain { throw ValidationError("--deq applies to raft-infer and raft-train") }
        var options = NetBench.Options(workload: w, small: small, height: h, width: wd, batch: b, iters: iters,
                                       threads: t, reps: reps ?? 5)
        options.deq = deq
        options.deqGradient = deqGradient
        if deqGradient != .phantom && !(deq && w == .raftTrain) { throw ValidationError("--deq-gradient applies to raft-train --deq") }
        let result = NetBench.run(options)
        if json {
            print(result.json)
        } else {
            print("\(options.label) \(h)x\(wd) batch \(b)\(result.usesItersLabel), \(t) thread(s): "
                  + String(format: "median %.1f ms, min %.1f ms, CPU %.1f ms, peak RSS %.0f MB (tensors %.0f MB)",
                           result.medianMS, result.minMS, result.medianCPUMS, result.peakRSSMB, result.peakTensorsMB))
        }
    }

    func parseSize(_ s: String) throws -> (Int, Int) {
        let parts = s.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { throw ValidationError("--size must be HxW, got '\(s)'") }
        return (parts[0], parts[1])
    }
}

extension NetBench.Result {
    var usesItersLabel: String { usesIters ? ", \(options.iters) iters" : "" }
}
