// A folder (or a tree of folders) of ordered frames: the user's own video, unlabelled. Each
// folder's image files, in natural order ("frame2" before "frame10"), give consecutive pairs.
// With a flows folder (what `mdflow infer` writes for the same frames: pseudo-labels from a
// stronger net), each pair carries that flow as its label.
import Foundation

public struct FramesFolder: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    /// `recursive`: also every sub-folder, each its own sequence. `step`: pair frame k with
    /// frame k + step. `flows`: a folder holding, for the pair whose first frame is
    /// `root/seq/0001.png`, the flow `flows/seq/0001.flo` (or `.png`, KITTI format).
    public init(root: String, recursive: Bool = true, step: Int = 1, flows: String? = nil) throws {
        guard step >= 1 else { throw DataError(path: root, reason: "frame step must be at least 1, got \(step)") }
        guard directoryExists(root) else { throw DataError(path: root, reason: "missing directory") }
        var all: [FlowPair] = []
        func visit(_ dir: String, _ prefix: String) throws {
            let names = try listDirectory(dir).filter { !$0.hasPrefix(".") }
            let frames = names.filter { imageExtensions.contains(fileExtension($0)) && fileExists(joinPath(dir, $0)) }
            if frames.count > step {
                for k in 0..<(frames.count - step) {
                    all.append(FlowPair(id: prefix + frames[k], image1: joinPath(dir, frames[k]), image2: joinPath(dir, frames[k + step])))
                }
            }
            if recursive {
                for sub in names where directoryExists(joinPath(dir, sub)) { try visit(joinPath(dir, sub), prefix + sub + "/") }
            }
        }
        try visit(root, "")
        if all.isEmpty { throw DataError(path: root, reason: "no sequence with at least \(step + 1) image files (png, jpg, ppm, pgm)") }
        if let flows {
            guard directoryExists(flows) else { throw DataError(path: flows, reason: "missing directory (the flows of \(root))") }
            for k in all.indices {
                let stem = joinPath(flows, (all[k].id as NSString).deletingPathExtension)
                guard let file = ["flo", "png"].map({ stem + "." + $0 }).first(where: fileExists) else {
                    throw DataError(path: stem + ".flo", reason: "missing flow for the pair \(all[k].image1) → \(all[k].image2)")
                }
                all[k].flow = file
            }
        }
        pairs = all
        name = "Frames(\(root))"
    }
}
