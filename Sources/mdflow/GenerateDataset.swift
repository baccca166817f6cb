// `mdflow generate-dataset`: writes the embedded synthetic dataset.
import ArgumentParser
import FlowData
import Foundation
import Tensor

/// Which scene generator writes the dataset.
enum SceneKind: String, ExpressibleByArgument, CaseIterable {
    /// Many layers with natural-image textures over a camera motion, photometric change between
    /// the frames: the data that transfers to real video.
    case layered
    /// The quick start's small scenes: a few fractal-textured layers under small affine motions.
    case basic
}

struct GenerateDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-dataset",
        abstract: "Write a synthetic optical-flow dataset with exact ground truth.",
        discussion: """
        layered (default): 4-10 foreground layers (polygons, ellipses) with 1/f-noise and dead-leaves \
        textures over a textured background; a camera motion (translation, rotation, zoom) moves \
        everything, and each layer adds its own (translations up to 15% of the width, small ones the \
        most common, rotation, zoom); frame 2 differs in brightness, contrast, gamma and white \
        balance, and both frames get defocus blur and sensor noise. basic: the quick start's scenes \
        (a few layers under small affine motions). Both are depth-ordered, with exact flow and \
        occlusion. The same seed gives identical bytes whatever the thread count.

        Layout (read by the FlyingChairs-style adapter):
          DIR/data/NNNNN_img1.png, NNNNN_img2.png   frames 1 and 2 (8-bit RGB)
          DIR/data/NNNNN_flow.flo, NNNNN_flow_bw.flo  forward and backward flow
          DIR/data/NNNNN_occ.png   255 where frame 1 is occluded or leaves the frame
          DIR/data/NNNNN_occ_bw.png   the same for frame 2 (layered only)
          DIR/split.txt            one line per pair: 1 = train, 2 = validation
          DIR/layered.json or synthetic.json   the settings used

        Examples:
          mdflow generate-dataset --out Datasets/layered-extra --pairs 2000 --seed 7
          mdflow generate-dataset --kind basic --out Datasets/small --pairs 200 --size 128x192
        """)

    @Option(name: .long, help: "Scene generator: layered or basic.")
    var kind: SceneKind = .layered

    @Option(name: .long, help: ArgumentHelp("Output folder, created if missing (required).", valueName: "DIR"))
    var out: String

    @Option(name: .long, help: "Number of image pairs.")
    var pairs: Int = 2000

    @Option(name: .long, help: ArgumentHelp("Image size as HEIGHTxWIDTH (default: 320x448 layered, 256x320 basic).", valueName: "HxW"))
    var size: String?

    @Option(name: .long, help: "Random seed; the same seed gives identical files.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "basic: largest displacement per axis, in pixels (about; default 20).")
    var maxDisplacement: Double?

    @Option(name: .long, help: "layered: largest translation of a layer relative to the camera, as a fraction of the width (default 0.15).")
    var maxShift: Double?

    @Option(name: .long, help: "layered: render at N× the size and average N×N samples into each pixel: N× finer, antialiased texture detail at N² the cost (default 1).")
    var supersample: Int?

    @Option(name: .long, help: "Every Nth pair goes to the validation split (0: none).")
    var validationEvery: Int = 10

    @Option(name: .long, help: "Threads (default: all cores).")
    var threads: Int?

    func parseSize() throws -> (Int, Int) {
        let text = size ?? (kind == .layered ? "320x448" : "256x320")
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]), h > 0, w > 0 else {
            throw ValidationError("--size must be HEIGHTxWIDTH, e.g. 256x320; got \"\(text)\"")
        }
        return (h, w)
    }

    func validate() throws {
        _ = try parseSize()
        if kind == .layered && maxDisplacement != nil { throw ValidationError("--max-displacement is for --kind basic; layered scenes take --max-shift") }
        if kind == .basic && supersample != nil { throw ValidationError("--supersample is for --kind layered") }
        if kind == .basic && maxShift != nil { throw ValidationError("--max-shift is for --kind layered; basic scenes take --max-displacement") }
        if pairs < 1 { throw ValidationError("--pairs must be at least 1; got \(pairs)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1; got \(threads)") }
    }

    func run() throws {
        let (h, w) = try parseSize()
        let clock = ContinuousClock()
        let began = clock.now
        let total = pairs
        let step = max(1, total / 20)
        let progress: @Sendable (Int) -> Void = { done in
            if done % step == 0 || done == total {
                FileHandle.standardError.write(Data("\r\(done)/\(total) pairs".utf8))
            }
        }
        switch kind {
        case .layered:
            var config = LayeredConfig(pairs: pairs, height: h, width: w, seed: seed)
            if let maxShift { config.maxShift = maxShift }
            if let supersample { config.supersample = supersample }
            config.validationEvery = validationEvery
            let problems = config.problems()
            if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
            try LayeredDataset.generate(config, to: out, threads: threads ?? Runtime.threads, progress: progress)
        case .basic:
            var config = SyntheticConfig(pairs: pairs, height: h, width: w, seed: seed)
            if let maxDisplacement { config.maxDisplacement = maxDisplacement }
            config.validationEvery = validationEvery
            let problems = config.problems()
            if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
            try SyntheticDataset.generate(config, to: out, threads: threads ?? Runtime.threads, progress: progress)
        }
        let elapsed = clock.now - began
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        FileHandle.standardError.write(Data("\n".utf8))
        print("wrote \(pairs) \(kind.rawValue) pairs of \(h)×\(w) to \(out) in " + String(format: "%.1f s", seconds))
    }
}
