import Foundation
import Testing
@testable import FlowData
import Tensor

func randomFlow(width: Int, height: Int, seed: UInt64, invalidEvery: Int = 0) -> FlowField {
    var rng = RandomGenerator(seed: seed)
    let n = width * height
    var f = FlowField(width: width, height: height)
    for i in 0..<n {
        f.uv[i] = rng.uniformFloat(-40, 40)
        f.uv[n + i] = rng.uniformFloat(-40, 40)
        if invalidEvery > 0 && i % invalidEvery == 0 { f.valid[i] = 0; f.uv[i] = 0; f.uv[n + i] = 0 }
    }
    return f
}

@Test func floRoundTripIsExactAndKeepsInvalidPixels() throws {
    let dir = TempDir()
    let flow = randomFlow(width: 7, height: 5, seed: 1, invalidEvery: 4)
    try FlowFile.writeFlo(flow, to: dir.file("a.flo"))
    #expect(try FlowFile.readFlo(dir.file("a.flo")) == flow)
    #expect(try FlowFile.read(dir.file("a.flo")) == flow)
    let bytes = fileBytes(dir.file("a.flo"))
    #expect(Array(bytes[0..<4]) == Array("PIEH".utf8))
    #expect(bytes[4] == 7 && bytes[8] == 5)  // width, then height
    #expect(bytes.count == 12 + 8 * 35)
}

@Test func floValuesAbove1e9AreInvalid() throws {
    let dir = TempDir()
    var words: [UInt32] = [Float(202021.25).bitPattern, 2, 1]
    words += [Float(1.5).bitPattern, Float(-2).bitPattern, Float(2e9).bitPattern, Float(0).bitPattern]
    writeBytes(dir.file("u.flo"), words.withUnsafeBytes { Array($0) })
    let f = try FlowFile.readFlo(dir.file("u.flo"))
    #expect(f.valid == [1, 0])
    #expect(f.uv == [1.5, 0, -2, 0])
}

@Test func kittiPNGRoundTripIsExactAtExtremes() throws {
    let dir = TempDir()
    let values: [Float] = [-512, 511.984375, 0, 1.0 / 64, -1.0 / 64, 123.5, -300.25, 17]
    let w = 4, h = 2, n = 8
    var f = FlowField(width: w, height: h)
    for i in 0..<n { f.uv[i] = values[i]; f.uv[n + i] = values[n - 1 - i] }
    f.valid[5] = 0; f.uv[5] = 0; f.uv[n + 5] = 0
    try FlowFile.writeKITTI(f, to: dir.file("k.png"))
    let raw = try ImageFile.readRaw(dir.file("k.png"))
    #expect(raw.samples[0] == 0 && raw.samples[3] == 65535 && raw.samples[2] == 1 && raw.samples[17] == 0)
    #expect(try FlowFile.readKITTI(dir.file("k.png")) == f)
    #expect(try FlowFile.read(dir.file("k.png")) == f)
}

@Test func badFlowFilesGiveErrorsNamingTheFile() throws {
    let dir = TempDir()
    try FlowFile.writeFlo(randomFlow(width: 4, height: 4, seed: 2), to: dir.file("t.flo"))
    truncate(dir.file("t.flo"), to: 50)
    #expect(errorMessage { _ = try FlowFile.readFlo(dir.file("t.flo")) } == dir.file("t.flo") + ": truncated .flo (expected 140 bytes for 4×4, found 50)")
    writeBytes(dir.file("g.flo"), [UInt8](repeating: 7, count: 40))
    #expect(errorMessage { _ = try FlowFile.readFlo(dir.file("g.flo")) }?.hasPrefix(dir.file("g.flo") + ": not a .flo file") == true)
    writeBytes(dir.file("e.flo"), [])
    #expect(errorMessage { _ = try FlowFile.readFlo(dir.file("e.flo")) } == dir.file("e.flo") + ": empty file")
    #expect(errorMessage { _ = try FlowFile.readFlo(dir.file("m.flo")) } == dir.file("m.flo") + ": cannot open (No such file or directory)")
    try ImageFile.writePNG(testImage(width: 4, height: 4), to: dir.file("rgb8.png"))
    #expect(errorMessage { _ = try FlowFile.readKITTI(dir.file("rgb8.png")) }?.contains("not a KITTI flow PNG") == true)
}
