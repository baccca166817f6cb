// Middlebury, in either of two layouts:
//   official: ROOT/other-data/<Seq>/frame10.png, frame11.png (or other-data-gray/), with
//             ROOT/other-gt-flow/<Seq>/flow10.flo when the sequence has ground truth;
//   flat:     ROOT/<Seq>/frame1.png, frame2.png, flow.flo. A <Seq>_color folder beside <Seq>
//             holds the same pair in colour and is skipped, so the eight training sequences
//             are counted once.
import Foundation

public struct Middlebury: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    /// `requireGroundTruth`: keep only sequences with ground-truth flow.
    public init(root: String, requireGroundTruth: Bool = false) throws {
        var all: [FlowPair] = []
        if let data = ["other-data", "other-data-gray"].map({ joinPath(root, $0) }).first(where: directoryExists) {
            for seq in try listDirectory(data) where directoryExists(joinPath(data, seq)) {
                let gt = joinPath(root, "other-gt-flow", seq, "flow10.flo")
                let hasGT = fileExists(gt)
                if requireGroundTruth && !hasGT { continue }
                all.append(FlowPair(id: seq, image1: joinPath(data, seq, "frame10.png"), image2: joinPath(data, seq, "frame11.png"),
                                    flow: hasGT ? gt : nil))
            }
        } else {
            let names = try listDirectory(root)
            let folders = Set(names.filter { directoryExists(joinPath(root, $0)) })
            for seq in folders.sorted() where fileExists(joinPath(root, seq, "frame1.png")) {
                if seq.hasSuffix("_color") && folders.contains(String(seq.dropLast(6))) { continue }
                let gt = joinPath(root, seq, "flow.flo")
                let hasGT = fileExists(gt)
                if requireGroundTruth && !hasGT { continue }
                all.append(FlowPair(id: seq, image1: joinPath(root, seq, "frame1.png"), image2: joinPath(root, seq, "frame2.png"),
                                    flow: hasGT ? gt : nil))
            }
            if all.isEmpty { throw DataError(path: root, reason: "no other-data/ or other-data-gray/ folder, and no <Seq>/frame1.png") }
        }
        pairs = all
        name = "Middlebury(\(root))"
    }
}
