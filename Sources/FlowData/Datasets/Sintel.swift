// MPI-Sintel:
//   ROOT/{training,test}/{clean,final}/<scene>/frame_NNNN.png
//   ROOT/training/flow/<scene>/frame_NNNN.flo (flow of frame i → i+1)
//   ROOT/training/occlusions/<scene>/frame_NNNN.png, ROOT/training/invalid/<scene>/frame_NNNN.png
import Foundation

public struct Sintel: FlowDataset {
    public enum Pass: String, Sendable, Codable, CaseIterable { case clean, final }
    public enum Part: String, Sendable, Codable, CaseIterable { case training, test }

    /// ARFlow's unofficial split: these training scenes train, the others validate.
    public static let trainScenes: Set<String> = [
        "alley_1", "ambush_4", "ambush_6", "ambush_7", "bamboo_2", "bandage_2", "cave_2", "market_2", "market_5",
        "shaman_2", "sleeping_2", "temple_3",
    ]

    public let name: String
    public let pairs: [FlowPair]

    /// Consecutive frames within each scene. `scenes` restricts to the named scenes; `split`
    /// `.train`/`.validation` follows ARFlow's scene split (training part only).
    public init(root: String, pass: Pass = .clean, part: Part = .training, scenes: [String]? = nil,
                split: DatasetSplit = .all) throws {
        let base = joinPath(root, part.rawValue)
        let images = joinPath(base, pass.rawValue)
        var sceneNames = try listDirectory(images).filter { directoryExists(joinPath(images, $0)) }
        if let scenes {
            for s in scenes where !sceneNames.contains(s) { throw DataError(path: joinPath(images, s), reason: "missing scene") }
            sceneNames = sceneNames.filter(scenes.contains)
        }
        if split != .all {
            sceneNames = sceneNames.filter { (split == .train) == Self.trainScenes.contains($0) }
        }
        let labelled = part == .training
        let hasOcclusions = labelled && directoryExists(joinPath(base, "occlusions"))
        let hasInvalid = labelled && directoryExists(joinPath(base, "invalid"))
        var all: [FlowPair] = []
        for scene in sceneNames {
            let dir = joinPath(images, scene)
            let frames = try listDirectory(dir).filter { imageExtensions.contains(fileExtension($0)) }
            if frames.count < 2 { continue }
            for k in 0..<(frames.count - 1) {
                let stem = String(frames[k].dropLast(fileExtension(frames[k]).count + 1))
                all.append(FlowPair(
                    id: "\(scene)/\(stem)", image1: joinPath(dir, frames[k]), image2: joinPath(dir, frames[k + 1]),
                    flow: labelled ? joinPath(base, "flow", scene, stem + ".flo") : nil,
                    occlusion: hasOcclusions ? joinPath(base, "occlusions", scene, stem + ".png") : nil,
                    invalid: hasInvalid ? joinPath(base, "invalid", scene, stem + ".png") : nil))
            }
        }
        pairs = all
        name = "Sintel(\(root), \(part.rawValue)/\(pass.rawValue), \(split.rawValue))"
    }
}
