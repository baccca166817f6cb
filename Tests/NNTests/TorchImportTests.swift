import Foundation
import Testing
import Tensor
import NN
import TestSupport

/// Writes pickles the way torch.save does (protocol 2), for building checkpoints by hand.
private struct PickleWriter {
    var out: [UInt8] = [0x80, 0x02]
    mutating func op(_ b: UInt8) { out.append(b) }
    mutating func u32(_ v: Int) { for i in 0..<4 { out.append(UInt8((v >> (8 * i)) & 0xFF)) } }
    mutating func string(_ s: String) { op(0x58); let b = Array(s.utf8); u32(b.count); out += b }
    mutating func int(_ v: Int) { op(0x4A); u32(v) }
    mutating func global(_ m: String, _ n: String) { op(0x63); out += Array("\(m)\n\(n)\n".utf8) }
    mutating func mark() { op(0x28) }
    mutating func tuple() { op(0x74) }
    mutating func stop() { op(0x2E) }
    mutating func orderedDict() { global("collections", "OrderedDict"); op(0x29); op(0x52) }

    /// `_rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict())`.
    mutating func tensor(storage: String, type: String, numel: Int, offset: Int, size: [Int], stride: [Int], legacy: Bool) {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        mark(); string("storage"); global("torch", type); string(storage); string("cpu"); int(numel)
        if legacy { op(0x4E) }
        tuple(); op(0x51)                                            // BINPERSID
        int(offset)
        mark(); for s in size { int(s) }; tuple()
        mark(); for s in stride { int(s) }; tuple()
        op(0x89)
        orderedDict()
        tuple(); op(0x52)
    }
}

/// One test checkpoint: entries (key → storage, offset, size, stride) over float storages "0"
/// (12 floats), "1" (one int64) and "2" (4 halves).
private struct Checkpoint {
    static let floats: [Float] = (0..<12).map { Float($0) * 0.5 - 2 }
    static let halfs: [Float] = [1.5, -0.25, 1024, 0.0009765625]

    static func objectPickle(legacy: Bool, wrap: String? = nil) -> [UInt8] {
        var p = PickleWriter()
        if let wrap { p.op(0x7D); p.string(wrap) }
        p.orderedDict()
        p.mark()
        p.string("module.conv.weight"); p.tensor(storage: "0", type: "FloatStorage", numel: 12, offset: 0, size: [2, 3, 2], stride: [6, 2, 1], legacy: legacy)
        p.string("module.transposed"); p.tensor(storage: "0", type: "FloatStorage", numel: 12, offset: 2, size: [2, 3], stride: [1, 2], legacy: legacy)
        p.string("module.bn.num_batches_tracked"); p.tensor(storage: "1", type: "LongStorage", numel: 1, offset: 0, size: [], stride: [], legacy: legacy)
        p.string("module.half"); p.tensor(storage: "2", type: "HalfStorage", numel: 4, offset: 0, size: [4], stride: [1], legacy: legacy)
        p.op(0x75)                                                   // SETITEMS
        if wrap != nil { p.op(0x73) }                                // SETITEM
        p.stop()
        return p.out
    }

    static func storageBytes() -> [String: [UInt8]] {
        var f: [UInt8] = []
        for v in floats { withUnsafeBytes(of: v.bitPattern.littleEndian) { f += $0 } }
        var l: [UInt8] = []
        withUnsafeBytes(of: Int64(7).littleEndian) { l += $0 }
        var h: [UInt8] = []
        for v in halfs { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { h += $0 } }
        return ["0": f, "1": l, "2": h]
    }

    static func legacyFile(wrap: String? = nil) -> Data {
        var out: [UInt8] = []
        var magic = PickleWriter(); magic.op(0x8A); magic.op(10); magic.out += [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]; magic.stop()
        var version = PickleWriter(); version.op(0x4D); version.out += [0xE9, 0x03]; version.stop()
        var sys = PickleWriter(); sys.op(0x7D); sys.string("little_endian"); sys.op(0x88); sys.op(0x73); sys.stop()
        var keys = PickleWriter(); keys.op(0x5D); keys.mark(); for k in ["0", "1", "2"] { keys.string(k) }; keys.op(0x65); keys.stop()
        out += magic.out + version.out + sys.out + objectPickle(legacy: true, wrap: wrap) + keys.out
        let bytes = storageBytes()
        for (k, n) in [("0", 12), ("1", 1), ("2", 4)] {
            withUnsafeBytes(of: Int64(n).littleEndian) { out += $0 }
            out += bytes[k]!
        }
        return Data(out)
    }

