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
