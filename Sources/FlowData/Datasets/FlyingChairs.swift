// FlyingChairs and the synthetic dataset, which uses the same layout:
//   ROOT/data/NNNNN_img1.{ppm,png}, NNNNN_img2.*, NNNNN_flow.flo
//   optional NNNNN_flow_bw.flo, NNNNN_occ.png; ROOT/split.txt (or FlyingChairs_train_val.txt,
//   chairs_split.txt): one line per pair, 1 = train, 2 = validation.
import Foundation

public struct FlyingChairs: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    /// Split-file names tried, in order, when `splitFile` is nil.
    public static let splitFileNames = ["split.txt", "FlyingChairs_train_val.txt", "chairs_split.txt"]

    /// Enumerates the pairs of `root` (which holds `data/`, or is the data folder itself).
    /// `.train`/`.validation` need a split file with exactly one line per pair.
    public init(root: String, split: DatasetSplit = .all, splitFile: String? = nil) throws {
        let data = directoryExists(joinPath(root, "data")) ? joinPath(root, "data") : root
        let names = try listDirectory(data)
        let firsts = names.filter { name in
            guard let r = name.range(of: "_img1.", options: .backwards) else { return false }
            return imageExtensions.contains(String(name[r.upperBound...]).lowercased())
        }
        if firsts.isEmpty { throw DataError(path: data, reason: "no NNNNN_img1.{ppm,png,jpg} files") }
        let present = Set(names)
        let firstStem = String(firsts[0][..<firsts[0].range(of: "_img1.", options: .backwards)!.lowerBound])
        let hasBackward = present.contains(firstStem + "_flow_bw.flo")
        let hasOcclusion = present.contains(firstStem + "_occ.png")
        var all: [FlowPair] = []
        for name in firsts {
            let r = name.range(of: "_img1.", options: .backwards)!
            let stem = String(name[..<r.lowerBound]), ext = String(name[r.upperBound...])
            let base = joinPath(data, stem)
            all.append(FlowPair(id: stem, image1: joinPath(data, name), image2: base + "_img2." + ext,
                                flow: base + "_flow.flo",
                                backwardFlow: hasBackward ? base + "_flow_bw.flo" : nil,
                                occlusion: hasOcclusion ? base + "_occ.png" : nil))
        }
        if split == .all {
            pairs = all
        } else {
            let candidates = splitFile.map { [$0] } ?? Self.splitFileNames.map { joinPath(root, $0) }
            guard let path = candidates.first(where: fileExists) else {
                throw DataError(path: candidates[0], reason: "missing split file (needed for split \(split.rawValue))")
            }
            let text = String(decoding: try readFileBytes(path), as: UTF8.self)
            let codes = text.split(whereSeparator: \.isWhitespace)
            guard codes.count == all.count else {
                throw DataError(path: path, reason: "split file has \(codes.count) entries for \(all.count) pairs in \(data)")
            }
            let want = split == .train ? "1" : "2"
            for (k, code) in codes.enumerated() where code != "1" && code != "2" {
                throw DataError(path: path, reason: "line \(k + 1): expected 1 or 2, found \"\(code)\"")
            }
            pairs = zip(all, codes).filter { $0.1 == want }.map(\.0)
        }
        name = "FlyingChairs(\(root), \(split.rawValue))"
    }
}
