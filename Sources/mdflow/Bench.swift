import ArgumentParser
import Foundation
import Tensor
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed (release builds only give meaningful numbers).",
        discussion: """
        Workloads:
          conv   convolution forward / backward-data / backward-weight GFLOP/s beside plain sgemm
                 for the same (M, K, N), at FastFlowNet and RAFT layer shapes.
        Figures are medians over --reps runs after warm-ups.
        """)

    @Argument(help: "Workload: conv.")
    var workload: String

    @Option(help: "Thread counts to measure, comma-separated.")
    var threads: String = "1,2"

    @Option(help: "Timed repetitions per measurement (the median is reported).")
    var reps: Int = 7

    func run() throws {
        let ts = threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ts.isEmpty, ts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads must list positive integers, got '\(threads)'") }
        switch workload {
        case "conv":
            #if DEBUG
            FileHandle.standardError.write("warning: debug build; build with -c release for real figures\n".data(using: .utf8)!)
            #endif
            print("OpenBLAS: \(Runtime.blasConfig)")
            let rows = ConvBench.run(threads: ts, reps: reps) { FileHandle.standardError.write("  \($0)\n".data(using: .utf8)!) }
            print("GFLOP/s, medians of \(reps) runs (1 image):")
            print(ConvBench.table(rows))
        default:
            throw ValidationError("unknown workload '\(workload)'; known: conv")
        }
    }
}
