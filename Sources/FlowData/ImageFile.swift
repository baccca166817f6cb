// Image files: PNG (8/16-bit, gray/RGB/RGBA/palette), JPEG (strict), PPM/PGM, decoded into a
// float RGB image. libpng/libjpeg run inside the C target `CSupport`.
import CSupport
import Foundation

/// A float RGB image, planar (3, H, W) like one item of an NCHW batch, values in [0, 1].
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// (3, H, W): the R plane, then G, then B.
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(pixels.count == 3 * width * height, "RGBImage: \(pixels.count) values for 3×\(height)×\(width)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: [Float](repeating: 0, count: 3 * width * height))
    }

    public var planeSize: Int { width * height }
}

/// Samples exactly as stored in the file: `channels` interleaved samples per pixel (1 gray,
/// 2 gray+alpha, 3 RGB, 4 RGBA) with `maxValue` = 255 or 65535 (PNM may declare others).
public struct RawImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public let maxValue: Int
    /// (H, W, channels), row-major.
    public var samples: [UInt16]

    public init(width: Int, height: Int, channels: Int, maxValue: Int, samples: [UInt16]) {
        precondition(samples.count == width * height * channels, "RawImage: \(samples.count) samples for \(height)×\(width)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.maxValue = maxValue
        self.samples = samples
    }

    /// 8 or 16.
    public var bitDepth: Int { maxValue > 255 ? 16 : 8 }

    /// The image as float RGB in [0, 1]: gray is replicated, alpha dropped.
    public func rgb() -> RGBImage {
        let n = width * height
        var out = [Float](repeating: 0, count: 3 * n)
        let scale = Float(maxValue)  // divide (not multiply by 1/scale) so k/255 round-trips exactly
        let c = channels
        samples.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                let r = o.baseAddress!, g = r + n, b = r + 2 * n
                if c >= 3 {
                    for i in 0..<n {
                        r[i] = Float(s[i * c]) / scale
                        g[i] = Float(s[i * c + 1]) / scale
                        b[i] = Float(s[i * c + 2]) / scale
                    }
                } else {
                    for i in 0..<n {
                        let v = Float(s[i * c]) / scale
                        r[i] = v; g[i] = v; b[i] = v
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}

/// The file formats `ImageFile` reads, recognized by their first bytes (not by extension).
public enum ImageFormat: String, Sendable, Codable {
    case png, jpeg, pnm

    /// The format of a file beginning with `head`, or nil.
    static func sniff(_ head: [UInt8]) -> ImageFormat? {
        if head.count >= 8, head[0..<8] == [137, 80, 78, 71, 13, 10, 26, 10] { return .png }
        if head.count >= 2, head[0] == 0xFF, head[1] == 0xD8 { return .jpeg }
        if head.count >= 2, head[0] == UInt8(ascii: "P"), (UInt8(ascii: "2")...UInt8(ascii: "6")).contains(head[1]),
           head[1] != UInt8(ascii: "4") { return .pnm }
        return nil
    }
}

/// Reading and writing image files. Every failure throws a `DataError` naming the file.
public enum ImageFile {
    /// Decodes PNG, JPEG (strict: a truncated or corrupt file is an error) or PPM/PGM.
    public static func read(_ path: String) throws -> RGBImage { try readRaw(path).rgb() }

    /// Decodes the samples exactly as stored (16-bit PNG values stay exact).
    public static func readRaw(_ path: String) throws -> RawImage { try decodeRaw(readFileBytes(path), path: path) }

    /// Decodes the bytes of an image file (format from its first bytes); `path` labels errors.
    public static func decodeRaw(_ bytes: [UInt8], path: String) throws -> RawImage {
        if bytes.isEmpty { throw DataError(path: path, reason: "empty file") }
        switch ImageFormat.sniff(Array(bytes.prefix(8))) {
        case .png?: return try decodeWithShim(bytes, path: path, kind: "PNG") { mdflow_png_decode($0, $1, &$2, $3, $4) }
        case .jpeg?: return try decodeWithShim(bytes, path: path, kind: "JPEG") { mdflow_jpeg_decode($0, $1, 1, &$2, $3, $4) }
        case .pnm?: return try PNM.decode(bytes, path: path)
        case nil: throw DataError(path: path, reason: "not a PNG, JPEG or PPM/PGM file (unrecognized signature)")
        }
    }

    /// A mask from the first channel of an image file: 1 where the sample is above half its
    /// range (Sintel occlusion/invalid masks, the synthetic occlusion PNG), else 0. (H, W).
    public static func readMask(_ path: String) throws -> (width: Int, height: Int, mask: [Float]) {
        let raw = try readRaw(path)
        let half = raw.maxValue / 2
        var mask = [Float](repeating: 0, count: raw.width * raw.height)
        for i in 0..<mask.count where Int(raw.samples[i * raw.channels]) > half { mask[i] = 1 }
        return (raw.width, raw.height, mask)
    }

    /// Which format `path` holds, from its first bytes.
    public static func format(of path: String) throws -> ImageFormat {
        guard let fp = fopen(path, "rb") else {
            throw DataError(path: path, reason: "cannot open (\(String(cString: strerror(errno))))")
        }
        var head = [UInt8](repeating: 0, count: 8)
        let n = head.withUnsafeMutableBytes { fread($0.baseAddress, 1, 8, fp) }
        fclose(fp)
        if n == 0 { throw DataError(path: path, reason: "empty file") }
        guard let format = ImageFormat.sniff(Array(head[0..<n])) else {
            throw DataError(path: path, reason: "not a PNG, JPEG or PPM/PGM file (unrecognized signature)")
        }
        return format
    }

    /// Writes a PNG of 8 or 16 bits per sample (values clamped to [0, 1] and rounded).
    /// `compression` is the zlib level (0-9).
    public static func writePNG(_ image: RGBImage, to path: String, bitDepth: Int = 8, compression: Int = 6) throws {
        try writePNG(quantize(image, maxValue: bitDepth == 16 ? 65535 : 255), to: path, compression: compression)
    }

    /// Writes raw samples as PNG (bit depth from `maxValue`: 255 → 8, 65535 → 16).
    public static func writePNG(_ raw: RawImage, to path: String, compression: Int = 6) throws {
        guard raw.maxValue == 255 || raw.maxValue == 65535 else {
            throw DataError(path: path, reason: "PNG needs maxValue 255 or 65535, got \(raw.maxValue)")
        }
        var message = [CChar](repeating: 0, count: 256)
        let code: Int32
        if raw.maxValue == 255 {
            let bytes = raw.samples.map { UInt8(truncatingIfNeeded: $0) }
            code = bytes.withUnsafeBytes { b in
                mdflow_png_write(path, b.baseAddress, Int32(raw.width), Int32(raw.height), Int32(raw.channels), 8,
                                 Int32(compression), &message, message.count)
            }
        } else {
            code = raw.samples.withUnsafeBytes { b in
                mdflow_png_write(path, b.baseAddress, Int32(raw.width), Int32(raw.height), Int32(raw.channels), 16,
                                 Int32(compression), &message, message.count)
            }
        }
        if code != 0 { throw DataError(path: path, reason: "cannot write PNG (\(cMessage(message)))") }
    }

    /// Writes 8-bit 3-channel bytes (H, W, 3) straight to PNG, skipping the float conversion.
    static func writePNG(rgbBytes: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int, to path: String,
                         compression: Int) throws {
        var message = [CChar](repeating: 0, count: 256)
        let code = mdflow_png_write(path, rgbBytes, Int32(width), Int32(height), Int32(channels), 8,
                                    Int32(compression), &message, message.count)
        if code != 0 { throw DataError(path: path, reason: "cannot write PNG (\(cMessage(message)))") }
    }

    /// Writes a baseline JPEG (8-bit RGB).
    public static func writeJPEG(_ image: RGBImage, to path: String, quality: Int = 95) throws {
        let raw = quantize(image, maxValue: 255)
        let bytes = raw.samples.map { UInt8(truncatingIfNeeded: $0) }
        var message = [CChar](repeating: 0, count: 256)
        let code = bytes.withUnsafeBufferPointer {
            mdflow_jpeg_write(path, $0.baseAddress, Int32(raw.width), Int32(raw.height), 3, Int32(quality), &message, message.count)
        }
        if code != 0 { throw DataError(path: path, reason: "cannot write JPEG (\(cMessage(message)))") }
    }

    /// Writes a binary PPM (P6), 8-bit (maxValue 255) or 16-bit (65535).
    public static func writePPM(_ image: RGBImage, to path: String, maxValue: Int = 255) throws {
        try PNM.write(quantize(image, maxValue: maxValue), to: path)
    }

    /// Writes raw samples as binary PGM (1 channel) or PPM (3 channels).
    public static func writePNM(_ raw: RawImage, to path: String) throws { try PNM.write(raw, to: path) }

    /// v clamped to [0, 1], NaN to 0 (Swift's min/max pass NaN through, and a NaN would trap
    /// in the integer conversion).
    @inline(__always) static func unitClamp(_ v: Float) -> Float { v > 0 ? (v < 1 ? v : 1) : 0 }

    /// Interleaved integer samples from a float image: round(clamp(v, 0, 1) · maxValue), NaN → 0.
    public static func quantize(_ image: RGBImage, maxValue: Int) -> RawImage {
        let n = image.planeSize
        var samples = [UInt16](repeating: 0, count: 3 * n)
        let m = Float(maxValue)
        image.pixels.withUnsafeBufferPointer { p in
            samples.withUnsafeMutableBufferPointer { s in
                for c in 0..<3 {
                    for i in 0..<n { s[i * 3 + c] = UInt16((unitClamp(p[c * n + i]) * m).rounded()) }
                }
            }
        }
        return RawImage(width: image.width, height: image.height, channels: 3, maxValue: maxValue, samples: samples)
    }

    // MARK: private

    private static func decodeWithShim(
        _ bytes: [UInt8], path: String, kind: String,
        _ decode: (UnsafeRawPointer?, Int, inout mdflow_image, UnsafeMutablePointer<CChar>, Int) -> Int32
    ) throws -> RawImage {
        var image = mdflow_image()
        var message = [CChar](repeating: 0, count: 512)
        let code = bytes.withUnsafeBytes { b in
            message.withUnsafeMutableBufferPointer { decode(b.baseAddress, b.count, &image, $0.baseAddress!, $0.count) }
        }
        defer { mdflow_image_free(&image) }
        guard code == 0 else {
            let text = cMessage(message)
            let reason: String
            switch Int(code) {
            case Int(MDFLOW_IMAGE_DECODE_FAILED):
                let lower = text.lowercased()
                let truncated = lower.contains("read error") || lower.contains("premature end")
                    || lower.contains("not enough") || lower.contains("unexpected end")
                reason = "\(truncated ? "truncated" : "corrupt") \(kind) (\(text))"
            case Int(MDFLOW_IMAGE_NOT_THIS_FORMAT), Int(MDFLOW_IMAGE_OPEN_FAILED): reason = text
            default: reason = "cannot decode \(kind) (\(text))"
            }
            throw DataError(path: path, reason: reason)
        }
        let w = Int(image.width), h = Int(image.height), c = Int(image.channels)
        let count = w * h * c
        var samples = [UInt16](repeating: 0, count: count)
        if image.bit_depth == 16 {
            let src = image.pixels.assumingMemoryBound(to: UInt16.self)
            samples.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: src, count: count) }
        } else {
            let src = image.pixels.assumingMemoryBound(to: UInt8.self)
            samples.withUnsafeMutableBufferPointer { s in for i in 0..<count { s[i] = UInt16(src[i]) } }
        }
        return RawImage(width: w, height: h, channels: c, maxValue: image.bit_depth == 16 ? 65535 : 255, samples: samples)
    }
}

func cMessage(_ message: [CChar]) -> String {
    let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Netpbm: P2/P5 (gray) and P3/P6 (RGB), maxval up to 65535 (16-bit samples big-endian).
enum PNM {
    static func decode(_ bytes: [UInt8], path: String) throws -> RawImage {
        var i = 2
        func fail(_ why: String) -> DataError { DataError(path: path, reason: why) }
        // Header tokens are separated by whitespace; '#' starts a comment to the end of the line.
        func token() throws -> Int {
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "#") {
                    while i < bytes.count, bytes[i] != 10, bytes[i] != 13 { i += 1 }
                } else if bytes[i] == 32 || (9...13).contains(bytes[i]) {
                    i += 1
                } else { break }
            }
            var value = 0, digits = 0
            while i < bytes.count, (48...57).contains(bytes[i]) {
                value = value * 10 + Int(bytes[i] - 48)
                digits += 1
                i += 1
                if value > 1 << 30 { throw fail("corrupt PPM/PGM header (number too large)") }
            }
            if digits == 0 { throw fail(i >= bytes.count ? "truncated PPM/PGM header" : "corrupt PPM/PGM header") }
            return value
        }
        let kind = bytes[1]
        let channels = (kind == UInt8(ascii: "3") || kind == UInt8(ascii: "6")) ? 3 : 1
        let width = try token(), height = try token(), maxValue = try token()
        guard width > 0, height > 0, width * height <= 1 << 28 else { throw fail("corrupt PPM/PGM header (size \(width)×\(height))") }
        guard (1...65535).contains(maxValue) else { throw fail("corrupt PPM/PGM header (maxval \(maxValue))") }
        let count = width * height * channels
        let binary = kind == UInt8(ascii: "5") || kind == UInt8(ascii: "6")
        if binary { i += 1 }  // exactly one whitespace byte after maxval
        // Checked before allocating, so that a header's size cannot claim more than the file holds.
        let available = max(bytes.count - i, 0)
        let size = maxValue > 255 ? 2 : 1
        if binary && available < count * size {
            throw fail("truncated PPM/PGM (expected \(count * size) bytes of pixels, found \(available))")
        }
        if !binary && available < 2 * count - 1 {  // a digit per sample and a separator between
            throw fail("truncated PPM/PGM (\(count) samples cannot fit in the \(available) bytes after the header)")
        }
        var samples = [UInt16](repeating: 0, count: count)
        if binary {
            if size == 1 {
                for k in 0..<count { samples[k] = UInt16(bytes[i + k]) }
            } else {
                for k in 0..<count { samples[k] = UInt16(bytes[i + 2 * k]) << 8 | UInt16(bytes[i + 2 * k + 1]) }
            }
            // Checked like the text samples: the rescaling below must not leave the 8/16-bit range.
            if let v = samples.first(where: { Int($0) > maxValue }) {
                throw fail("corrupt PPM/PGM (sample \(v) above maxval \(maxValue))")
            }
        } else {
            for k in 0..<count {
                let v = try token()
                if v > maxValue { throw fail("corrupt PPM/PGM (sample \(v) above maxval \(maxValue))") }
                samples[k] = UInt16(v)
            }
        }
        if maxValue != 255 && maxValue != 65535 {
            // Rescale to a standard range so that `maxValue` means 8 or 16 bits downstream.
            let target = maxValue > 255 ? 65535 : 255
            for k in 0..<count { samples[k] = UInt16((Double(samples[k]) * Double(target) / Double(maxValue)).rounded()) }
            return RawImage(width: width, height: height, channels: channels, maxValue: target, samples: samples)
        }
        return RawImage(width: width, height: height, channels: channels, maxValue: maxValue, samples: samples)
    }

    static func write(_ raw: RawImage, to path: String) throws {
        guard raw.channels == 1 || raw.channels == 3 else {
            throw DataError(path: path, reason: "PPM/PGM needs 1 or 3 channels, got \(raw.channels)")
        }
        var bytes = Array("P\(raw.channels == 3 ? 6 : 5)\n\(raw.width) \(raw.height)\n\(raw.maxValue)\n".utf8)
        bytes.reserveCapacity(bytes.count + raw.samples.count * 2)
        if raw.maxValue > 255 {
            for s in raw.samples { bytes.append(UInt8(s >> 8)); bytes.append(UInt8(s & 0xFF)) }
        } else {
            for s in raw.samples { bytes.append(UInt8(truncatingIfNeeded: s)) }
        }
        try bytes.withUnsafeBytes { try writeFileBytes(path, $0) }
    }
}
