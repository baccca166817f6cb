// Seed corpora: small valid files of every format, made by mdflow's own writers (or, for the
// formats mdflow only reads, by a minimal writer here), so that `Fuzz/corpus` can be regenerated.
import Foundation
import FlowData
import NN
import Tensor
import Training
import ZIPFoundation

enum Seeds {
    /// The seed files of `target`, by file name.
    static func files(for target: FuzzTarget) throws -> [String: [UInt8]] {
        switch target {
        case .png:
            return [
                "rgb8.png": try written { try ImageFile.writePNG(image(5, 3), to: $0) },
                "rgb16.png": try written { try ImageFile.writePNG(image(3, 2), to: $0, bitDepth: 16, compression: 0) },
                "gray8.png": try written { try ImageFile.writePNG(raw(4, 4, channels: 1, maxValue: 255), to: $0) },
                "gray-alpha16.png": try written { try ImageFile.writePNG(raw(2, 3, channels: 2, maxValue: 65535), to: $0) },
                "rgba8.png": try written { try ImageFile.writePNG(raw(3, 3, channels: 4, maxValue: 255), to: $0, compression: 9) },
            ]
        case .jpeg:
            return [
                "rgb-8x8.jpg": try written { try ImageFile.writeJPEG(image(8, 8), to: $0, quality: 90) },
                "rgb-13x5.jpg": try written { try ImageFile.writeJPEG(image(13, 5), to: $0, quality: 50) },
            ]
        case .ppm:
            return [
                "rgb8.ppm": try written { try ImageFile.writePPM(image(4, 3), to: $0) },
                "rgb16.ppm": try written { try ImageFile.writePPM(image(2, 2), to: $0, maxValue: 65535) },
                "gray8.pgm": try written { try ImageFile.writePNM(raw(3, 2, channels: 1, maxValue: 255), to: $0) },
                "ascii.ppm": Array("P3\n# a comment\n2 1\n15\n0 7 15  15 7 0\n".utf8),
                "ascii.pgm": Array("P2 3 2 1000\n0 1 2\n999 1000 500\n".utf8),
            ]
        case .flo:
            return ["3x2.flo": try written { try FlowFile.writeFlo(flow(3, 2), to: $0) }]
        case .kitti:
            return ["4x3.png": try written { try FlowFile.writeKITTI(flow(4, 3), to: $0) }]
        case .safetensors:
            let t = Tensor(shape: [2, 3], values: (0..<6).map { Float($0) - 2.5 })
            let scalar = Tensor(shape: [], values: [7])
            var half = Array("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[4,6]}}".utf8)
            while half.count % 8 != 0 { half.append(0x20) }
            var halfFile: [UInt8] = []
            withUnsafeBytes(of: UInt64(half.count).littleEndian) { halfFile += $0 }
            halfFile += half + [0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F]
            return [
                "f32.safetensors": Array(SafeTensors.serialize(["w": t, "s": scalar], metadata: ["format": "pt"])),
                "f16-bf16.safetensors": halfFile,
            ]
        case .pthLegacy:
            return ["state-dict.pth": TorchFile.legacy()]
        case .pthZip:
            return ["state-dict.pth": try TorchFile.zip()]
        case .recipe:
            return [
                "stages.yaml": Array("""
                    name: seed
                    seed: 3
                    data:
                      train: {kind: synthetic, root: Datasets/seed, split: train, generate: {pairs: 4, height: 64, width: 64, seed: 1}}
                      val: {kind: synthetic, root: Datasets/seed, split: val}
                    teacher: {arch: fastflownet}
                    student: {arch: raft-small, iters: 2}
                    rounds: 2
                    checkpoint: {every: 2, keep: 1}
                    stages:
                      - kind: unsupervised
                        steps: 2
                        batch: 1
                        crop: [64, 64]
                      - kind: distill-to-student
                        steps: 1
                        loss: {occAlpha2: 1000, tau: 1}

                    """.utf8),
                "no-stages.yaml": Array("name: tiny\nstages: []\n".utf8),
            ]
        case .stateJSON:
            var state = TrainState()
            state.stageIndex = 1; state.stageStep = 2; state.globalStep = 5; state.recipeHash = "0123abcd"
            state.loader = LoaderPosition.start(seed: 3, pairCount: 4)
            state.history = [try JSONDecoder().decode(StageResult.self, from: Data(#"{"stage":0,"name":"unsupervised","teacherEPE":1.5,"seconds":2}"#.utf8))]
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            return ["state.json": Array(try enc.encode(state)), "default.json": Array(try enc.encode(TrainState()))]
        case .manifest:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-seeds-\(getpid())")
            defer { try? FileManager.default.removeItem(at: dir) }
            try Checkpoint.writeFolder(dir, name: "step", files: FuzzFolder.files)
            let good = try [UInt8](Data(contentsOf: dir.appendingPathComponent("step/" + Checkpoint.manifestFile)))
            let bad = Array(#"{"files":{"notes.txt":{"bytes":11,"crc32":"00000000"}}}"#.utf8)
            return ["manifest.json": good, "mismatch.json": bad]
        }
    }

    /// Writes every target's seeds into `dir/<target>/`.
    static func write(to dir: URL) throws {
        for target in FuzzTarget.allCases {
            let folder = dir.appendingPathComponent(target.rawValue)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, bytes) in try files(for: target) { try Data(bytes).write(to: folder.appendingPathComponent(name)) }
        }
    }

    // MARK: small inputs

    private static func written(_ write: (String) throws -> Void) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "mdflow-seed-\(getpid())-\(UUID().uuidString)"
        defer { unlink(path) }
        try write(path)
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private static func image(_ w: Int, _ h: Int) -> RGBImage {
        RGBImage(width: w, height: h, pixels: (0..<3 * w * h).map { Float(($0 * 37) % 101) / 100 })
    }

    private static func raw(_ w: Int, _ h: Int, channels: Int, maxValue: Int) -> RawImage {
        RawImage(width: w, height: h, channels: channels, maxValue: maxValue,
                 samples: (0..<w * h * channels).map { UInt16(($0 * 7919) % (maxValue + 1)) })
    }

    private static func flow(_ w: Int, _ h: Int) -> FlowField {
        let n = w * h
        var valid = [Float](repeating: 1, count: n)
        valid[n - 1] = 0
        let uv = (0..<2 * n).map { i in valid[i % n] > 0 ? Float(i) * 0.75 - 3 : 0 }
        return FlowField(width: w, height: h, uv: uv, valid: valid)
    }
}

/// A minimal torch.save writer for the seeds: a state dict of two float tensors (one a strided
/// view) over one storage, in the legacy format and in the zip format.
enum TorchFile {
    static let values: [Float] = [0.5, -1, 2, 3.25, -0.125, 8]

    /// Protocol-2 pickle opcodes.
    private struct Pickle {
        var out: [UInt8] = [0x80, 0x02]
        mutating func text(_ s: String) { let b = Array(s.utf8); out.append(0x58); u32(b.count); out += b }
        mutating func int(_ v: Int) { out.append(0x4A); u32(v) }
        mutating func u32(_ v: Int) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        mutating func global(_ module: String, _ name: String) { out.append(0x63); out += Array("\(module)\n\(name)\n".utf8) }
        mutating func ints(_ values: [Int]) { out.append(0x28); for v in values { int(v) }; out.append(0x74) }
        mutating func tensor(offset: Int, size: [Int], stride: [Int]) {
            global("torch._utils", "_rebuild_tensor_v2")
            out.append(0x28)                                             // MARK (arguments)
            out.append(0x28); text("storage"); global("torch", "FloatStorage"); text("0"); text("cpu"); int(values.count)
            out += [0x74, 0x51]                                          // TUPLE, BINPERSID
            int(offset); ints(size); ints(stride)
            out.append(0x89)                                             // False
            global("collections", "OrderedDict"); out += [0x29, 0x52]    // OrderedDict()
            out += [0x74, 0x52]                                          // TUPLE, REDUCE
        }
        mutating func stop() { out.append(0x2E) }
    }

    static func objectPickle() -> [UInt8] {
        var p = Pickle()
        p.global("collections", "OrderedDict"); p.out += [0x29, 0x52]
        p.out.append(0x28)
        p.text("conv.weight"); p.tensor(offset: 0, size: [2, 3], stride: [3, 1])
        p.text("conv.bias"); p.tensor(offset: 1, size: [2], stride: [2])
        p.out.append(0x75)                                               // SETITEMS
        p.stop()
        return p.out
    }

    static func storage() -> [UInt8] {
        var out: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        return out
    }

    static func legacy() -> [UInt8] {
        var magic = Pickle(); magic.out += [0x8A, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]; magic.stop()
        var version = Pickle(); version.out += [0x4D, 0xE9, 0x03]; version.stop()
        var info = Pickle(); info.out.append(0x7D); info.text("little_endian"); info.out += [0x88, 0x73]; info.stop()
        var keys = Pickle(); keys.out += [0x5D, 0x28]; keys.text("0"); keys.out.append(0x65); keys.stop()
        var out = magic.out + version.out + info.out + objectPickle() + keys.out
        withUnsafeBytes(of: Int64(values.count).littleEndian) { out += $0 }
        return out + storage()
    }

    static func zip() throws -> [UInt8] {
        let archive = try Archive(accessMode: .create)
        let entries: [(String, [UInt8])] = [("seed/data.pkl", objectPickle()), ("seed/byteorder", Array("little".utf8)),
                                            ("seed/data/0", storage()), ("seed/version", Array("3\n".utf8))]
        for (path, bytes) in entries {
            let data = Data(bytes)
            // A fixed date, so that the seed is the same file every time it is written.
            try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count),
                                 modificationDate: Date(timeIntervalSince1970: 1_767_225_600), compressionMethod: .none) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        guard let data = archive.data else { throw WeightsError("seed zip: no archive data") }
        return [UInt8](data)
    }
}
