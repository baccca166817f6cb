import Foundation
import Testing
import Training
import TestSupport

/// Checkpoint inputs from Fuzz/regressions that a parser once mishandled; each is now an error
/// naming the file.
@Suite struct CheckpointFuzzRegressionTests {
    /// A manifest listing `../…/dev/zero` made `verify` read an endless device file until memory
    /// ran out; a listed name must be a file of the folder.
    @Test func aManifestNameOutsideTheFolderIsAnError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-manifest-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = dir.appendingPathComponent(Checkpoint.manifestFile)
        try Data(contentsOf: Fixtures.packageRoot.appendingPathComponent("Fuzz/regressions/manifest/path-out-of-folder.json"))
            .write(to: manifest)
        do {
            try Checkpoint.verify(dir)
            Issue.record("accepted")
        } catch {
            #expect("\(error)".hasPrefix(manifest.path + ": lists '../"), "\(error)")
            #expect("\(error)".contains("not a file name"), "\(error)")
        }
    }
}
