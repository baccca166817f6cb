// Middlebury: ROOT/other-data/<Seq>/frame10.png, frame11.png, with
// ROOT/other-gt-flow/<Seq>/flow10.flo when the sequence has ground truth.
import Foundation

public struct Middlebury: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    /// `requireGroundTruth`: keep only sequences with other-gt-flow/<Seq>/flow10.flo.
    public init(root: String, requireGroundTruth: Bool = false) throws {
        let data = joinPath(root, "other-data")
        var all: [FlowPair] = []
        for seq in try listDirectory(data) where directoryExists(joinPath(data, seq)) {
            let gt = joinPath(root, "other-gt-flow", seq, "flow10.flo")
            let hasGT = fileExists(gt)
            if requireGroundTruth && !hasGT { continue }
            all.append(FlowPair(id: seq, image1: joinPath(data, seq, "frame10.png"), image2: joinPath(data, seq, "frame11.png"),
                                flow: hasGT ? gt : nil))
        }
        pairs = all
        name = "Middlebury(\(root))"
    }
}
