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
}