    static func zipFile() -> Data {
        var files: [(String, [UInt8])] = [("archive/data.pkl", objectPickle(legacy: false)), ("archive/byteorder", Array("little".utf8))]
        for (k, v) in storageBytes().sorted(by: { $0.key < $1.key }) { files.append(("archive/data/\(k)", v)) }
        files.append(("archive/version", Array("3\n".utf8)))
        return storedZip(files)
    }

    static func check(_ t: [String: Tensor]) {
        #expect(Set(t.keys) == ["module.conv.weight", "module.transposed", "module.bn.num_batches_tracked", "module.half"])
        #expect(t["module.conv.weight"]!.shape == [2, 3, 2])
        #expect(t["module.conv.weight"]!.toArray() == floats)
        // Offset 2, stride (1, 2): element (i, j) = floats[2 + i + 2j].
        #expect(t["module.transposed"]!.toArray() == [floats[2], floats[4], floats[6], floats[3], floats[5], floats[7]])
        #expect(t["module.bn.num_batches_tracked"]!.shape == [] && t["module.bn.num_batches_tracked"]!.item == 7)
        #expect(t["module.half"]!.toArray() == halfs)
    }
}

/// A zip archive with stored (uncompressed) entries, as torch.save writes them.
private func storedZip(_ files: [(String, [UInt8])]) -> Data {
    func crc32(_ b: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for x in b { c ^= UInt32(x); for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) } }
        return ~c
    }
    var out: [UInt8] = [], central: [UInt8] = []
    func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func u32(_ v: UInt32, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
    for (name, data) in files {
        let offset = UInt32(out.count), n = Array(name.utf8), crc = crc32(data)
        u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0, &out)
        u32(crc, &out); u32(UInt32(data.count), &out); u32(UInt32(data.count), &out); u16(n.count, &out); u16(0, &out)
        out += n + data
        u32(0x0201_4B50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
        u32(crc, &central); u32(UInt32(data.count), &central); u32(UInt32(data.count), &central); u16(n.count, &central)
        u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central); u32(0, &central); u32(offset, &central)
        central += n
    }
    let cdOffset = UInt32(out.count)
    out += central
    u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out); u16(files.count, &out); u16(files.count, &out)
    u32(UInt32(central.count), &out); u32(cdOffset, &out); u16(0, &out)
    return Data(out)
}

@Suite struct TorchImportTests {
    @Test func legacyFormatImportsExactlyTheSavedTensors() throws {
        Checkpoint.check(try TorchImport.parse(Checkpoint.legacyFile(), name: "legacy.pth"))
    }

    @Test func zipFormatImportsExactlyTheSavedTensors() throws {
        Checkpoint.check(try TorchImport.parse(Checkpoint.zipFile(), name: "zip.pth"))
    }

    @Test func aStateDictUnderStateDictOrModelIsFound() throws {
        Checkpoint.check(try TorchImport.parse(Checkpoint.legacyFile(wrap: "state_dict"), name: "wrapped.pth"))
        Checkpoint.check(try TorchImport.parse(Checkpoint.legacyFile(wrap: "model"), name: "wrapped.pth"))
    }

    @Test func aGlobalOutsideTheAllowListIsRefusedByName() {
        var p = PickleWriter()
        p.global("os", "system"); p.mark(); p.string("echo hi"); p.tuple(); p.op(0x52); p.stop()
        let zip = storedZip([("archive/data.pkl", p.out)])
        do {
            _ = try TorchImport.parse(zip, name: "evil.pth")
            Issue.record("expected a refusal")
        } catch {
            #expect("\(error)".contains("evil.pth") && "\(error)".contains("os.system"))
        }
    }

    @Test func truncatedLegacyFileIsAnErrorNamingTheFile() {
        let data = Checkpoint.legacyFile()
        do {
            _ = try TorchImport.parse(data.prefix(data.count - 5), name: "cut.pth")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("cut.pth"))
        }
    }

    @Test func pretrainedRAFTSmallLoadsAllItsTensors() throws {
        let url = Fixtures.checkpoint("raft-small.pth")
        let t = try TorchImport.read(url)
        #expect(t.count == 106)
        #expect(t.values.reduce(0) { $0 + $1.count } == 990_162)
        #expect(t.keys.allSatisfy { $0.hasPrefix("module.") })
        #expect(t["module.fnet.conv1.weight"]!.shape == [32, 3, 7, 7])
        #expect(t.values.allSatisfy { $0.isFinite })
        // Through WeightsFile as well (chosen by magic bytes).
        #expect(try WeightsFile.read(url).count == 106)
    }
}
