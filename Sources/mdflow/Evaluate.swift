import ArgumentParser
import Foundation
import Tensor
import NN
import FlowData
import Training

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate the teacher (or student) of a checkpoint on a validation split.",
        discussion: """
        Prints EPE over all valid pixels (mean over images of each image's mean), over non-occluded \
        and occluded pixels where the dataset has occlusion masks, the 1/3/5-px outlier rates and \
        KITTI Fl-all (pooled over pixels).

        Examples:
          mdflow evaluate --checkpoint Checkpoints/run --recipe Recipes/quickstart.yaml
          mdflow evaluate --checkpoint Checkpoints/run/stages/1 \\
                          --dataset synthetic:Datasets/synthetic --split val
        """)

    @Option(help: ArgumentHelp("A run directory (its latest checkpoint) or a checkpoint folder.", valueName: "DIR"))
    var checkpoint: String

    @Option(help: "Which net: teacher or student.")
    var net: String = "teacher"

    @Option(help: ArgumentHelp("Take the validation dataset from this recipe.", valueName: "RECIPE"))
    var recipe: String?

    @Option(help: ArgumentHelp("A dataset as KIND:ROOT (kinds: synthetic, chairs, sintel, kitti2015, kitti2012, middlebury).", valueName: "KIND:ROOT"))
    var dataset: String?

    @Option(help: "Split: train, val or all.")
    var split: String = "val"

    @Option(help: "Evaluate at most this many pairs (0: all).")
    var maxPairs: Int = 0

    @Option(help: ArgumentHelp("Write the metrics as JSON here.", valueName: "FILE"))
    var json: String?

    @Option(help: ArgumentHelp("Write flow visualizations (PNG) into this folder.", valueName: "DIR"))
    var vis: String?

    func run() throws {
        do {
            guard net == "teacher" || net == "student" else { throw ValidationError("--net must be teacher or student") }
            let folder = try Checkpoint.resolve(checkpoint)
            var spec: DatasetSpec
            var netSpec: NetSpec
            if let recipe {
                let r = try Recipe.load(path: recipe)
                spec = r.data.val
                netSpec = net == "teacher" ? r.teacher : r.student
            } else if let dataset, let colon = dataset.firstIndex(of: ":") {
                spec = DatasetSpec()
                spec.kind = String(dataset[..<colon]); spec.root = String(dataset[dataset.index(after: colon)...])
                spec.split = split
                let saved = folder.deletingLastPathComponent().appendingPathComponent("recipe.yaml")
                let r = (try? Recipe.load(path: saved.path)) ?? Recipe()
                netSpec = net == "teacher" ? r.teacher : r.student
            } else {
                throw ValidationError("give --recipe R or --dataset KIND:ROOT")
            }
            if recipe != nil { spec.split = split }
            netSpec.weights = ""
            let d = try DatasetFactory.open(spec)
            let file = folder.appendingPathComponent("\(net).safetensors")
            let model: TrainableFlowNet
            if net == "teacher" {
                let t = try NetFactory.teacher(netSpec, seed: 0)
                try t.net.load(SafeTensors.read(file).tensors, source: file.path)
                model = t
            } else {
                let s = try NetFactory.student(netSpec, seed: 0)
                try s.net.load(SafeTensors.read(file).tensors, source: file.path)
                model = s
            }
            let m = try Evaluation.run(model, on: d, maxPairs: maxPairs, visualize: vis) { i, n in
                if i % 20 == 0 || i == n { FileHandle.standardError.write("\r  \(i)/\(n) pairs".data(using: .utf8)!) }
            }
            FileHandle.standardError.write("\n".data(using: .utf8)!)
            print("\(net) of \(folder.path) on \(d.name) (\(m.images) pairs):")
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
