// The mdflow-fuzz executable. Built by `Scripts/fuzz.sh` with libFuzzer (`--sanitize fuzzer`,
// `-DMDFLOW_LIBFUZZER`), libFuzzer's own `main` drives the target named by MDFLOW_FUZZ_TARGET.
// The ordinary build (part of `swift build`) has a small command line instead: list the targets,
// write the seed corpora, and replay inputs through a target (crash reproduction).
import Foundation

/// The target the libFuzzer entry points feed, chosen once in `LLVMFuzzerInitialize`.
nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = ProcessInfo.processInfo.environment["MDFLOW_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("mdflow-fuzz: set MDFLOW_FUZZ_TARGET to one of \(names) (got '\(name)')\n".utf8))
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget?.run(bytes)
    return 0
}

#if !MDFLOW_LIBFUZZER
@main
struct FuzzTool {
    static let usage = """
        usage: mdflow-fuzz --list
               mdflow-fuzz --write-seeds DIR          (DIR/<target>/: the seed corpora)
               mdflow-fuzz --replay TARGET PATH...    (each file, or every file in each folder, once)
        Fuzzing itself needs the libFuzzer build: bash Scripts/fuzz.sh TARGET --seconds N
        """

    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        switch args.first {
        case "--list":
            for t in FuzzTarget.allCases { print(t.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + t.summary) }
        case "--write-seeds" where args.count == 2:
            try Seeds.write(to: URL(fileURLWithPath: args[1]))
        case "--replay" where args.count >= 3:
            guard let target = FuzzTarget(rawValue: args[1]) else { fail("unknown target '\(args[1])'") }
            var accepted = 0, rejected = 0
            for path in try inputs(Array(args[2...])) {
                let ok = target.run(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
                if ok { accepted += 1 } else { rejected += 1 }
            }
            print("\(target.rawValue): \(accepted + rejected) inputs replayed, \(accepted) accepted, \(rejected) rejected with an error")
        default:
            fail(usage)
        }
    }

    /// Files named by `paths`, folders expanded to their regular files (sorted).
    static func inputs(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { fail("\(p): no such file or folder") }
            if isDir.boolValue {
                out += try FileManager.default.contentsOfDirectory(atPath: p).sorted().filter { !$0.hasPrefix(".") }.map { p + "/" + $0 }
            } else {
                out.append(p)
            }
        }
        return out
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("mdflow-fuzz: \(message)\n".utf8))
        exit(2)
    }
}
#endif
