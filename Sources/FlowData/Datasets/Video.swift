// Video files as unlabelled training data. ffmpeg (a subprocess, Debian's `ffmpeg`) decodes each
// file to raw RGB frames on a pipe; every `step`-th frame, optionally resized and capped, is written
// once as a PNG into a cache folder, and consecutive cached frames form the pairs. A cache entry is
// keyed by the file's path, size and modification time and by the decoding options, and is complete
// only once its manifest exists, so an interrupted decode is redone, never half-used.
import Foundation

/// How to turn video files into frames.
public struct VideoOptions: Codable, Sendable, Equatable {
    /// Keep every `step`-th frame (1: all).
    public var step = 1
    /// Resize to [height, width] (empty: keep the video's size).
    public var resize: [Int] = []
    /// At most this many frames per file (0: all).
    public var maxFrames = 0
    /// Where decoded frames are cached (empty: Datasets/.video-cache).
    public var cache = ""

    public init() {}

    /// Problems with the values, as "key: reason" lines (empty when usable).
    public func problems() -> [String] {
        var p: [String] = []
        if step < 1 { p.append("step: must be at least 1, got \(step)") }
        if !(resize.isEmpty || (resize.count == 2 && resize.allSatisfy { $0 >= 8 && $0 <= 8192 })) {
            p.append("resize: must be [] or [height, width] between 8 and 8192, got \(resize)")
        }
        if maxFrames < 0 { p.append("maxFrames: must be ≥ 0, got \(maxFrames)") }
        return p
    }
}

public struct VideoDataset: FlowDataset {
    public let name: String
    public let pairs: [FlowPair]

    /// File extensions taken as video when `root` is a folder.
    public static let videoExtensions: Set<String> = ["mp4", "avi", "mkv", "mov", "webm", "m4v", "mpg", "mpeg", "wmv", "flv", "ogv", "ts"]

    /// `root`: one video file, or a folder whose video files (recursively) are each a sequence.
    /// `log` reports each file decoded (not the cached ones).
    public init(root: String, options: VideoOptions = VideoOptions(), log: (String) -> Void = { _ in }) throws {
        if let p = options.problems().first { throw DataError(path: root, reason: "video options: \(p)") }
        var files: [String] = []
        if directoryExists(root) {
            func visit(_ dir: String) throws {
                for name in try listDirectory(dir) where !name.hasPrefix(".") {
                    let path = joinPath(dir, name)
                    if directoryExists(path) { try visit(path) }
                    else if Self.videoExtensions.contains(fileExtension(name)) { files.append(path) }
                }
            }
            try visit(root)
            if files.isEmpty { throw DataError(path: root, reason: "no video files (\(Self.videoExtensions.sorted().joined(separator: ", ")))") }
        } else if fileExists(root) {
            files = [root]
        } else {
            throw DataError(path: root, reason: "no such file or directory")
        }
        let cacheRoot = options.cache.isEmpty ? "Datasets/.video-cache" : options.cache
        var all: [FlowPair] = []
        for file in files {
            let frames = try Self.frames(of: file, options: options, cacheRoot: cacheRoot, log: log)
            let base = (file as NSString).lastPathComponent
            for k in 0..<max(0, frames.count - 1) {
                all.append(FlowPair(id: "\(base)#\(k * options.step)", image1: frames[k], image2: frames[k + 1]))
            }
        }
        if all.isEmpty { throw DataError(path: root, reason: "no video with at least two frames") }
        pairs = all
        name = "Video(\(root))"
    }

    /// The cached PNG frames of `file`, decoding them first when the cache lacks them.
    static func frames(of file: String, options: VideoOptions, cacheRoot: String, log: (String) -> Void) throws -> [String] {
        var info = stat()
        guard stat(file, &info) == 0 else { throw DataError(path: file, reason: "cannot stat (\(String(cString: strerror(errno))))") }
        let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
        let key = "\(absolute)|\(info.st_size)|\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)|\(options.step)|\(options.resize)|\(options.maxFrames)"
        let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let dir = joinPath(cacheRoot, "\(stem)-\(fnv1aHex(key))")
        let manifest = joinPath(dir, "frames.txt")
        if fileExists(manifest) {
            let names = String(decoding: try readFileBytes(manifest), as: UTF8.self).split(separator: "\n").map(String.init)
            if names.allSatisfy({ fileExists(joinPath(dir, $0)) }) { return names.map { joinPath(dir, $0) } }
        }
        log("decoding \(file) with ffmpeg into \(dir)")
        try? FileManager.default.removeItem(atPath: dir)
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw DataError(path: dir, reason: "cannot create the cache folder (\(error.localizedDescription))") }
        var names: [String] = []
        try FFmpeg.decode(file, options: options) { index, frame in
            let name = String(format: "%06d.png", index * options.step)
            try frame.pixels.withUnsafeBufferPointer {
                try ImageFile.writePNG(rgbBytes: $0.baseAddress!, width: frame.width, height: frame.height, channels: 3,
                                       to: joinPath(dir, name), compression: 1)
            }
            names.append(name)
        }
        if names.count < 2 { throw DataError(path: file, reason: "ffmpeg decoded \(names.count) frame(s); a video needs at least two") }
        let text = names.joined(separator: "\n") + "\n"
        try Array(text.utf8).withUnsafeBytes { try writeFileBytes(manifest + ".tmp", $0) }
        guard rename(manifest + ".tmp", manifest) == 0 else {
            throw DataError(path: manifest, reason: "cannot write (\(String(cString: strerror(errno))))")
        }
        return names.map { joinPath(dir, $0) }
    }
}

