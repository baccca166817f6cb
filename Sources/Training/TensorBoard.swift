// Scalars for TensorBoard: an `events.out.tfevents.*` file of TFRecord-framed `Event` protocol
// buffers, written without TensorFlow. Framing: little-endian u64 length, masked CRC-32C of
// those 8 bytes, the payload, masked CRC-32C of the payload. An Event is {1: wall_time (double),
// 2: step (int64), 3: file_version (string) | 5: summary}; a Summary is repeated {1: value}, and
// a Summary.Value is {1: tag (string), 2: simple_value (float) | 4: image}, and an Image is
// {1: height, 2: width, 3: colorspace (3: RGB), 4: encoded_image_string (PNG)}.
import Foundation
import FlowData

/// Appends scalar summaries to one event file.
public final class TensorBoardWriter {
    public let path: String
    let handle: FileHandle

    /// Creates `dir` if needed and a new event file in it (one per process, so that a resumed run
    /// adds a file beside the old ones, as TensorBoard expects).
    public init(directory dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw TrainingError("\(dir): cannot create the TensorBoard folder (\(error.localizedDescription))") }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        path = dir + "/events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid())"
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError("\(path): cannot create the TensorBoard event file")
        }
        handle = h
        var event = ProtoWriter()
        event.double(1, Date().timeIntervalSince1970)
        event.bytes(3, Array("brain.Event:2".utf8))
        try append(event.bytes)
    }

    deinit { try? handle.close() }

    /// One event at `step` holding every (tag, value) scalar.
    public func add(step: Int, scalars: [(String, Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        try addSummary(step: step, wallTime: wallTime, values: scalars.map { tag, value in
            var v = ProtoWriter()
            v.bytes(1, Array(tag.utf8))
            v.float(2, Float(value))
            return v.bytes
        })
    }

    /// One event at `step` holding an RGB image (PNG-encoded), e.g. a flow colour map.
    public func add(step: Int, tag: String, image: RGBImage, wallTime: Double = Date().timeIntervalSince1970) throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-tb-\(UUID().uuidString).png").path
        defer { unlink(tmp) }
        try ImageFile.writePNG(image, to: tmp)
        var img = ProtoWriter()
        img.varint(1, UInt64(image.height))
        img.varint(2, UInt64(image.width))
        img.varint(3, 3)
        img.bytes(4, [UInt8](try Data(contentsOf: URL(fileURLWithPath: tmp))))
        var v = ProtoWriter()
        v.bytes(1, Array(tag.utf8))
        v.bytes(4, img.bytes)
        try addSummary(step: step, wallTime: wallTime, values: [v.bytes])
    }

    /// An Event at `step` whose Summary holds the encoded Summary.Values.
    func addSummary(step: Int, wallTime: Double, values: [[UInt8]]) throws {
        var summary = ProtoWriter()
        for v in values { summary.bytes(1, v) }
        var event = ProtoWriter()
        event.double(1, wallTime)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.bytes(5, summary.bytes)
        try append(event.bytes)
    }

    func append(_ payload: [UInt8]) throws {
        do { try handle.write(contentsOf: TensorBoardWriter.record(payload)) }
        catch { throw TrainingError("\(path): cannot append (\(error.localizedDescription))") }
    }

    /// A TFRecord: length, its masked CRC, the payload, its masked CRC.
    static func record(_ payload: [UInt8]) -> Data {
        var out = Data()
        let length = withUnsafeBytes(of: UInt64(payload.count).littleEndian) { Array($0) }
        out.append(contentsOf: length)
        withUnsafeBytes(of: maskedCRC32C(length).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: payload)
        withUnsafeBytes(of: maskedCRC32C(payload).littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant.
    static func maskedCRC32C(_ bytes: [UInt8]) -> UInt32 {
        let c = crc32c(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}
