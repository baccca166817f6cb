// The fuzz targets: one per parser of untrusted bytes. Each feeds an input to the parser's public
// entry point; a thrown error is the expected outcome for a malformed input, anything else that
// stops the process (a trap, a sanitizer report, a huge allocation) is a bug.
import Foundation
import FlowData
import NN
import Training

/// A parser under test, by the name `Scripts/fuzz.sh` and the corpus folder use.
enum FuzzTarget: String, CaseIterable {
    case png, jpeg, ppm, flo, kitti, safetensors
    case pthZip = "pth-zip", pthLegacy = "pth-legacy"
    case recipe
    case stateJSON = "state-json", manifest

    /// The entry point and the format it reads.
    var summary: String {
        switch self {
        case .png: return "ImageFile.decodeRaw: PNG (libpng through CSupport)"
        case .jpeg: return "ImageFile.decodeRaw: JPEG (libjpeg through CSupport, strict)"
        case .ppm: return "ImageFile.decodeRaw: PPM/PGM, binary and ASCII"
        case .flo: return "FlowFile.decode: Middlebury .flo"
        case .kitti: return "FlowFile.decode: KITTI 16-bit flow PNG"
        case .safetensors: return "SafeTensors.parse"
        case .pthZip: return "TorchImport.parse: torch.save zip archive"
        case .pthLegacy: return "TorchImport.parse: legacy torch.save pickles"
        case .recipe: return "Recipe.parse: recipe YAML"
        case .stateJSON: return "Checkpoint.readState: a checkpoint's state.json (through a file)"
        case .manifest: return "Checkpoint.verify: a checkpoint's manifest.json (through a file)"
        }
    }

    /// Feeds one input to the parser. Returns whether it was accepted (false: it threw).
    @discardableResult
    func run(_ bytes: [UInt8]) -> Bool {
        do {
            switch self {
            case .png, .jpeg, .ppm:
                // Each image target keeps to its format (decodeRaw picks it by signature).
                let signature: [UInt8] = self == .png ? [137, 80, 78, 71, 13, 10, 26, 10] : self == .jpeg ? [0xFF, 0xD8] : [0x50]
                guard bytes.starts(with: signature) else { return false }
                _ = try ImageFile.decodeRaw(bytes, path: "fuzz-input")
            case .flo, .kitti: _ = try FlowFile.decode(bytes, path: "fuzz-input")
            case .safetensors: _ = try SafeTensors.parse(Data(bytes), name: "fuzz-input")
            case .pthZip, .pthLegacy: _ = try TorchImport.parse(Data(bytes), name: "fuzz-input")
            case .recipe:
                _ = try Recipe.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz-input.yaml", checkPaths: false)
            case .stateJSON:
                let folder = FuzzFolder.shared.url
                try Data(bytes).write(to: folder.appendingPathComponent("state.json"))
                _ = try Checkpoint.readState(folder)
            case .manifest:
                let folder = FuzzFolder.shared.url
                try Data(bytes).write(to: folder.appendingPathComponent(Checkpoint.manifestFile))
                try Checkpoint.verify(folder)
            }
            return true
        } catch {
            return false
        }
    }
}

/// A private checkpoint-like folder for the targets that parse a file inside a folder: it holds
/// the two files the manifest seeds list (`FuzzFolder.files`), and the input is written next to them.
final class FuzzFolder: @unchecked Sendable {
    static let shared = FuzzFolder()
    /// The files every fuzzed manifest is checked against.
    static let files: [String: Data] = [
        "teacher.safetensors": SafeTensors.serialize([:], metadata: ["format": "pt"]),
        "notes.txt": Data("checkpoint\n".utf8),
    ]
    let url: URL

    private init() {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        url = URL(fileURLWithPath: base).appendingPathComponent("mdflow-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, data) in Self.files { try? data.write(to: url.appendingPathComponent(name)) }
        atexit { try? FileManager.default.removeItem(at: FuzzFolder.shared.url) }
    }
}
