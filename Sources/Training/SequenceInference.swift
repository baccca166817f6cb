// `mdflow infer` over many pairs: every consecutive pair of a folder of frames (each sub-folder a
// sequence) or of a video file, one flow file per pair, with progress and an ETA.
import Foundation
import FlowData

/// Flow for every consecutive pair of a frames folder or a video.
public struct SequenceInference {
    /// A folder of frames (PNG, JPEG, PPM; sub-folders are sequences of their own), or a video
    /// file ffmpeg can decode.
    public var source: String
    /// Pair frame k with frame k + step.
    public var step = 1
    /// At most this many frames of a video, or of each sequence of a folder (0: all).
    public var maxFrames = 0
    public var format = FlowFormat.flo
    /// Also write colour visualizations: PNGs under this folder, or, when it ends in a video
    /// extension (.mp4, .mkv, …), one video of them through ffmpeg.
    public var visualizations: String? = nil
    /// Frames per second of a visualization video.
    public var fps = 10
    /// Visualizations show the first frame beside the flow with the colour wheel (false: the
    /// flow's colours alone).
    public var visualizeWithFrame = true
    /// Write only the pixels that pass the forward-backward check (`predictReliable`).
    public var reliableOnly = false

    public init(source: String) { self.source = source }

    /// The pairs of `source`, each with the output path (relative to the output folder, without
    /// extension) it is written to. Video frames are decoded into `cache`.
    public func pairs(cache: String) throws -> [(pair: FlowPair, name: String)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
            throw TrainingError("\(source): no such file or folder")
        }
        if isDirectory.boolValue {
            let frames = try FramesFolder(root: source, step: step)
            // Pairs come in order, sequence by sequence; with maxFrames each sequence keeps the
            // pairs within its first maxFrames frames.
            var kept: [FlowPair] = [], sequence: String? = nil, index = 0
            for pair in frames.pairs {
                let folder = (pair.id as NSString).deletingLastPathComponent
                if folder != sequence { sequence = folder; index = 0 }
                if maxFrames == 0 || index + step < maxFrames { kept.append(pair) }
                index += 1
            }
            // "seq/0001.png" → "seq/0001"
            return kept.map { ($0, ($0.id as NSString).deletingPathExtension) }
        }
        guard VideoDataset.videoExtensions.contains((source as NSString).pathExtension.lowercased()) else {
            throw TrainingError("\(source): give two frames, a folder of frames or a video file (\(VideoDataset.videoExtensions.sorted().joined(separator: ", ")))")
        }
        var options = VideoOptions()
        options.step = step
        options.maxFrames = maxFrames
        options.cache = cache
        let video = try VideoDataset(root: source, options: options)
        // The cached frame files are named by their index in the video: "000012.png" → "000012".
        return video.pairs.map { ($0, (($0.image1 as NSString).lastPathComponent as NSString).deletingPathExtension) }
    }

    /// Writes OUT/<name>.<format> for every pair; returns the number of pairs. Existing outputs
    /// are replaced. `log` gets progress lines.
    @discardableResult
    public func run(predictor: FlowPredictor, outputFolder out: String, log: (String) -> Void) throws -> Int {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-infer-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let list = try pairs(cache: cache)
        log("\(list.count) pairs from \(source) → \(out)/ (\(predictor.arch.rawValue), \(predictor.weights))")
        let start = Date()
        var lastLog = start
        var blank = 0, reliable = 0.0
        let videoOut = visualizations.map { VideoDataset.videoExtensions.contains(($0 as NSString).pathExtension.lowercased()) } ?? false
        let visFrames = cache + "/vis"
        for (k, item) in list.enumerated() {
            let sample = try item.pair.load()
            if FlowPredictor.isBlank(sample.image1) || FlowPredictor.isBlank(sample.image2) { blank += 1 }
            let names = (item.pair.image1, item.pair.image2)
            let field = reliableOnly ? try predictor.predictReliable(sample.image1, sample.image2, names: names)
                                     : try predictor.predict(sample.image1, sample.image2, names: names)
            reliable += Double(field.valid.reduce(0, +)) / Double(field.planeSize)
            let target = out + "/" + item.name + "." + format.rawValue
            let vis = videoOut ? visFrames + String(format: "/%06d.png", k) : visualizations.map { $0 + "/" + item.name + ".png" }
            for path in [target] + (vis.map { [$0] } ?? []) {
                let dir = (path as NSString).deletingLastPathComponent
                do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
                catch { throw TrainingError("\(dir): cannot create (\(error.localizedDescription))") }
            }
            try field.write(to: target, format: format, visualization: vis, frame: visualizeWithFrame ? sample.image1 : nil)
            let now = Date()
            if now.timeIntervalSince(lastLog) > 5 || k + 1 == list.count {
                lastLog = now
                let elapsed = now.timeIntervalSince(start), rate = Double(k + 1) / max(elapsed, 1e-9)
                log("\(k + 1)/\(list.count) pairs  \(String(format: "%.2f", rate)) pairs/s  ETA \(Trainer.duration(Double(list.count - k - 1) / rate))"
                    + (reliableOnly ? String(format: "  reliable %.1f%%", 100 * reliable / Double(k + 1)) : ""))
            }
        }
        if videoOut, let video = visualizations {
            let parent = (video as NSString).deletingLastPathComponent
            if !parent.isEmpty { try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            try FFmpeg.encode(framesIn: visFrames, fps: fps, to: video)
            log("wrote \(video) (\(list.count) frames at \(fps) fps)")
        }
        if predictor.solves > 0 {
            let mean = String(format: "%.1f", Double(predictor.solverEvaluations) / Double(predictor.solves))
            log("DEQ solves: \(mean) evaluations of f per solve (\(predictor.solves) solves, each from "
                + (predictor.reuseFixedPoint ? "the previous pair's solution)" : "zero flow)"))
        }
        if blank > 0 { log("warning: \(blank) of \(list.count) pairs have a blank frame (one colour); their flow is not determined by the images") }
        return list.count
    }
}
