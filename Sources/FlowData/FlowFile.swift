// Flow files: Middlebury .flo and the KITTI 16-bit flow PNG.
import Foundation

/// A dense flow field with a validity mask.
public struct FlowField: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// (2, H, W): the u (x) plane, then the v (y) plane, in pixels.
    public var uv: [Float]
    /// (H, W): 1 where the flow is known, 0 where it is not (its uv is 0 there).
    public var valid: [Float]

    public init(width: Int, height: Int, uv: [Float], valid: [Float]) {
        precondition(uv.count == 2 * width * height && valid.count == width * height,
                     "FlowField: \(uv.count) flow values and \(valid.count) valid values for \(height)×\(width)")
        self.width = width
        self.height = height
        self.uv = uv
        self.valid = valid
    }

    /// Zero flow, all valid.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, uv: [Float](repeating: 0, count: 2 * width * height),
                  valid: [Float](repeating: 1, count: width * height))
    }

    public var planeSize: Int { width * height }
}

/// Reading and writing flow files; every failure throws a `DataError` naming the file.
public enum FlowFile {
    /// "PIEH" as a little-endian float.
    public static let floMagic: Float = 202021.25
    /// Middlebury's convention: a component with magnitude above this is unknown.
    public static let unknownThreshold: Float = 1e9

    /// Reads `.flo` (by its magic) or a KITTI flow PNG.
    public static func read(_ path: String) throws -> FlowField { try decode(readFileBytes(path), path: path) }

