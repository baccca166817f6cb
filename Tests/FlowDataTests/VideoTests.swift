import Foundation
import Testing
@testable import FlowData
import Tensor

private let hasFFmpeg = FFmpeg.find("ffmpeg") != nil && FFmpeg.find("ffprobe") != nil

/// Frame k of the test clip: (24, 32, 3) bytes with a ramp that moves with k.
private func clipFrame(_ k: Int) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: 24 * 32 * 3)
    for y in 0..<24 {
        for x in 0..<32 {
            let i = 3 * (y * 32 + x)
            p[i] = UInt8((x * 7 + k * 40) % 256); p[i + 1] = UInt8((y * 9) % 256); p[i + 2] = UInt8(k * 30)
        }
    }
    return p
}

/// Six frames encoded losslessly (PNG in AVI) by ffmpeg.
private func makeClip(_ dir: TempDir) throws -> String {
    for k in 0..<6 {
        try clipFrame(k).withUnsafeBufferPointer {
            try ImageFile.writePNG(rgbBytes: $0.baseAddress!, width: 32, height: 24, channels: 3, to: dir.file(String(format: "f%03d.png", k)), compression: 1)
        }
    }
    let clip = dir.file("clip.avi")
    let (status, _, err) = try FFmpeg.run(FFmpeg.find("ffmpeg")!, ["-nostdin", "-v", "error", "-framerate", "10", "-i", dir.file("f%03d.png"),
                                                                  "-c:v", "png", clip])
    #expect(status == 0, "ffmpeg: \(err)")
    return clip
}

@Test(.enabled(if: hasFFmpeg, "needs ffmpeg and ffprobe (Scripts/setup.sh installs them)"))
func videoFramesDecodeExactlyAndPairConsecutively() throws {
    let dir = TempDir()
    let clip = try makeClip(dir)
    var options = VideoOptions()
    options.cache = dir.file("cache")
    nonisolated(unsafe) var decoded: [String] = []
    let d = try VideoDataset(root: clip, options: options, log: { decoded.append($0) })
    #expect(d.pairs.count == 5 && decoded.count == 1)
    for k in 0..<6 {
        let path = k < 5 ? d.pairs[k].image1 : d.pairs[4].image2
        let raw = try ImageFile.readRaw(path)
        #expect(raw.width == 32 && raw.height == 24)
        #expect(raw.samples.map { UInt8($0) } == clipFrame(k), "frame \(k)")
    }
    // The second open reads the cache.
    _ = try VideoDataset(root: clip, options: options, log: { decoded.append($0) })
    #expect(decoded.count == 1)
    // Frame step, frame cap and resize.
    options.step = 2
    let stepped = try VideoDataset(root: dir.path, options: options)     // a folder: every video in it
    #expect(stepped.pairs.count == 2)
    #expect(try ImageFile.readRaw(stepped.pairs[1].image1).samples.map { UInt8($0) } == clipFrame(2))
    options.step = 1
    options.maxFrames = 4
    options.resize = [12, 16]
    let small = try VideoDataset(root: clip, options: options)
    #expect(small.pairs.count == 3)
    let raw = try ImageFile.readRaw(small.pairs[0].image1)
    #expect(raw.width == 16 && raw.height == 12)
}

@Test(.enabled(if: hasFFmpeg, "needs ffmpeg and ffprobe (Scripts/setup.sh installs them)"))
func truncatedAndNonVideoFilesAreErrorsNamingTheFile() throws {
    let dir = TempDir()
    let clip = try makeClip(dir)
    let bytes = fileBytes(clip)
    var options = VideoOptions()
    options.cache = dir.file("cache")
    for (name, cut) in [("head.avi", 3000), ("middle.avi", bytes.count * 6 / 10)] {
        let path = dir.file(name)
        try Array(bytes.prefix(cut)).withUnsafeBytes { try writeFileBytes(path, $0) }
        #expect { try VideoDataset(root: path, options: options) } throws: { ($0 as? DataError)?.path == path }
    }
    let text = dir.file("notes.mp4")
    try Array("not a video\n".utf8).withUnsafeBytes { try writeFileBytes(text, $0) }
    #expect { try VideoDataset(root: text, options: options) } throws: { e in
        guard let e = e as? DataError else { return false }
        return e.path == text && e.reason.contains("not a readable video")
    }
    #expect { try VideoDataset(root: dir.file("missing.mp4"), options: options) } throws: { ($0 as? DataError)?.path == dir.file("missing.mp4") }
    var bad = VideoOptions()
    bad.step = 0
    #expect(bad.problems().first?.hasPrefix("step") == true)
}
