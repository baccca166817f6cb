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

/// The panel: the frame on the left, the flow's colours on the right, and a legend card whose
/// wheel shows the colour of a flow at each offset from its centre.
@Test func panelShowsTheFrameBesideTheFlowWithAWheelLegend() {
    let w = 160, h = 120
    var frame = RGBImage(width: w, height: h)
    for i in frame.pixels.indices { frame.pixels[i] = Float(i % 7) / 7 }
    var flow = FlowField(width: w, height: h)
    for i in 0..<(w * h) { flow.uv[i] = 4 }                       // 4 px to the right everywhere
    let panel = FlowViz.panel(frame: frame, flow: flow)
    #expect(panel.width == 2 * w && panel.height == h)
    let n = panel.planeSize
    func rgb(_ x: Int, _ y: Int) -> [Float] { (0..<3).map { panel.pixels[$0 * n + y * 2 * w + x] } }
    // Left half: the frame, unchanged.
    for (x, y) in [(0, 0), (77, 51), (w - 1, h - 1)] {
        #expect(rgb(x, y) == (0..<3).map { frame.pixels[$0 * w * h + y * w + x] })
    }
    // Right half, away from the legend: the flow's colour (saturated red).
    #expect(zip(rgb(w + 5, 5), [1, 0, 0]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(rgb(w + 5, 5))")
    // The legend (lower right): a white card; the wheel's centre is zero motion (white), its rim
    // to the right of the centre is the full magnitude to the right (red), to the left cyan-blue.
    let r = min(w, h) / 10
    var white = 0, red = 0, blue = 0, black = 0
    for y in (h - 4 * r)..<h { for x in (2 * w - 4 * r)..<(2 * w) {
        let c = rgb(x, y)
        if c == [1, 1, 1] { white += 1 }
        if c[0] > 0.9 && c[1] < 0.3 && c[2] < 0.3 { red += 1 }
        if c[2] > 0.9 && c[0] < 0.3 { blue += 1 }
        if c == [0, 0, 0] { black += 1 }
    } }
    #expect(white > 0 && red > 0 && blue > 0, "legend colours: white \(white), red \(red), blue \(blue)")
    #expect(black > 0, "the scale label is drawn in black")
    // A frame too small for the legend gets the two halves only.
    let tiny = FlowViz.panel(frame: RGBImage(width: 8, height: 6), flow: FlowField(width: 8, height: 6))
    #expect(tiny.width == 16 && tiny.pixels[8] == 1)
}
