import Foundation
import Testing
@testable import FlowData
import Tensor

@Test func png8BitRoundTripIsExact() throws {
    let dir = TempDir()
    let image = testImage(width: 13, height: 7)
    let path = dir.file("a.png")
    try ImageFile.writePNG(image, to: path)
    #expect(try ImageFile.read(path) == image)
    #expect(try ImageFile.readRaw(path).bitDepth == 8)
}

@Test func png16BitRoundTripIsExactAtExtremes() throws {
    let dir = TempDir()
    var samples: [UInt16] = [0, 65535, 1, 65534, 32768, 32767, 255, 256, 0x1234]
    var rng = RandomGenerator(seed: 3)
    while samples.count < 5 * 4 * 4 { samples.append(UInt16(truncatingIfNeeded: rng.next())) }
    for channels in [1, 2, 3, 4] {
        let count = 5 * 4 * channels
        let raw = RawImage(width: 5, height: 4, channels: channels, maxValue: 65535, samples: Array(samples.prefix(count)))
        let path = dir.file("c\(channels).png")
        try ImageFile.writePNG(raw, to: path)
        #expect(try ImageFile.readRaw(path) == raw)
    }
}

@Test func pngGrayRGBAAndPaletteDecodeToRGB() throws {
    let dir = TempDir()
    let gray = RawImage(width: 2, height: 1, channels: 1, maxValue: 255, samples: [0, 255])
    try ImageFile.writePNG(gray, to: dir.file("g.png"))
    #expect(try ImageFile.read(dir.file("g.png")).pixels == [0, 1, 0, 1, 0, 1])
    let rgba = RawImage(width: 1, height: 1, channels: 4, maxValue: 255, samples: [255, 0, 51, 7])
    try ImageFile.writePNG(rgba, to: dir.file("rgba.png"))
    #expect(try ImageFile.read(dir.file("rgba.png")).pixels == [1, 0, 0.2])
    // A 3×2 palette PNG (entries red, green, blue, (10, 20, 30)) with indices [0 1 2; 3 2 1].
    let palette: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2, 8, 3, 0, 0, 0, 170,
                            170, 150, 40, 0, 0, 0, 12, 80, 76, 84, 69, 255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 34, 136, 41, 4, 0,
                            0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 96, 96, 100, 98, 96, 102, 98, 4, 0, 0, 38, 0, 10, 27, 28, 9, 121,
                            0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130]
    writeBytes(dir.file("p.png"), palette)
    let raw = try ImageFile.readRaw(dir.file("p.png"))
    #expect(raw.channels == 3 && raw.width == 3 && raw.height == 2)
    #expect(raw.samples == [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 0, 0, 255, 0, 255, 0])
}

@Test func jpegRoundTripIsClose() throws {
    let dir = TempDir()
    let image = testImage(width: 32, height: 24)
    try ImageFile.writeJPEG(image, to: dir.file("a.jpg"), quality: 95)
    let back = try ImageFile.read(dir.file("a.jpg"))
    #expect(back.width == 32 && back.height == 24)
    let diff = zip(back.pixels, image.pixels).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(image.pixels.count)
    #expect(diff < 0.02)
}

@Test func ppmAndPgmRoundTripsAreExact() throws {
    let dir = TempDir()
    let image = testImage(width: 9, height: 5)
    try ImageFile.writePPM(image, to: dir.file("a.ppm"))
    #expect(try ImageFile.read(dir.file("a.ppm")) == image)
    let raw16 = RawImage(width: 2, height: 2, channels: 3, maxValue: 65535, samples: [0, 65535, 1, 2, 3, 4, 5, 6, 7, 8, 9, 40000])
    try ImageFile.writePNM(raw16, to: dir.file("b.ppm"))
    #expect(try ImageFile.readRaw(dir.file("b.ppm")) == raw16)
    let gray = RawImage(width: 3, height: 1, channels: 1, maxValue: 255, samples: [0, 128, 255])
    try ImageFile.writePNM(gray, to: dir.file("c.pgm"))
    #expect(try ImageFile.readRaw(dir.file("c.pgm")) == gray)
    writeBytes(dir.file("d.ppm"), Array("P3\n# comment\n2 1\n255\n255 0 0  0 0 255\n".utf8))
    #expect(try ImageFile.read(dir.file("d.ppm")).pixels == [1, 0, 0, 0, 0, 1])
}

@Test func badPNGFilesGiveErrorsNamingTheFile() throws {
    let dir = TempDir()
    try ImageFile.writePNG(testImage(width: 64, height: 48, quantized: false), to: dir.file("t.png"), compression: 0)
    truncate(dir.file("t.png"), to: 3000)
    let truncated = errorMessage { _ = try ImageFile.read(dir.file("t.png")) }
    #expect(truncated?.hasPrefix(dir.file("t.png") + ": truncated PNG (libpng:") == true)

    var garbage = [UInt8](repeating: 0x5A, count: 200)
    garbage.replaceSubrange(0..<8, with: [137, 80, 78, 71, 13, 10, 26, 10])
    writeBytes(dir.file("g.png"), garbage)
    let corrupt = errorMessage { _ = try ImageFile.read(dir.file("g.png")) }
    #expect(corrupt?.hasPrefix(dir.file("g.png") + ": ") == true)
    #expect(corrupt?.contains("PNG") == true)

    writeBytes(dir.file("x.png"), Array("hello, not an image".utf8))
    #expect(errorMessage { _ = try ImageFile.read(dir.file("x.png")) } == dir.file("x.png") + ": not a PNG, JPEG or PPM/PGM file (unrecognized signature)")
    writeBytes(dir.file("e.png"), [])
    #expect(errorMessage { _ = try ImageFile.read(dir.file("e.png")) } == dir.file("e.png") + ": empty file")
    #expect(errorMessage { _ = try ImageFile.read(dir.file("missing.png")) } == dir.file("missing.png") + ": cannot open (No such file or directory)")
}

@Test func badJPEGFilesAreErrorsInStrictMode() throws {
    let dir = TempDir()
    try ImageFile.writeJPEG(testImage(width: 64, height: 64, quantized: false), to: dir.file("t.jpg"))
    let size = fileBytes(dir.file("t.jpg")).count
    truncate(dir.file("t.jpg"), to: size / 2)
    let truncated = errorMessage { _ = try ImageFile.read(dir.file("t.jpg")) }
    #expect(truncated?.hasPrefix(dir.file("t.jpg") + ": truncated JPEG (libjpeg: Premature end") == true)

    writeBytes(dir.file("g.jpg"), [0xFF, 0xD8] + [UInt8](repeating: 0x37, count: 100))
    let garbage = errorMessage { _ = try ImageFile.read(dir.file("g.jpg")) }
    #expect(garbage?.hasPrefix(dir.file("g.jpg") + ": ") == true)
    #expect(garbage?.contains("JPEG (libjpeg:") == true)
    #expect(errorMessage { _ = try ImageFile.read(dir.file("none.jpg")) }?.contains("cannot open") == true)
}

@Test func truncatedPPMIsAnError() throws {
    let dir = TempDir()
    try ImageFile.writePPM(testImage(width: 8, height: 8), to: dir.file("a.ppm"))
    truncate(dir.file("a.ppm"), to: 100)
    #expect(errorMessage { _ = try ImageFile.read(dir.file("a.ppm")) } == dir.file("a.ppm") + ": truncated PPM/PGM (expected 192 bytes of pixels, found 89)")
}
