// A folder (or a tree of folders) of ordered frames: the user's own video, unlabelled. Each
// folder's image files, in natural order ("frame2" before "frame10"), give consecutive pairs.
import Foundation

public struct FramesFolder: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    /// `recursive`: also every sub-folder, each its own sequence. `step`: pair frame k with
    /// frame k + step.
    public init(root: String, recursive: Bool = true, step: Int = 1) throws {
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
        pairs = all
        name = "Frames(\(root))"
    }
}
