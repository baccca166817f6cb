// Flow visualization with the Middlebury colour wheel (Baker et al., "A Database and Evaluation
// Methodology for Optical Flow"): hue encodes direction, saturation encodes magnitude.
import Foundation

public enum FlowViz {
    /// The 55 wheel colours (RGB in [0, 1]): red→yellow (15), yellow→green (6), green→cyan (4),
    /// cyan→blue (11), blue→magenta (13), magenta→red (6).
    public static let wheel: [(Float, Float, Float)] = {
        var colours: [(Float, Float, Float)] = []
        let segments: [(Int, (Float, Float, Float), (Float, Float, Float))] = [
            (15, (1, 0, 0), (1, 1, 0)), (6, (1, 1, 0), (0, 1, 0)), (4, (0, 1, 0), (0, 1, 1)),
            (11, (0, 1, 1), (0, 0, 1)), (13, (0, 0, 1), (1, 0, 1)), (6, (1, 0, 1), (1, 0, 0)),
        ]
        for (count, a, b) in segments {
            for k in 0..<count {
                let t = Float(k) / Float(count)
                colours.append((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t, a.2 + (b.2 - a.2) * t))
            }
        }
        return colours
    }()

    /// The largest finite flow magnitude over valid pixels (the automatic normalization).
    public static func maxMagnitude(_ flow: FlowField) -> Float {
        let n = flow.planeSize
        var m: Float = 0
        for i in 0..<n where flow.valid[i] > 0 {
            let r = (flow.uv[i] * flow.uv[i] + flow.uv[n + i] * flow.uv[n + i]).squareRoot()
            if r.isFinite { m = max(m, r) }
        }
        return m
    }

    /// Colours `flow`. Magnitudes are divided by `maxMagnitude` (nil: the field's own maximum);
    /// a normalized magnitude above 1 is shown darker (×0.75). Invalid and non-finite pixels are
    /// black.
    public static func colorize(_ flow: FlowField, maxMagnitude fixed: Float? = nil) -> RGBImage {
        let n = flow.planeSize
        let norm = fixed ?? maxMagnitude(flow)
        let scale = norm.isFinite ? 1 / max(norm, 1e-6) : 0
        var out = RGBImage(width: flow.width, height: flow.height)
        let colours = wheel
        let count = colours.count
        for i in 0..<n where flow.valid[i] > 0 {
            let u = flow.uv[i] * scale, v = flow.uv[n + i] * scale
            guard u.isFinite && v.isFinite else { continue }
            let radius = (u * u + v * v).squareRoot()
            let angle = atan2(-v, -u) / Float.pi  // in [−1, 1]
            let position = (angle + 1) / 2 * Float(count - 1)
            let k0 = min(Int(position), count - 1)
            let k1 = (k0 + 1) % count
            let f = position - Float(k0)
            let a = colours[k0], b = colours[k1]
            var rgb = [(1 - f) * a.0 + f * b.0, (1 - f) * a.1 + f * b.1, (1 - f) * a.2 + f * b.2]
            for c in 0..<3 { rgb[c] = radius <= 1 ? 1 - radius * (1 - rgb[c]) : rgb[c] * 0.75 }
            out.pixels[i] = rgb[0]
            out.pixels[n + i] = rgb[1]
            out.pixels[2 * n + i] = rgb[2]
        }
        return out
    }

    /// Writes the colour-coded flow as an 8-bit PNG.
    public static func writePNG(_ flow: FlowField, to path: String, maxMagnitude: Float? = nil) throws {
        try ImageFile.writePNG(colorize(flow, maxMagnitude: maxMagnitude), to: path)
    }

