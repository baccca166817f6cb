import Foundation
import Tensor
import FlowData

/// The first `limit` pairs of a dataset.
struct Subset: FlowDataset {
    let name: String
    let pairs: [FlowPair]
    init(_ d: FlowDataset, limit: Int, name: String? = nil) {
        self.name = name ?? d.name
        pairs = limit > 0 ? Array(d.pairs.prefix(limit)) : d.pairs
    }
}

/// A dataset's pairs with the forward flow as their only label (a supervised stage reads
/// neither backward flow nor occlusion masks).
struct ForwardFlowOnly: FlowDataset {
    let name: String
    let pairs: [FlowPair]
    init(_ d: FlowDataset) {
        name = d.name
        pairs = d.pairs.map { FlowPair(id: $0.id, image1: $0.image1, image2: $0.image2, flow: $0.flow) }
    }
}

/// Several datasets' pairs as one.
struct Concatenation: FlowDataset {
    let name: String
    let pairs: [FlowPair]
    init(_ parts: [FlowDataset]) {
        name = parts.map(\.name).joined(separator: " + ")
        pairs = parts.flatMap(\.pairs)
    }
}

public enum DatasetFactory {
    /// Opens the dataset a spec names (generating the synthetic one on first use).
    public static func open(_ spec: DatasetSpec, log: (String) -> Void = { _ in }) throws -> FlowDataset {
        let split = spec.split.datasetSplit
        let d: FlowDataset
        var name: String? = nil
        switch spec.kind {
        case .synthetic:
            if !FileManager.default.fileExists(atPath: spec.root + "/split.txt") {
                log("generating the synthetic dataset into \(spec.root) (\(spec.generate.pairs) pairs, \(spec.generate.height)×\(spec.generate.width), seed \(spec.generate.seed))")
                let t0 = Date()
                try SyntheticDataset.generate(spec.generate, to: spec.root)
                log(String(format: "generated in %.1f s", Date().timeIntervalSince(t0)))
            }
            d = try FlyingChairs(root: spec.root, split: split)
            name = "synthetic(\(spec.root), \(split.rawValue))"
        case .layered:
            if !FileManager.default.fileExists(atPath: spec.root + "/split.txt") {
                let c = spec.layered
                log("generating the layered synthetic dataset into \(spec.root) (\(c.pairs) pairs, \(c.height)×\(c.width), seed \(c.seed))")
                let t0 = Date()
                try LayeredDataset.generate(c, to: spec.root)
                log(String(format: "generated in %.1f s", Date().timeIntervalSince(t0)))
            }
            d = try FlyingChairs(root: spec.root, split: split)
            name = "layered(\(spec.root), \(split.rawValue))"
        case .chairs: d = try FlyingChairs(root: spec.root, split: split)
        case .sintel: d = try Sintel(root: spec.root, pass: spec.pass.sintelPass, part: .training, split: split)
        case .kitti2015: d = try KITTIFlow(root: spec.root, year: .kitti2015)
        case .kitti2012: d = try KITTIFlow(root: spec.root, year: .kitti2012)
        case .kittiMultiview: d = try KITTIMultiview(root: spec.root, year: .kitti2015)
        case .middlebury: d = try Middlebury(root: spec.root)
        case .frames: d = try FramesFolder(root: spec.root, flows: spec.flows.isEmpty ? nil : spec.flows)
        case .video: d = try VideoDataset(root: spec.root, options: spec.video, log: log)
        }
        guard !d.pairs.isEmpty else { throw DataError(path: spec.root, reason: "\(d.name) has no image pairs for split '\(spec.split.rawValue)'") }
        let own = Subset(d, limit: spec.maxPairs, name: name)
        if spec.include.isEmpty { return own }
        return Concatenation([own] + (try spec.include.map { try open($0, log: log) }))
    }
}
