import Testing
import Foundation
import Training
import TestSupport

@Suite struct CheckpointTests {
    func folder(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-ckpt-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let files = ["teacher.safetensors": Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
                     "state.json": Data("{\"version\": 1}".utf8)]
        try Checkpoint.writeFolder(dir, name: "step-0000001", files: files)
        return dir
    }

    @Test func anIntactFolderVerifies() throws {
        let dir = try folder("intact")
        defer { try? FileManager.default.removeItem(at: dir) }
        let step = dir.appendingPathComponent("step-0000001")
        #expect(FileManager.default.fileExists(atPath: step.appendingPathComponent("manifest.json").path))
        try Checkpoint.verify(step)
        try Checkpoint.verifyFile(step.appendingPathComponent("teacher.safetensors").path)
    }

    @Test(arguments: ["flip", "truncate", "remove"])
    func aDamagedFileIsNamed(_ damage: String) throws {
        let dir = try folder(damage)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("step-0000001/teacher.safetensors")
        var bytes = try Data(contentsOf: file)
        switch damage {
        case "flip": bytes[1234] ^= 0x10; try bytes.write(to: file)
        case "truncate": try bytes.prefix(4000).write(to: file)
        default: try FileManager.default.removeItem(at: file)
        }
        let expected = ["flip": "checksum mismatch", "truncate": "truncated", "remove": "missing"][damage]!
        for check in [{ try Checkpoint.verify(file.deletingLastPathComponent()) }, { try Checkpoint.verifyFile(file.path) }] {
            do {
                try check()
                Issue.record("\(damage): accepted")
            } catch {
                #expect("\(error)".contains(file.path) && "\(error)".contains(expected), "\(error)")
            }
        }
    }
}
