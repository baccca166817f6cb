import Foundation
import Testing
import NN
import TestSupport

/// Inputs the fuzzer (Scripts/fuzz.sh, Fuzz/regressions/) found to crash a weights parser; each
/// must now be a `WeightsError` naming the file.
@Suite struct WeightsFuzzRegressionTests {
    static func input(_ target: String, _ file: String) throws -> Data {
        try Data(contentsOf: Fixtures.packageRoot.appendingPathComponent("Fuzz/regressions/\(target)/\(file)"))
    }

    static func error(_ parse: () throws -> Void) -> String? {
        do { try parse(); return nil } catch { return "\(error)" }
    }

    /// A legacy checkpoint whose tensor has a negative size (-2147483646 × 3) trapped in Tensor.
    @Test func negativeTensorSize() throws {
        let data = try Self.input("pth-legacy", "negative-size.pth")
        let message = Self.error { _ = try TorchImport.parse(data, name: "bad.pth") }
        #expect(message?.hasPrefix("bad.pth: entry 'conv.weight'") == true)
        #expect(message?.contains("lies outside its storage") == true)
    }

    /// A zip whose central directory points past the end trapped inside ZIPFoundation's
    /// in-memory archive.
    @Test func zipDirectoryPastTheEnd() throws {
        let data = try Self.input("pth-zip", "directory-past-end.pth")
        let message = Self.error { _ = try TorchImport.parse(data, name: "bad.pth") }
        #expect(message?.hasPrefix("bad.pth: ") == true)
    }
}
