import Foundation
import Testing
import NN
import TestSupport

/// Inputs that crashed a weights parser (Fuzz/regressions/, replayed by Scripts/fuzz.sh too); each
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

    /// safetensors headers whose numbers trapped: a shape whose product overflows, a negative
    /// shape with offsets that matched it (Tensor's negative-dimension trap), offsets whose
    /// difference overflows.
    @Test(arguments: [
        ("shape-overflow.safetensors", "impossible shape [4611686018427387904, 4]"),
        ("negative-shape.safetensors", "data offsets [4, 0] that do not fit"),
        ("offset-overflow.safetensors", "data offsets [9223372036854775807, -9223372036854775805] that do not fit"),
    ])
    func safetensorsHeaderNumbers(file: String, reason: String) throws {
        let data = try Self.input("safetensors", file)
        let message = Self.error { _ = try SafeTensors.parse(data, name: "bad.safetensors") }
        #expect(message?.hasPrefix("bad.safetensors: tensor 'a'") == true)
        #expect(message?.contains(reason) == true, "\(message ?? "no error")")
    }
}