    /// `frame` (the pair's first frame, same size as `flow`) on the left and the colour-coded flow
    /// on the right, with the colour wheel in the flow's lower right corner: the wheel's rim is the
    /// normalization magnitude, written beside it in pixels. (3, H, 2W)
    public static func panel(frame: RGBImage, flow: FlowField, maxMagnitude fixed: Float? = nil) -> RGBImage {
        precondition(frame.width == flow.width && frame.height == flow.height,
                     "FlowViz.panel: frame \(frame.width)×\(frame.height), flow \(flow.width)×\(flow.height)")
        let w = flow.width, h = flow.height, norm = fixed ?? maxMagnitude(flow)
        let colours = colorize(flow, maxMagnitude: norm)
        var out = RGBImage(width: 2 * w, height: h)
        for c in 0..<3 {
            for y in 0..<h {
                for x in 0..<w {
                    out.pixels[(c * h + y) * 2 * w + x] = frame.pixels[(c * h + y) * w + x]
                    out.pixels[(c * h + y) * 2 * w + w + x] = colours.pixels[(c * h + y) * w + x]
                }
            }
        }
        // The legend: a wheel of radius r (flows of magnitude 0..norm in every direction) on a
        // white card, the magnitude of its rim above it. Skipped on frames too small to hold it.
        let r = max(8, min(w, h) / 10), scale = max(1, r / 12)
        let label = String(format: norm < 10 ? "%.1fpx" : "%.0fpx", norm)
        let labelWidth = label.count * 4 * scale, margin = max(2, r / 4)
        let cardW = max(2 * r, labelWidth) + 2 * margin, cardH = 2 * r + 6 * scale + 3 * margin
        guard cardW + 4 <= w && cardH + 4 <= h else { return out }
        let x0 = 2 * w - cardW - 4, y0 = h - cardH - 4
        func set(_ x: Int, _ y: Int, _ rgb: (Float, Float, Float)) {
            let i = y * 2 * w + x, n = 2 * w * h
            out.pixels[i] = rgb.0; out.pixels[n + i] = rgb.1; out.pixels[2 * n + i] = rgb.2
        }
        for y in y0..<(y0 + cardH) { for x in x0..<(x0 + cardW) { set(x, y, (1, 1, 1)) } }
        let cx = x0 + cardW / 2, cy = y0 + margin + 6 * scale + margin + r
        var disc = FlowField(width: 2 * r + 1, height: 2 * r + 1)
        let dn = disc.planeSize
        for y in 0...(2 * r) {
            for x in 0...(2 * r) {
                let i = y * (2 * r + 1) + x
                disc.uv[i] = Float(x - r) / Float(r) * norm
                disc.uv[dn + i] = Float(y - r) / Float(r) * norm
                if (x - r) * (x - r) + (y - r) * (y - r) > r * r { disc.valid[i] = 0 }
            }
        }
        let wheelColours = colorize(disc, maxMagnitude: norm)
        for y in 0...(2 * r) {
            for x in 0...(2 * r) where disc.valid[y * (2 * r + 1) + x] > 0 {
                let i = y * (2 * r + 1) + x
                set(cx - r + x, cy - r + y, (wheelColours.pixels[i], wheelColours.pixels[dn + i], wheelColours.pixels[2 * dn + i]))
            }
        }
        drawText(label, into: &out, x: cx - labelWidth / 2, y: y0 + margin, scale: scale)
        return out
    }

    /// 3×5 glyphs of the characters a legend needs (rows top to bottom, bit 2 = left column).
    static let glyphs: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7],
        "4": [5, 5, 7, 1, 1], "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1],
        "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7], ".": [0, 0, 0, 0, 2],
        "p": [0, 7, 5, 7, 4], "x": [0, 5, 2, 5, 5],
    ]

    /// Draws `text` in black with its top left corner at (x, y), each glyph cell 4×6 units of
    /// `scale` pixels; characters without a glyph are blank.
    static func drawText(_ text: String, into image: inout RGBImage, x: Int, y: Int, scale: Int) {
        let n = image.planeSize
        for (k, ch) in text.enumerated() {
            guard let rows = glyphs[ch] else { continue }
            for (row, bits) in rows.enumerated() {
                for col in 0..<3 where bits & (4 >> col) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = x + (k * 4 + col) * scale + dx, py = y + row * scale + dy
                            guard px >= 0 && px < image.width && py >= 0 && py < image.height else { continue }
                            let i = py * image.width + px
                            image.pixels[i] = 0; image.pixels[n + i] = 0; image.pixels[2 * n + i] = 0
                        }
                    }
                }
            }
        }
    }
}
