import Testing
import Foundation
import Tensor
import FlowData
import Training
import TestSupport

/// `mdflow infer` over a folder of frames or a video: one flow file per consecutive pair, named
/// after the pair's first frame, equal to the flow of that pair on its own.
@Suite struct SequenceInferenceTests {
    let teacher = modelsDir.appendingPathComponent(ShippedModels.teacherFile).path

    func tempDir(_ name: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-seq-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: u)
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    /// Frames k = 0..<count of a scene panning by (3, −2) px a frame, as PNGs named f0.png, f1.png….
    func writeFrames(_ dir: URL, count: Int) throws -> [RGBImage] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var frames: [RGBImage] = []
        var (a, b) = translatedPair(height: 64, width: 96)
        for k in 0..<count {
            try ImageFile.writePNG(a, to: dir.appendingPathComponent("f\(k).png").path)
            frames.append(a)
            (a, b) = (b, a)
        }
        return frames
    }

    @Test func aFolderGivesOneFlowFilePerPairOfEachSequence() throws {
        let dir = try tempDir("folder")
        defer { try? FileManager.default.removeItem(at: dir) }
        let seqA = try writeFrames(dir.appendingPathComponent("frames/a"), count: 3)
        _ = try writeFrames(dir.appendingPathComponent("frames/b"), count: 2)
        let predictor = try FlowPredictor(arch: .fastflownet, weights: teacher)
        var job = SequenceInference(source: dir.appendingPathComponent("frames").path)
        job.visualizations = dir.appendingPathComponent("vis").path
        nonisolated(unsafe) var lines: [String] = []
        let count = try job.run(predictor: predictor, outputFolder: dir.appendingPathComponent("out").path) { lines.append($0) }
        #expect(count == 3)
        for name in ["a/f0", "a/f1", "b/f0"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/\(name).flo").path), "\(name).flo")
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("vis/\(name).png").path), "\(name).png")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/a/f2.flo").path))
        // a/f1 is the pair (frame 1, frame 2) on its own (the frames went through PNG losslessly).
        let written = try FlowFile.read(dir.appendingPathComponent("out/a/f1.flo").path)
        let direct = try predictor.predict(seqA[1], seqA[2], names: ("f1", "f2"))
        #expect(written.width == 96 && written.height == 64)
        #expect(zip(written.uv, direct.uv).allSatisfy { abs($0 - $1) < 1e-4 })
        #expect(lines.contains { $0.hasPrefix("3/3 pairs") }, "\(lines)")
    }

    /// `--max-frames` on a folder keeps each sequence's first frames: with 3 of them, the pairs
    /// (0, 1) and (1, 2) of a 4-frame sequence, and with step 2 only (0, 2).
    @Test func maxFramesLimitsEachSequenceOfAFolder() throws {
        let dir = try tempDir("maxframes")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try writeFrames(dir.appendingPathComponent("frames/a"), count: 4)
        _ = try writeFrames(dir.appendingPathComponent("frames/b"), count: 2)
        var job = SequenceInference(source: dir.appendingPathComponent("frames").path)
        job.maxFrames = 3
        #expect(try job.pairs(cache: dir.path).map(\.name) == ["a/f0", "a/f1", "b/f0"])
        job.step = 2
        #expect(try job.pairs(cache: dir.path).map(\.name) == ["a/f0"])
    }

    /// `--reliable-only` pseudo-labels: the forward flow where the backward flow agrees, unknown
    /// elsewhere (here the columns that leave the frame); a frames dataset with `flows:` reads them
    /// as its labels.
    @Test func reliableFlowsLabelAFramesDataset() throws {
        let dir = try tempDir("reliable")
        defer { try? FileManager.default.removeItem(at: dir) }
        let frames = try writeFrames(dir.appendingPathComponent("frames/a"), count: 3)
        let predictor = try FlowPredictor(arch: .fastflownet, weights: teacher)
        var job = SequenceInference(source: dir.appendingPathComponent("frames").path)
        job.reliableOnly = true
        nonisolated(unsafe) var lines: [String] = []
        try job.run(predictor: predictor, outputFolder: dir.appendingPathComponent("flows").path) { lines.append($0) }
        #expect(lines.contains { $0.contains("reliable") }, "\(lines)")

        let labels = try FlowFile.read(dir.appendingPathComponent("flows/a/f0.flo").path)
        let dense = try predictor.predict(frames[0], frames[1], names: ("f0", "f1"))
        let n = labels.planeSize, w = labels.width
        let kept = labels.valid.reduce(0, +) / Float(n)
        #expect(kept > 0.7 && kept < 1, "share of reliable pixels \(kept)")
        for i in 0..<n where labels.valid[i] > 0 {
            #expect(abs(labels.uv[i] - dense.uv[i]) < 1e-4 && abs(labels.uv[n + i] - dense.uv[n + i]) < 1e-4)
        }
        // Content moves 3 px right: frame 1's last columns have no match in frame 2.
        let lastColumn = (0..<labels.height).map { labels.valid[$0 * w + w - 1] }.reduce(0, +)
        #expect(lastColumn < Float(labels.height) / 4, "\(lastColumn) of \(labels.height) pixels of the last column kept")

        var spec = DatasetSpec()
        spec.kind = .frames
        spec.root = dir.appendingPathComponent("frames").path
        spec.flows = dir.appendingPathComponent("flows").path
        #expect(spec.hasGroundTruth)
        let data = try DatasetFactory.open(spec)
        #expect(data.pairs.map { ($0.flow! as NSString).lastPathComponent } == ["f0.flo", "f1.flo"])
        let sample = try data.pairs[0].load()
        #expect(sample.flow?.valid == labels.valid)

        try FileManager.default.removeItem(at: dir.appendingPathComponent("flows/a/f1.flo"))
        var missing: String? = nil
        do { _ = try DatasetFactory.open(spec) } catch { missing = "\(error)" }
        #expect(missing?.contains("flows/a/f1.flo") == true && missing?.contains("missing flow") == true, "\(missing ?? "opened")")
    }

    @Test(.enabled(if: FFmpegAvailable.both, "needs ffmpeg and ffprobe (Scripts/setup.sh installs them)"))
    func aVideoGivesOneFlowFilePerPairNamedByFrame() throws {
        let dir = try tempDir("video")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try writeFrames(dir, count: 4)
        let clip = dir.appendingPathComponent("clip.avi").path
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: FFmpeg.find("ffmpeg")!)
        ffmpeg.arguments = ["-nostdin", "-v", "error", "-framerate", "10", "-i", dir.appendingPathComponent("f%d.png").path, "-c:v", "png", clip]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        #expect(ffmpeg.terminationStatus == 0)
        var job = SequenceInference(source: clip)
        job.format = .png
        job.visualizations = dir.appendingPathComponent("vis/flow.mp4").path
        let out = dir.appendingPathComponent("out").path
        let count = try job.run(predictor: try FlowPredictor(arch: .fastflownet, weights: teacher), outputFolder: out) { _ in }
        #expect(count == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["000000.png", "000001.png", "000002.png"])
        let flow = try FlowFile.read(out + "/000001.png")
        #expect(flow.width == 96 && flow.height == 64)
        // The frames beside their colour maps as a video, one video frame per pair.
        let size = try FFmpeg.size(of: job.visualizations!)
        #expect(size.width == 2 * 96 && size.height == 64)
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: FFmpeg.find("ffprobe")!)
        probe.arguments = ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
                           "-of", "csv=p=0", job.visualizations!]
        let pipe = Pipe()
        probe.standardOutput = pipe
        try probe.run()
        let frames = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        #expect(frames.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
    }

    @Test func aSourceThatIsNeitherFramesNorVideoIsNamed() throws {
        let dir = try tempDir("bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let predictor = try FlowPredictor(arch: .fastflownet, weights: teacher)
        let text = dir.appendingPathComponent("notes.txt").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        for (source, message) in [(text, "give two frames, a folder of frames or a video file"),
                                  (dir.appendingPathComponent("missing").path, "no such file or folder"),
                                  (dir.path, "no sequence with at least 2 image files")] {
            do {
                try SequenceInference(source: source).run(predictor: predictor, outputFolder: dir.appendingPathComponent("out").path) { _ in }
                Issue.record("\(source) was accepted")
            } catch {
                #expect("\(error)".contains(source) && "\(error)".contains(message), "\(error)")
            }
        }
    }

    @Test func aBlankFrameIsDetected() {
        #expect(FlowPredictor.isBlank(RGBImage(width: 4, height: 3, pixels: [Float](repeating: 0.5, count: 36))))
        var p = [Float](repeating: 0.5, count: 36)
        p[35] = 0.6
        #expect(!FlowPredictor.isBlank(RGBImage(width: 4, height: 3, pixels: p)))
    }
}

/// Whether ffmpeg and ffprobe are on this machine.
enum FFmpegAvailable {
    static let both = FFmpeg.find("ffmpeg") != nil && FFmpeg.find("ffprobe") != nil
}
