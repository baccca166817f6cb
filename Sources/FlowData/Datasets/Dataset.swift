// What every dataset adapter gives: pairs of file paths, a loader for one pair, and a scan.
import Foundation
import Tensor

/// One image pair and the files holding its ground truth, where the dataset has them.
public struct FlowPair: Sendable, Codable, Hashable {
    /// A short name for messages ("alley_1/frame_0001", "000042_10").
    public var id: String
    public var image1: String
    public var image2: String
    /// Forward flow, frame 1 → frame 2 (`.flo` or KITTI PNG; KITTI: flow_occ).
    public var flow: String?
    /// KITTI only: the non-occluded flow (flow_noc).
    public var flowNoc: String?
    /// Backward flow, frame 2 → frame 1 (synthetic dataset).
    public var backwardFlow: String?
    /// Occlusion mask of frame 1 (non-zero = occluded): Sintel occlusions, the synthetic _occ.png.
    public var occlusion: String?
    /// Sintel: pixels whose flow is not to be evaluated (non-zero = invalid).
    public var invalid: String?

    public init(id: String, image1: String, image2: String, flow: String? = nil, flowNoc: String? = nil,
                backwardFlow: String? = nil, occlusion: String? = nil, invalid: String? = nil) {
        self.id = id
        self.image1 = image1
        self.image2 = image2
        self.flow = flow
        self.flowNoc = flowNoc
        self.backwardFlow = backwardFlow
        self.occlusion = occlusion
        self.invalid = invalid
    }

    /// Every file this pair refers to.
    public var files: [String] { [image1, image2] + [flow, flowNoc, backwardFlow, occlusion, invalid].compactMap { $0 } }
}

/// Which part of a dataset's labelled pairs.
public enum DatasetSplit: String, Sendable, Codable, CaseIterable {
    case all, train, validation
}

/// A dataset adapter: it has enumerated its pairs when it was made.
public protocol FlowDataset: Sendable {
    /// A name for messages and logs ("FlyingChairs(train)").
    var name: String { get }
    var pairs: [FlowPair] { get }
}

/// A decoded pair with its ground truth.
public struct FlowSample: Sendable {
    public var id: String
    public var image1: RGBImage
    public var image2: RGBImage
    /// Forward flow with its valid mask (Sintel: invalid pixels removed; KITTI: flow_occ).
    public var flow: FlowField?
    /// Backward flow, frame 2 → frame 1.
    public var backwardFlow: FlowField?
    /// (H, W): 1 where a frame-1 pixel is occluded in frame 2. KITTI: valid in flow_occ but not in
    /// flow_noc.
    public var occlusion: [Float]?

    public init(id: String, image1: RGBImage, image2: RGBImage, flow: FlowField? = nil,
                backwardFlow: FlowField? = nil, occlusion: [Float]? = nil) {
        self.id = id
        self.image1 = image1
        self.image2 = image2
        self.flow = flow
        self.backwardFlow = backwardFlow
        self.occlusion = occlusion
    }

    public var width: Int { image1.width }
    public var height: Int { image1.height }
}

extension FlowPair {
    /// Decodes the images and every ground-truth file. Sizes must agree; a file that differs is
    /// named in the error.
    public func load() throws -> FlowSample {
        let i1 = try ImageFile.read(image1)
        let i2 = try ImageFile.read(image2)
        let w = i1.width, h = i1.height
        func checkSize(_ path: String, _ fw: Int, _ fh: Int) throws {
            if fw != w || fh != h {
                throw DataError(path: path, reason: "size \(fw)×\(fh) differs from \(image1) (\(w)×\(h))")
            }
        }
        try checkSize(image2, i2.width, i2.height)
        var sample = FlowSample(id: id, image1: i1, image2: i2)
        if let flow {
            var f = try FlowFile.read(flow)
            try checkSize(flow, f.width, f.height)
            if let invalid {
                let m = try ImageFile.readMask(invalid)
                try checkSize(invalid, m.width, m.height)
                for i in 0..<m.mask.count where m.mask[i] > 0 {
                    f.valid[i] = 0
                    f.uv[i] = 0
                    f.uv[f.planeSize + i] = 0
                }
            }
            if let flowNoc {
                let noc = try FlowFile.read(flowNoc)
                try checkSize(flowNoc, noc.width, noc.height)
                sample.occlusion = (0..<noc.planeSize).map { f.valid[$0] > 0 && noc.valid[$0] == 0 ? 1 : 0 }
            }
            sample.flow = f
        }
        if let backwardFlow {
            let b = try FlowFile.read(backwardFlow)
            try checkSize(backwardFlow, b.width, b.height)
            sample.backwardFlow = b
        }
        if let occlusion {
            let m = try ImageFile.readMask(occlusion)
            try checkSize(occlusion, m.width, m.height)
            sample.occlusion = m.mask
        }
        return sample
    }
}

// MARK: scan

