import Foundation
import Testing
import FlowData
import TestSupport

/// Image and flow inputs from Fuzz/regressions that once crashed a parser; each is now an error
/// naming the file.
@Suite struct ImageFuzzRegressionTests {
    /// A binary PPM with maxval 6553 and 16-bit samples above it trapped when the samples were
    /// rescaled to 16 bits (a Double above UInt16.max). Found by the ppm, png and jpeg targets.
    @Test func aBinarySampleAboveMaxvalIsAnError() throws {
        let path = Fixtures.packageRoot.appendingPathComponent("Fuzz/regressions/ppm/sample-above-maxval.ppm").path
        do {
            _ = try ImageFile.read(path)
            Issue.record("accepted")
        } catch {
            #expect("\(error)".hasPrefix(path + ": corrupt PPM/PGM (sample "), "\(error)")
            #expect("\(error)".hasSuffix("above maxval 6553)"), "\(error)")
        }
    }

    /// The 8-bit form: a sample of 255 under maxval 3 used to become 21675 in an 8-bit image.
    @Test func an8BitSampleAboveMaxvalIsAnError() throws {
        let bytes = Array("P5\n2 1\n3\n".utf8) + [1, 255]
        #expect(throws: DataError(path: "g.pgm", reason: "corrupt PPM/PGM (sample 255 above maxval 3)")) {
            _ = try ImageFile.decodeRaw(bytes, path: "g.pgm")
        }
    }
}
