import ArgumentParser
import Foundation
import Tensor
import NN
import FlowData
import FlowNets
import Training

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint's teacher or student, a weights file, or the shipped teacher on a validation split.",
        discussion: """
        Prints EPE over all valid pixels (mean over images of each image's mean), over non-occluded \
        and occluded pixels where the dataset has occlusion masks, the 1/3/5-px outlier rates and \
        KITTI Fl-all (pooled over pixels).

        Examples:
          mdflow evaluate --dataset middlebury:../shared/real/middlebury --split all
          mdflow evaluate --weights raft-small.safetensors --arch raft-small --dataset middlebury:DIR --split all
          mdflow evaluate --checkpoint Checkpoints/run --recipe Recipes/quickstart.yaml
          mdflow evaluate --checkpoint Checkpoints/run/stages/1 \\
                          --dataset synthetic:Datasets/synthetic --split val
        """)

    @Option(help: ArgumentHelp("A run directory (its latest checkpoint) or a checkpoint folder (default: none; --weights or the shipped weights).", valueName: "DIR"))
    var checkpoint: String?

    @Option(help: "With --checkpoint: which net, teacher or student.")
    var net: TrainedNet = .teacher

    @Option(help: ArgumentHelp("A weights file (.safetensors or .pth) instead of a checkpoint; default: the shipped Models/ weights of --arch.", valueName: "FILE"))
    var weights: String?

    @Option(help: "Without --checkpoint: the network of --weights (fastflownet, raft or raft-small).")
    var arch: NetArch = .fastflownet

    @Option(help: "RAFT iterations (default: the recipe's evalIters, 12 without a recipe).")
    var iters: Int?

    @Option(help: ArgumentHelp("Take the validation dataset from this recipe (default: none; give it or --dataset).", valueName: "RECIPE"))
    var recipe: String?

    @Option(help: ArgumentHelp("A dataset as KIND:ROOT (kinds with ground truth: synthetic, layered, chairs, sintel, kitti2015, kitti2012, middlebury; default: none, give it or --recipe).", valueName: "KIND:ROOT"))
    var dataset: String?

    @Option(help: "Split: train, val or all.")
    var split: DatasetSpec.Split = .val

    @Option(help: inferenceScaleHelp)
    var scale: InferenceScale?

    @Option(help: "Evaluate at most this many pairs (0: all).")
    var maxPairs: Int = 0

    @Option(help: ArgumentHelp("Write the metrics as JSON here (default: none).", valueName: "FILE"))
    var json: String?

    @Option(help: ArgumentHelp("Write flow visualizations (PNG) into this folder (default: none).", valueName: "DIR"))
    var vis: String?

    func run() throws {
        do {
            if checkpoint != nil && weights != nil { throw ValidationError("give --checkpoint or --weights, not both") }
            if let iters, iters < 1 { throw ValidationError("--iters must be at least 1") }
            let folder = try checkpoint.map { try Checkpoint.resolve($0) }
            var spec: DatasetSpec
            var saved = Recipe()
            if let recipe {
                saved = try Recipe.load(path: recipe)
                spec = saved.data.val
                spec.split = split
            } else if let dataset, let colon = dataset.firstIndex(of: ":") {
                spec = DatasetSpec()
                let kind = String(dataset[..<colon])
                guard let k = DatasetKind(rawValue: kind) else {
                    throw ValidationError("--dataset: unknown kind '\(kind)'; expected one of \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                spec.kind = k; spec.root = String(dataset[dataset.index(after: colon)...])
                spec.split = split
                if let folder {
                    saved = (try? Recipe.load(path: folder.deletingLastPathComponent().appendingPathComponent("recipe.yaml").path)) ?? Recipe()
                }
            } else {
                throw ValidationError("give --recipe R or --dataset KIND:ROOT")
            }
            // What to load: a checkpoint's teacher or student, or a weights file of --arch.
            let isTeacher = folder != nil ? net == .teacher : arch == .fastflownet
            var netSpec = isTeacher ? saved.teacher : saved.student
            if folder == nil && !isTeacher { netSpec.arch = arch }
            if let iters { netSpec.evalIters = iters }
            // A lone file is checked against a manifest beside it (a checkpoint folder already was, whole).
            netSpec.weights = try folder.map { $0.appendingPathComponent("\(net.rawValue).safetensors").path } ?? weights ?? arch.shippedWeights()
            let d = try DatasetFactory.open(spec)
            let size = try inferenceScale(scale, teacher: isTeacher)
            let model: TrainableFlowNet
            if isTeacher {
                let t = try NetFactory.teacher(netSpec, seed: 0)
                t.inferenceScale = size
                model = t
            } else {
                model = try NetFactory.student(netSpec, seed: 0)
            }
            let m = try Evaluation.run(model, on: d, maxPairs: maxPairs, visualize: vis) { i, n in
                if i % 20 == 0 || i == n { FileHandle.standardError.write("\r  \(i)/\(n) pairs".data(using: .utf8)!) }
            }
            FileHandle.standardError.write("\n".data(using: .utf8)!)
            print("\(isTeacher ? "teacher" : "student") \(netSpec.weights) on \(d.name) (\(m.images) pairs):")
            print(String(format: "  EPE all %.3f   noc %@   occ %@   (mean over images)", m.epe,
                         m.epeNoc.map { String(format: "%.3f", $0) } ?? "–", m.epeOcc.map { String(format: "%.3f", $0) } ?? "–"))
            print(String(format: "  EPE all pooled over pixels %.3f", m.epePixel))
            print(String(format: "  outliers >1px %.2f%%  >3px %.2f%%  >5px %.2f%%  Fl-all %.2f%% (pooled over pixels)",
                         m.outliers.px1, m.outliers.px3, m.outliers.px5, m.flAll))
            if let json {
                let data = try JSONSerialization.data(withJSONObject: m.summary, options: [.prettyPrinted, .sortedKeys])
                try Checkpoint.writeAtomically(data, to: URL(fileURLWithPath: json))
            }
        } catch let e as ValidationError {
            throw e
        } catch {
            FileHandle.standardError.write("mdflow: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode.failure
        }
    }
}