    /// Decodes the bytes of a `.flo` or KITTI flow PNG file; `path` labels errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> FlowField {
        if bytes.count >= 4, bytes[0..<4] == [0x50, 0x49, 0x45, 0x48] { return try decodeFlo(bytes, path: path) }
        if bytes.count >= 8, ImageFormat.sniff(Array(bytes[0..<8])) == .png {
            return try decodeKITTI(ImageFile.decodeRaw(bytes, path: path), path: path)
        }
        if bytes.isEmpty { throw DataError(path: path, reason: "empty file") }
        throw DataError(path: path, reason: "not a .flo or KITTI flow PNG file (unrecognized signature)")
    }

    /// Middlebury `.flo`: float32 magic, int32 width, int32 height, then H·W (u, v) float32 pairs,
    /// little-endian. Components with magnitude above 1e9 (or not finite) mark the pixel invalid.
    public static func readFlo(_ path: String) throws -> FlowField {
        try decodeFlo(readFileBytes(path), path: path)
    }

    static func decodeFlo(_ bytes: [UInt8], path: String) throws -> FlowField {
        if bytes.isEmpty { throw DataError(path: path, reason: "empty file") }
        if bytes.count < 12 { throw DataError(path: path, reason: "truncated .flo (header needs 12 bytes, found \(bytes.count))") }
        return try bytes.withUnsafeBytes { raw -> FlowField in
            let magic = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
            guard magic == floMagic else {
                throw DataError(path: path, reason: "not a .flo file (magic \(magic), expected 202021.25)")
            }
            let w = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: Int32.self)))
            let h = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: Int32.self)))
            guard w > 0, h > 0, w <= 1 << 16, h <= 1 << 16 else {
                throw DataError(path: path, reason: "corrupt .flo header (size \(w)×\(h))")
            }
            let expected = 12 + 8 * w * h
            if bytes.count < expected {
                throw DataError(path: path, reason: "truncated .flo (expected \(expected) bytes for \(w)×\(h), found \(bytes.count))")
            }
            if bytes.count > expected {
                throw DataError(path: path, reason: "corrupt .flo (\(bytes.count - expected) bytes after the \(w)×\(h) flow)")
            }
            let n = w * h
            var uv = [Float](repeating: 0, count: 2 * n)
            var valid = [Float](repeating: 1, count: n)
            var interleaved = [Float](repeating: 0, count: 2 * n)
            interleaved.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[12..<expected])) }
            interleaved.withUnsafeBufferPointer { src in
                uv.withUnsafeMutableBufferPointer { dst in
                    valid.withUnsafeMutableBufferPointer { ok in
                        for i in 0..<n {
                            // Little-endian on disk; a no-op on x86 and ARM.
                            let u = Float(bitPattern: UInt32(littleEndian: src[2 * i].bitPattern))
                            let v = Float(bitPattern: UInt32(littleEndian: src[2 * i + 1].bitPattern))
                            if abs(u) <= unknownThreshold && abs(v) <= unknownThreshold {  // false for NaN too
                                dst[i] = u
                                dst[n + i] = v
                            } else {
                                ok[i] = 0
                            }
                        }
                    }
                }
            }
            return FlowField(width: w, height: h, uv: uv, valid: valid)
        }
    }

    /// Writes `.flo`; invalid pixels are written as 1e10 (unknown) in both components.
    public static func writeFlo(_ flow: FlowField, to path: String) throws {
        let n = flow.planeSize
        var words = [UInt32](repeating: 0, count: 3 + 2 * n)
        words[0] = floMagic.bitPattern.littleEndian
        words[1] = UInt32(flow.width).littleEndian
        words[2] = UInt32(flow.height).littleEndian
        let unknown = Float(1e10).bitPattern.littleEndian
        flow.uv.withUnsafeBufferPointer { uv in
            flow.valid.withUnsafeBufferPointer { valid in
                for i in 0..<n {
                    if valid[i] > 0 {
                        words[3 + 2 * i] = uv[i].bitPattern.littleEndian
                        words[4 + 2 * i] = uv[n + i].bitPattern.littleEndian
                    } else {
                        words[3 + 2 * i] = unknown
                        words[4 + 2 * i] = unknown
                    }
                }
            }
        }
        try words.withUnsafeBytes { try writeFileBytes(path, $0) }
    }

    /// KITTI flow PNG: 16-bit RGB, u = (R − 2¹⁵)/64, v = (G − 2¹⁵)/64, valid where B ≠ 0.
    public static func readKITTI(_ path: String) throws -> FlowField { try decodeKITTI(ImageFile.readRaw(path), path: path) }

    static func decodeKITTI(_ raw: RawImage, path: String) throws -> FlowField {
        guard raw.bitDepth == 16, raw.channels >= 3 else {
            throw DataError(path: path, reason: "not a KITTI flow PNG (needs 16-bit RGB, found \(raw.bitDepth)-bit with \(raw.channels) channels)")
        }
        let n = raw.width * raw.height, c = raw.channels
        var uv = [Float](repeating: 0, count: 2 * n)
        var valid = [Float](repeating: 0, count: n)
        raw.samples.withUnsafeBufferPointer { s in
            for i in 0..<n where s[i * c + 2] != 0 {
                uv[i] = (Float(s[i * c]) - 32768) / 64
                uv[n + i] = (Float(s[i * c + 1]) - 32768) / 64
                valid[i] = 1
            }
        }
        return FlowField(width: raw.width, height: raw.height, uv: uv, valid: valid)
    }

    /// Writes a KITTI flow PNG. Values are rounded to 1/64 px and clamped to the representable
    /// range [−512, 511.984375]; invalid pixels are written as (2¹⁵, 2¹⁵, 0).
    public static func writeKITTI(_ flow: FlowField, to path: String) throws {
        let n = flow.planeSize
        var samples = [UInt16](repeating: 0, count: 3 * n)
        for i in 0..<n {
            if flow.valid[i] > 0 {
                samples[3 * i] = encodeKITTI(flow.uv[i])
                samples[3 * i + 1] = encodeKITTI(flow.uv[n + i])
                samples[3 * i + 2] = 1
            } else {
                samples[3 * i] = 32768
                samples[3 * i + 1] = 32768
            }
        }
        let raw = RawImage(width: flow.width, height: flow.height, channels: 3, maxValue: 65535, samples: samples)
        try ImageFile.writePNG(raw, to: path)
    }

    @inline(__always) static func encodeKITTI(_ x: Float) -> UInt16 {
        let q = (Double(x) * 64 + 32768).rounded()
        return UInt16(min(max(q.isFinite ? q : 32768, 0), 65535))
    }
}