/// One problem the scan found.
public struct ScanIssue: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// What `scanDataset` found.
public struct ScanReport: Sendable, CustomStringConvertible {
    public let dataset: String
    public let pairs: Int
    public let files: Int
    /// Every missing or unreadable file, in pair order.
    public let issues: [ScanIssue]

    public var isClean: Bool { issues.isEmpty }

    public var description: String {
        var lines = ["\(dataset): \(pairs) pairs, \(files) files, \(issues.isEmpty ? "all readable" : "\(issues.count) problem(s)")"]
        lines += issues.map { "  \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// Checks every file of `dataset` before training. `decode: false` checks that each file exists,
/// is non-empty and has the right signature (and, for `.flo`, the size its header implies);
/// `decode: true` decodes every file completely (slower; finds truncated images too).
public func scanDataset(_ dataset: FlowDataset, decode: Bool = false, threads: Int = Runtime.threads) -> ScanReport {
    let files = dataset.pairs.flatMap(\.files)
    var seen = Set<String>()
    let unique = files.filter { seen.insert($0).inserted }
    final class Results: @unchecked Sendable { var issues: [ScanIssue?] = [] }
    let results = Results()
    results.issues = [ScanIssue?](repeating: nil, count: unique.count)
    let workers = max(1, min(threads, unique.count))
    results.issues.withUnsafeMutableBufferPointer { buffer in
        let out = SendablePointer(buffer.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var k = worker
            while k < unique.count {
                if let reason = checkFile(unique[k], decode: decode) { out.base[k] = ScanIssue(path: unique[k], reason: reason) }
                k += workers
            }
        }
    }
    if dataset.pairs.isEmpty {
        return ScanReport(dataset: dataset.name, pairs: 0, files: 0, issues: [ScanIssue(path: dataset.name, reason: "no pairs found")])
    }
    return ScanReport(dataset: dataset.name, pairs: dataset.pairs.count, files: unique.count, issues: results.issues.compactMap { $0 })
}

/// Nil when `path` looks readable, else why not.
func checkFile(_ path: String, decode: Bool) -> String? {
    let isFlow = path.hasSuffix(".flo")
    do {
        if decode {
            if isFlow { _ = try FlowFile.readFlo(path) } else { _ = try ImageFile.readRaw(path) }
            return nil
        }
        if isFlow {
            guard let fp = fopen(path, "rb") else { return "cannot open (\(String(cString: strerror(errno))))" }
            defer { fclose(fp) }
            var head = [UInt8](repeating: 0, count: 12)
            let n = head.withUnsafeMutableBytes { fread($0.baseAddress, 1, 12, fp) }
            if n == 0 { return "empty file" }
            if n < 12 { return "truncated .flo (header needs 12 bytes, found \(n))" }
            if head[0..<4] != [0x50, 0x49, 0x45, 0x48] { return "not a .flo file (bad magic)" }
            let w = Int(head[4]) | Int(head[5]) << 8 | Int(head[6]) << 16 | Int(head[7]) << 24
            let h = Int(head[8]) | Int(head[9]) << 8 | Int(head[10]) << 16 | Int(head[11]) << 24
            fseek(fp, 0, SEEK_END)
            let size = ftell(fp)
            if size != 12 + 8 * w * h { return "truncated .flo (expected \(12 + 8 * w * h) bytes for \(w)×\(h), found \(size))" }
            return nil
        }
        _ = try ImageFile.format(of: path)
        return nil
    } catch let error as DataError {
        return error.reason
    } catch {
        return "\(error)"
    }
}

// MARK: helpers for adapters

/// Names in `directory` (not recursive), sorted naturally ("frame2" before "frame10").
func listDirectory(_ directory: String) throws -> [String] {
    do {
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted(by: naturalLess)
    } catch {
        throw DataError(path: directory, reason: directoryExists(directory) ? "cannot list directory" : "missing directory")
    }
}

/// Orders digit runs by value, the rest by character.
func naturalLess(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var i = 0, j = 0
    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    while i < x.count && j < y.count {
        if isDigit(x[i]) && isDigit(y[j]) {
            var i2 = i, j2 = j
            while i2 < x.count && isDigit(x[i2]) { i2 += 1 }
            while j2 < y.count && isDigit(y[j2]) { j2 += 1 }
            let da = x[i..<i2].drop { $0 == 48 }, db = y[j..<j2].drop { $0 == 48 }
            if da.count != db.count { return da.count < db.count }
            if !da.elementsEqual(db) { return da.lexicographicallyPrecedes(db) }
            if i2 - i != j2 - j { return i2 - i < j2 - j }
            i = i2; j = j2
        } else {
            if x[i] != y[j] { return x[i] < y[j] }
            i += 1; j += 1
        }
    }
    return x.count - i < y.count - j
}

/// File extensions the image reader accepts.
let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "ppm", "pgm", "pnm"]

func fileExtension(_ name: String) -> String {
    guard let dot = name.lastIndex(of: ".") else { return "" }
    return name[name.index(after: dot)...].lowercased()
}
