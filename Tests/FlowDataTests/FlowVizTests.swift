import Testing
@testable import FlowData

@Test func colorWheelMapsDirectionAndMagnitude() {
    // Pixels: right (1, 0), left (−1, 0), zero, invalid, half-length right.
    var f = FlowField(width: 5, height: 1)
    f.uv = [1, -1, 0, 3, 0.5, 0, 0, 0, 3, 0]
    f.valid[3] = 0
    let image = FlowViz.colorize(f, maxMagnitude: 1)
    func rgb(_ i: Int) -> [Float] { [image.pixels[i], image.pixels[5 + i], image.pixels[10 + i]] }
    #expect(FlowViz.wheel.count == 55)
    let right = rgb(0), left = rgb(1)
    #expect(right[0] == 1 && right[1] < 0.05 && right[2] < 0.2)   // red
    #expect(left[2] == 1 && left[0] < 0.05 && left[1] > 0.6)      // cyan-blue
    #expect(rgb(2) == [1, 1, 1])                                   // zero flow: white
    #expect(rgb(3) == [0, 0, 0])                                   // invalid: black
    #expect(abs(rgb(4)[1] - 0.5) < 0.06)                           // half saturation
    // Automatic maximum: the longest valid vector is fully saturated.
    let auto = FlowViz.colorize(f)
    #expect(FlowViz.maxMagnitude(f) == 1)
    #expect(auto.pixels[0] == 1 && auto.pixels[5] < 0.05)
}

@Test func nonFiniteFlowIsBlackAndDoesNotSetTheScale() {
    // NaN, +Inf and −Inf components (a diverged net) next to one finite vector of length 2.
    var f = FlowField(width: 4, height: 1)
    f.uv = [.nan, .infinity, 0, 2, 0, 0, -.infinity, 0]
    #expect(FlowViz.maxMagnitude(f) == 2)
    let image = FlowViz.colorize(f)
    for i in 0..<3 { #expect([image.pixels[i], image.pixels[4 + i], image.pixels[8 + i]] == [0, 0, 0], "pixel \(i)") }
    #expect(image.pixels[3] == 1)                                  // the finite vector, saturated red
    // A non-finite normalization shows every pixel as zero motion rather than trapping.
    let flat = FlowViz.colorize(f, maxMagnitude: .infinity)
    #expect(flat.pixels[3] == 1 && flat.pixels[7] == 1 && flat.pixels[11] == 1)
}

@Test func quantizeMapsNaNToZeroAndClampsInfinities() {
    var image = RGBImage(width: 3, height: 1)
    image.pixels = [.nan, .infinity, -.infinity, 0.5, 2, -1, 0, 1, .nan]
    let raw = ImageFile.quantize(image, maxValue: 255)
    // Interleaved: pixel i holds (pixels[i], pixels[3 + i], pixels[6 + i]).
    #expect(raw.samples == [0, 128, 0, 255, 255, 255, 0, 0, 0])
}
