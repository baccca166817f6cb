// `mdflow generate-dataset`: writes the embedded synthetic dataset.
import ArgumentParser
import FlowData
import Foundation
import Tensor

struct GenerateDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-dataset",
        abstract: "Write a synthetic optical-flow dataset with exact ground truth.",
        discussion: """
        Textured background and foreground layers (polygons, ellipses) under independent random \
        affine motions, depth-ordered so they occlude one another. The same seed gives identical bytes.

        Layout (read by the FlyingChairs-style adapter):
          DIR/data/NNNNN_img1.png, NNNNN_img2.png   frames 1 and 2 (8-bit RGB)
          DIR/data/NNNNN_flow.flo, NNNNN_flow_bw.flo  forward and backward flow
          DIR/data/NNNNN_occ.png   255 where frame 1 is occluded or leaves the frame
          DIR/split.txt            one line per pair: 1 = train, 2 = validation
          DIR/synthetic.json       the settings used
        """)

    @Option(name: .long, help: ArgumentHelp("Output folder (created if missing).", valueName: "DIR"))
    var out: String

    @Option(name: .long, help: "Number of image pairs.")
    var pairs: Int = 2000

    @Option(name: .long, help: ArgumentHelp("Image size as HEIGHTxWIDTH.", valueName: "HxW"))
    var size: String = "256x320"

    @Option(name: .long, help: "Random seed; the same seed gives identical files.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Largest displacement per axis, in pixels (about).")
    var maxDisplacement: Double = 20

    @Option(name: .long, help: "Every Nth pair goes to the validation split (0: none).")
    var validationEvery: Int = 10

    @Option(name: .long, help: "Threads (default: all cores).")
    var threads: Int?

    func parseSize() throws -> (Int, Int) {
        let parts = size.lowercased().split(separator: "x")
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0 else {
            throw ValidationError("--size must be HEIGHTxWIDTH, e.g. 256x320; got \"\(size)\"")
        }
        return (h, w)
    }

    func validate() throws {
        _ = try parseSize()
        if pairs < 1 { throw ValidationError("--pairs must be at least 1; got \(pairs)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1; got \(threads)") }
    }

    func run() throws {
        let (h, w) = try parseSize()
        var config = SyntheticConfig(pairs: pairs, height: h, width: w, seed: seed)
        config.maxDisplacement = maxDisplacement
        config.validationEvery = validationEvery
        let problems = config.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        let clock = ContinuousClock()
        let began = clock.now
        let total = pairs
        let step = max(1, total / 20)
        try SyntheticDataset.generate(config, to: out, threads: threads ?? Runtime.threads) { done in
            if done % step == 0 || done == total {
                FileHandle.standardError.write(Data("\r\(done)/\(total) pairs".utf8))
            }
        }
        let elapsed = clock.now - began
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        FileHandle.standardError.write(Data("\n".utf8))
        print("wrote \(pairs) pairs of \(h)×\(w) to \(out) in " + String(format: "%.1f s", seconds))
    }
}
