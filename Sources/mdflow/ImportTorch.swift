import ArgumentParser
import Foundation
import Tensor
import NN

struct ImportTorch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-torch",
        abstract: "Convert a PyTorch .pth checkpoint (zip or legacy torch.save format) to safetensors.",
        discussion: """
        The checkpoint must hold a state_dict, or a dict with one under 'state_dict' or 'model'. \
        The pickle is read by a restricted reader that executes nothing and refuses anything but \
        tensors, containers and plain values. Every tensor is written as float32 under its original \
        key; a failed run writes nothing.

        Example:
          mdflow import-torch raft-small.pth --out raft-small.safetensors --strip-module-prefix
        """)

    @Argument(help: "The .pth file.")
    var input: String

    @Option(help: "Output .safetensors file (required).")
    var out: String

    @Flag(help: "Drop a leading 'module.' (DataParallel) from every key.")
    var stripModulePrefix = false

    func run() throws {
        var tensors = try TorchImport.read(URL(fileURLWithPath: input))
        if stripModulePrefix {
            var renamed: [String: Tensor] = [:]
            for (k, v) in tensors { renamed[k.hasPrefix("module.") ? String(k.dropFirst(7)) : k] = v }
            tensors = renamed
        }
        let data = SafeTensors.serialize(tensors, metadata: ["source": (input as NSString).lastPathComponent, "format": "pt"])
        let tmp = out + ".tmp-\(getpid())"
        do {
            try data.write(to: URL(fileURLWithPath: tmp))
            if FileManager.default.fileExists(atPath: out) { try FileManager.default.removeItem(atPath: out) }
            try FileManager.default.moveItem(atPath: tmp, toPath: out)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw WeightsError("\(out): cannot write (\(error.localizedDescription))")
        }
        let params = tensors.values.reduce(0) { $0 + $1.count }
        print("\(input): \(tensors.count) tensors, \(params) values → \(out)")
    }
}
