// Textures with the statistics of natural images, defined analytically in a layer's own (frame-1)
// coordinates so that both frames sample the same surface exactly:
//   - 1/f noise: value-noise octaves whose amplitude halves as the frequency doubles (the power
//     spectrum of natural images falls as 1/f²), mapped through a random palette;
//   - dead leaves: occluding discs and rotated rectangles with radii drawn from a r⁻³ law (the
//     scale-invariant model of natural images), each a flat palette colour shaded by the noise, so
//     the texture has sharp edges and flat regions at every scale.
import Foundation
import Tensor

/// A colour in [0, 1]³.
typealias RGB = (Double, Double, Double)

/// Three colours of related hue with spread-out values (a natural scene's palette).
struct Palette {
    var colours: [RGB]

    init(rng: inout RandomGenerator) {
        let hue = rng.uniform(0, 1)
        colours = (0..<3).map { _ in
            let h = hue + rng.uniform(-0.15, 0.15) + (rng.chance(0.25) ? 0.5 : 0)
            let s = rng.chance(0.3) ? rng.uniform(0, 0.15) : rng.uniform(0.1, 0.8)
            let v = rng.uniform(0.08, 1)
            return Palette.hsv(h, s, v)
        }
    }

    static func hsv(_ h: Double, _ s: Double, _ v: Double) -> RGB {
        let h6 = (h - h.rounded(.down)) * 6
        let sector = min(Int(h6), 5), f = h6 - Double(sector)
        let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
        switch sector {
        case 0: return (v, t, p)
        case 1: return (q, v, p)
        case 2: return (p, v, t)
        case 3: return (p, q, v)
        case 4: return (t, p, v)
        default: return (v, p, q)
        }
    }

    /// Colour at noise values n, m in [0, 1]: a → b along n, then towards c along m.
    @inline(__always) func mix(_ n: Double, _ m: Double) -> RGB {
        let a = colours[0], b = colours[1], c = colours[2]
        var r = a.0 + (b.0 - a.0) * n, g = a.1 + (b.1 - a.1) * n, bl = a.2 + (b.2 - a.2) * n
        r += (c.0 - r) * m; g += (c.1 - g) * m; bl += (c.2 - bl) * m
        return (r, g, bl)
    }
}

/// 1/f fractal value noise in [0, 1].
struct PinkNoise {
    var seed: UInt32
    /// Pixels per cell of the coarsest octave.
    var baseScale: Double
    var octaves: Int
    /// Contrast stretch about 0.5.
    var contrast: Double

    init(rng: inout RandomGenerator, maxScale: Double) {
        seed = UInt32(truncatingIfNeeded: rng.next())
        baseScale = rng.uniform(8, max(16, maxScale))
        octaves = max(2, Int(log2(baseScale).rounded(.up)))     // down to about one pixel
        contrast = rng.uniform(1.2, 2.5)
    }

    @inline(__always) func value(_ px: Double, _ py: Double, salt: UInt32) -> Double {
        var n = 0.0, amplitude = 1.0, total = 0.0, scale = 1 / baseScale
        for o in 0..<octaves {
            let x = px * scale, y = py * scale
            var ix = Int(x), iy = Int(y)
            if Double(ix) > x { ix -= 1 }
            if Double(iy) > y { iy -= 1 }
            var tx = x - Double(ix), ty = y - Double(iy)
            tx = tx * tx * (3 - 2 * tx)
            ty = ty * ty * (3 - 2 * ty)
            let s = seed &+ (UInt32(o) &+ salt) &* 0x9E37_79B9
            let cx = Int32(truncatingIfNeeded: ix), cy = Int32(truncatingIfNeeded: iy)
            let v00 = Texture.hash(cx, cy, s), v10 = Texture.hash(cx &+ 1, cy, s)
            let v01 = Texture.hash(cx, cy &+ 1, s), v11 = Texture.hash(cx &+ 1, cy &+ 1, s)
            let top = v00 + (v10 - v00) * tx, bottom = v01 + (v11 - v01) * tx
            n += amplitude * (top + (bottom - top) * ty)
            total += amplitude
            amplitude *= 0.5
            scale *= 2
        }
        return min(max(0.5 + (n / total - 0.5) * contrast, 0), 1)
    }
}

/// One dead leaf: a disc or a rotated rectangle with a flat colour.
struct Leaf {
    var cx: Double, cy: Double
    /// Disc: radius² in `a`, `b` unused. Rectangle: half-sides a, b along (cosA, sinA).
    var a: Double, b: Double
    var cosA: Double, sinA: Double
    var isDisc: Bool
    var colour: RGB

    @inline(__always) func contains(_ x: Double, _ y: Double) -> Bool {
        let dx = x - cx, dy = y - cy
        if isDisc { return dx * dx + dy * dy <= a }
        let u = cosA * dx + sinA * dy, v = -sinA * dx + cosA * dy
        return abs(u) <= a && abs(v) <= b
    }
}