/// One decoded frame: (H, W, 3) 8-bit RGB.
public struct VideoFrame {
    public let width: Int, height: Int
    public var pixels: [UInt8]
}

/// ffmpeg and ffprobe as subprocesses.
public enum FFmpeg {
    /// The path of `tool` on PATH, or nil.
    public static func find(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func require(_ tool: String, for file: String) throws -> String {
        guard let p = find(tool) else {
            throw DataError(path: file, reason: "reading video needs \(tool), which is not on PATH (Debian: apt-get install ffmpeg; Scripts/setup.sh installs it)")
        }
        return p
    }

    /// Starts `tool` with `arguments`, stdin closed; returns the process, its stdout, and its
    /// stderr being collected.
    static func launch(_ tool: String, _ arguments: [String]) throws -> (Process, FileHandle, ErrorCollector) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out.fileHandleForReading, ErrorCollector(err.fileHandleForReading))
    }

    /// Runs `tool` with `arguments`; returns (exit status, stdout, stderr), stdout read whole.
    static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, Data, String) {
        let (p, out, errors) = try launch(tool, arguments)
        let data = out.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, data, errors.text())
    }

    /// Encodes the PNG frames `folder/000000.png`, `000001.png`, … as the video `output` (H.264 in
    /// 4:2:0, odd sizes padded by a pixel; the container follows the extension) at `fps`.
    public static func encode(framesIn folder: String, fps: Int, to output: String) throws {
        guard let ffmpeg = find("ffmpeg") else {
            throw DataError(path: output, reason: "writing video needs ffmpeg, which is not on PATH (Debian: apt-get install ffmpeg; Scripts/setup.sh installs it)")
        }
        let (status, _, err) = try run(ffmpeg, ["-nostdin", "-v", "error", "-y", "-framerate", "\(fps)", "-i", folder + "/%06d.png",
                                                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p", output])
        guard status == 0 else { throw DataError(path: output, reason: "ffmpeg could not write the video (\(lastLine(err) ?? "status \(status)"))") }
    }

    /// The width and height of the first video stream of `file`.
    public static func size(of file: String) throws -> (width: Int, height: Int) {
        let probe = try require("ffprobe", for: file)
        let (status, out, err) = try run(probe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                                                 "-of", "csv=p=0", file])
        let text = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = text.split(separator: "\n").first?.split(separator: ",").compactMap { Int($0) } ?? []
        guard status == 0, parts.count == 2, parts[0] > 0, parts[1] > 0 else {
            throw DataError(path: file, reason: "not a readable video (ffprobe: \(lastLine(err) ?? "no video stream"))")
        }
        return (parts[0], parts[1])
    }

    /// Decodes every `options.step`-th frame of `file` (resized, at most `maxFrames`), calling
    /// `body(index, frame)` in order; `index` counts the frames kept.
    public static func decode(_ file: String, options: VideoOptions, _ body: (Int, VideoFrame) throws -> Void) throws {
        let ffmpeg = try require("ffmpeg", for: file)
        var (w, h) = try size(of: file)
        var filters: [String] = []
        if options.step > 1 { filters.append("select='not(mod(n\\,\(options.step)))'") }
        if options.resize.count == 2 {
            h = options.resize[0]; w = options.resize[1]
            filters.append("scale=\(w):\(h):flags=area")
        }
        var args = ["-nostdin", "-v", "error", "-i", file, "-map", "0:v:0"]
        if !filters.isEmpty { args += ["-vf", filters.joined(separator: ","), "-vsync", "0"] }
        if options.maxFrames > 0 { args += ["-frames:v", "\(options.maxFrames)"] }
        args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        let (p, reader, errors) = try launch(ffmpeg, args)
        let frameBytes = w * h * 3
        var buffer = Data()
        var index = 0
        var failure: Error? = nil
        while failure == nil {
            let chunk = reader.readData(ofLength: max(frameBytes - buffer.count, 1))
            if chunk.isEmpty { break }
            buffer.append(chunk)
            if buffer.count == frameBytes {
                do { try body(index, VideoFrame(width: w, height: h, pixels: [UInt8](buffer))) } catch { failure = error }
                buffer.removeAll(keepingCapacity: true)
                index += 1
            }
        }
        if failure != nil { p.terminate() }
        _ = reader.readDataToEndOfFile()
        p.waitUntilExit()
        if let failure { throw failure }
        // Decoding errors (a truncated or corrupt stream) leave ffmpeg's exit status at 0 but are
        // reported at this log level: strict, as for truncated JPEGs.
        let messages = errors.text()
        if p.terminationStatus != 0 || !messages.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw DataError(path: file, reason: "ffmpeg failed after \(index) frame(s) (truncated or corrupt?): \(lastLine(messages) ?? "exit status \(p.terminationStatus)")")
        }
        if !buffer.isEmpty {
            throw DataError(path: file, reason: "ffmpeg ended inside frame \(index + 1) (\(buffer.count) of \(frameBytes) bytes)")
        }
    }

    static func lastLine(_ s: String) -> String? {
        s.split(separator: "\n").last.map { String($0).trimmingCharacters(in: .whitespaces) }
    }
}

/// Drains a pipe on a background thread, so a chatty stderr cannot block the child.
final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            let d = handle.readDataToEndOfFile()
            lock.lock(); data = d; lock.unlock()
            done.signal()
        }
    }

    func text() -> String {
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
