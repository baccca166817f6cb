// KITTI 2012 and 2015.
//   Evaluation pairs: ROOT/{training,testing}/<images>/NNNNNN_10.png, NNNNNN_11.png with
//   ROOT/training/flow_occ/NNNNNN_10.png and flow_noc/NNNNNN_10.png (16-bit KITTI flow PNG).
//   <images> is image_2 (2015) or colored_0 (2012; image_2 also accepted).
//   Multiview: the same folders holding frames NNNNNN_00 … NNNNNN_20 for both cameras
//   (image_2 + image_3, or colored_0 + colored_1).
import Foundation

public enum KITTIYear: String, Sendable, Codable, CaseIterable {
    case kitti2012 = "2012", kitti2015 = "2015"

    /// Camera folders, left first, with alternatives tried in order.
    var cameraFolders: [[String]] {
        switch self {
        case .kitti2012: return [["colored_0", "image_2"], ["colored_1", "image_3"]]
        case .kitti2015: return [["image_2"], ["image_3"]]
        }
    }
}

public enum KITTIPart: String, Sendable, Codable, CaseIterable { case training, testing }

private func cameraFolder(_ base: String, _ alternatives: [String]) -> String? {
    alternatives.map { joinPath(base, $0) }.first(where: directoryExists)
}

/// KITTI evaluation pairs (frame 10 → 11) with flow_occ (all valid pixels) as the flow, and
/// occlusion = valid in flow_occ but not in flow_noc.
public struct KITTIFlow: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    public init(root: String, year: KITTIYear, part: KITTIPart = .training) throws {
        let base = joinPath(root, part.rawValue)
        guard let images = cameraFolder(base, year.cameraFolders[0]) else {
            throw DataError(path: joinPath(base, year.cameraFolders[0][0]), reason: "missing directory")
        }
        let labelled = part == .training
        let hasNoc = labelled && directoryExists(joinPath(base, "flow_noc"))
        pairs = try listDirectory(images).filter { $0.hasSuffix("_10.png") }.map { name in
            let seq = String(name.dropLast("_10.png".count))
            return FlowPair(id: seq + "_10", image1: joinPath(images, name), image2: joinPath(images, seq + "_11.png"),
                            flow: labelled ? joinPath(base, "flow_occ", name) : nil,
                            flowNoc: hasNoc ? joinPath(base, "flow_noc", name) : nil)
        }
        name = "KITTI\(year.rawValue)(\(root), \(part.rawValue))"
    }
}

/// KITTI multiview sequences for unsupervised training: all consecutive pairs of both cameras,
/// dropping every pair that touches frames 9-12 so the evaluation pair 10→11 never leaks.
public struct KITTIMultiview: FlowDataset {
    public static let excludedFrames: ClosedRange<Int> = 9...12

    public let name: String
    public let pairs: [FlowPair]

    /// `cameras`: 0 = left, 1 = right.
    public init(root: String, year: KITTIYear, part: KITTIPart = .training, cameras: [Int] = [0, 1]) throws {
        let base = joinPath(root, part.rawValue)
        var all: [FlowPair] = []
        for camera in cameras {
            guard camera == 0 || camera == 1 else { throw DataError(path: base, reason: "KITTI camera must be 0 or 1, got \(camera)") }
            guard let dir = cameraFolder(base, year.cameraFolders[camera]) else {
                throw DataError(path: joinPath(base, year.cameraFolders[camera][0]), reason: "missing directory")
            }
            var frames: [String: Set<Int>] = [:]
            for name in try listDirectory(dir) where name.hasSuffix(".png") {
                let stem = name.dropLast(4)
                guard let underscore = stem.lastIndex(of: "_"), let frame = Int(stem[stem.index(after: underscore)...]) else { continue }
                frames[String(stem[..<underscore]), default: []].insert(frame)
            }
            for seq in frames.keys.sorted(by: naturalLess) {
                let set = frames[seq]!
                for f in set.sorted() where set.contains(f + 1) {
                    if Self.excludedFrames.contains(f) || Self.excludedFrames.contains(f + 1) { continue }
                    func file(_ k: Int) -> String { joinPath(dir, seq + "_" + (k < 10 ? "0" : "") + String(k) + ".png") }
                    all.append(FlowPair(id: "\(URL(fileURLWithPath: dir).lastPathComponent)/\(seq)_\(f)", image1: file(f), image2: file(f + 1)))
                }
            }
        }
        pairs = all
        name = "KITTI\(year.rawValue)Multiview(\(root), \(part.rawValue))"
    }
}