/// A dead-leaves field over a rectangle, with a grid of cells listing the leaves that touch each
/// cell in drawing order (later leaves lie on top).
struct DeadLeaves {
    var leaves: [Leaf] = []
    var cells: [[Int32]] = []
    var x0 = 0.0, y0 = 0.0
    var cols = 0, rows = 0
    static let cell = 16.0

    /// Leaves covering [x0, x1] × [y0, y1] about `coverage` times over, radii in [rMin, rMax].
    init(x0: Double, y0: Double, x1: Double, y1: Double, rMin: Double, rMax: Double, coverage: Double,
         palette: Palette, rng: inout RandomGenerator) {
        self.x0 = x0; self.y0 = y0
        let w = max(x1 - x0, 1), h = max(y1 - y0, 1)
        cols = Int((w / Self.cell).rounded(.up)) + 1
        rows = Int((h / Self.cell).rounded(.up)) + 1
        cells = [[Int32]](repeating: [], count: cols * rows)
        // r has density ∝ r⁻³ on [rMin, rMax]: inverse CDF of 1/r².
        let lo = 1 / (rMin * rMin), hi = 1 / (rMax * rMax)
        let meanArea = Double.pi * log(rMax / rMin) / (0.5 * (lo - hi))
        let count = min(40_000, max(1, Int(coverage * w * h / meanArea)))
        leaves.reserveCapacity(count)
        for _ in 0..<count {
            let r = 1 / (lo - rng.uniform() * (lo - hi)).squareRoot()
            let cx = x0 + rng.uniform() * w, cy = y0 + rng.uniform() * h
            var c = palette.colours[rng.int(below: 3)]
            let j = rng.uniform(-0.12, 0.12)
            c = (c.0 + j + rng.uniform(-0.04, 0.04), c.1 + j + rng.uniform(-0.04, 0.04), c.2 + j + rng.uniform(-0.04, 0.04))
            let disc = rng.chance(0.65)
            let angle = rng.uniform(0, Double.pi)
            let aspect = rng.uniform(0.3, 1)
            let leaf = Leaf(cx: cx, cy: cy, a: disc ? r * r : r, b: disc ? 0 : r * aspect, cosA: cos(angle), sinA: sin(angle),
                            isDisc: disc, colour: c)
            let index = Int32(leaves.count)
            leaves.append(leaf)
            let c0 = max(0, Int((cx - r - x0) / Self.cell)), c1 = min(cols - 1, Int((cx + r - x0) / Self.cell))
            let r0 = max(0, Int((cy - r - y0) / Self.cell)), r1 = min(rows - 1, Int((cy + r - y0) / Self.cell))
            if c0 > c1 || r0 > r1 { continue }
            for row in r0...r1 { for col in c0...c1 { cells[row * cols + col].append(index) } }
        }
    }

    /// The colour of the top leaf at (x, y), or nil where no leaf lies.
    @inline(__always) func colour(_ x: Double, _ y: Double) -> RGB? {
        let fx = (x - x0) / Self.cell, fy = (y - y0) / Self.cell
        guard fx >= 0, fy >= 0, fx < Double(cols), fy < Double(rows) else { return nil }
        let list = cells[Int(fy) * cols + Int(fx)]
        var k = list.count - 1
        while k >= 0 {
            let leaf = leaves[Int(list[k])]
            if leaf.contains(x, y) { return leaf.colour }
            k -= 1
        }
        return nil
    }
}

/// A layer's surface: palette-mapped 1/f noise, optionally under dead leaves shaded by the noise.
struct NaturalTexture {
    var palette: Palette
    var noise: PinkNoise
    var leaves: DeadLeaves?
    /// How much the noise shades a leaf's flat colour.
    var shading: Double

    /// A texture for a layer whose region (layer coordinates) is [x0, x1] × [y0, y1].
    init(rng: inout RandomGenerator, x0: Double, y0: Double, x1: Double, y1: Double) {
        palette = Palette(rng: &rng)
        let side = max(min(x1 - x0, y1 - y0), 8)
        noise = PinkNoise(rng: &rng, maxScale: min(160, side / 2))
        shading = rng.uniform(0.05, 0.35)
        if rng.chance(0.6) {
            let rMax = max(3, min(side / 3, rng.uniform(20, 90)))
            leaves = DeadLeaves(x0: x0 - 2, y0: y0 - 2, x1: x1 + 2, y1: y1 + 2, rMin: rng.uniform(1, 2.5), rMax: rMax,
                                coverage: rng.uniform(1.5, 3), palette: palette, rng: &rng)
        }
    }

    @inline(__always) func colour(_ x: Double, _ y: Double) -> RGB {
        let n = noise.value(x, y, salt: 0)
        if let leaves, let c = leaves.colour(x, y) {
            let s = 1 + shading * (2 * n - 1)
            return (c.0 * s, c.1 * s, c.2 * s)
        }
        return palette.mix(n, noise.value(x, y, salt: 16))
    }
}
