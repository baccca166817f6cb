import Testing
import Foundation
import FlowData
@testable import Training

/// The TensorBoard event file: TFRecord framing with masked CRC-32C, Event and Summary protos.
@Suite struct TensorBoardTests {
    @Test func crc32cMatchesTheCastagnoliCheckValue() {
        // The standard check value of CRC-32C over "123456789" (RFC 3720, B.4).
        #expect(TensorBoardWriter.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(TensorBoardWriter.crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    /// Minimal reader: the records of an event file, each checked against its CRCs.
    func records(_ path: String) throws -> [[UInt8]] {
        let d = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var out: [[UInt8]] = [], i = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(d[at + $1]) << (8 * $1) } }
        while i < d.count {
            let lengthBytes = Array(d[i..<(i + 8)])
            let n = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[$1]) << (8 * $1) })
            #expect(u32(i + 8) == TensorBoardWriter.maskedCRC32C(lengthBytes))
            let payload = Array(d[(i + 12)..<(i + 12 + n)])
            #expect(u32(i + 12 + n) == TensorBoardWriter.maskedCRC32C(payload))
            out.append(payload)
            i += 16 + n
        }
        return out
    }

    @Test func scalarsAreFramedEventsWithTheirTagsAndSteps() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-tb-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try TensorBoardWriter(directory: dir)
        try w.add(step: 300, scalars: [("train/loss", 0.5), ("val/teacher/epe", 2.25)], wallTime: 1.5)
        let r = try records(w.path)
        #expect(r.count == 2)
        // The file version event: wall_time (field 1, double), file_version (field 3).
        #expect(r[0][0] == 0x09 && r[0][9] == 0x1A && String(decoding: r[0][11...], as: UTF8.self) == "brain.Event:2")
        // The scalar event, byte for byte.
        func value(_ tag: String, _ v: Float) -> [UInt8] {
            let t = Array(tag.utf8)
            let inner = [0x0A, UInt8(t.count)] + t + [0x15] + withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }
            return [0x0A, UInt8(inner.count)] + inner
        }
        let summary = value("train/loss", 0.5) + value("val/teacher/epe", 2.25)
        let expected: [UInt8] = [0x09] + withUnsafeBytes(of: (1.5).bitPattern.littleEndian) { Array($0) }
            + [0x10, 0xAC, 0x02] + [0x2A, UInt8(summary.count)] + summary
        #expect(r[1] == expected)
    }

    @Test func imagesArePNGsInsideAnImageValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-tb-image-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try TensorBoardWriter(directory: dir)
        var image = RGBImage(width: 3, height: 2)
        image.pixels[0] = 1
        try w.add(step: 5, tag: "val/flow", image: image, wallTime: 2)
        let r = try records(w.path)[1]
        // Event: wall_time, step 5, summary { value { tag, image { 1: 2, 2: 3, 3: 3, 4: PNG } } }.
        #expect(Array(r[9...10]) == [0x10, 0x05] && r[11] == 0x2A)
        let tag = Array("val/flow".utf8)
        let png = Array(r.suffix(from: 13 + 2 + 2 + tag.count + 2 + 6 + 2))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(r[(17 + tag.count)...(17 + tag.count + 7)]) == [0x22, UInt8(6 + 2 + png.count), 0x08, 2, 0x10, 3, 0x18, 3])
        let decoded = try ImageFile.decodeRaw(png, path: "tb.png")
        #expect(decoded.width == 3 && decoded.height == 2 && decoded.samples[0] == 255 && decoded.samples[1] == 0)
    }

    @Test func metricsRecordsBecomeTags() {
        let tags = Trainer.scalars(["type": "val", "global_step": 7, "final": true, "stage_name": "x",
                                    "teacher": ["epe": 1.25, "outliers1": 0.5]], prefix: "val/")
        #expect(tags.map(\.0) == ["val/teacher/epe", "val/teacher/outliers1"])
        #expect(tags.map(\.1) == [1.25, 0.5])
    }
}
