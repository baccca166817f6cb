// The quick start's synthetic dataset: textured layers under independent affine motions, depth-ordered
// so they occlude one another, with exact forward/backward flow and occlusion masks. Written in
// the FlyingChairs-style layout (`FlyingChairs(root:)` reads it), deterministic by seed.
import Foundation
import Tensor

/// What `SyntheticDataset.generate` writes. Every key has a default; `mdflow generate-dataset`
/// sets pairs, size and seed.
public struct SyntheticConfig: Codable, Sendable, Equatable, GeneratedPairsConfig {
    /// Number of image pairs.
    public var pairs: Int = 2000
    public var height: Int = 256
    public var width: Int = 320
    /// Same seed → identical bytes.
    public var seed: UInt64 = 0
    /// Largest displacement per axis, in pixels, of any layer (about; rotations add a little).
    public var maxDisplacement: Double = 20
    /// Range (inclusive) of the number of foreground layers per pair.
    public var minLayers: Int = 3
    public var maxLayers: Int = 6
    /// Every `validationEvery`-th pair (the 10th, 20th, …) is in the validation split (2 in
    /// split.txt); 0 puts every pair in training.
    public var validationEvery: Int = 10
    /// zlib level of the PNGs (1: fast, about 10% larger than 6).
    public var compression: Int = 1

    public init() {}

    public init(pairs: Int = 2000, height: Int = 256, width: Int = 320, seed: UInt64 = 0) {
        self.pairs = pairs
        self.height = height
        self.width = width
        self.seed = seed
    }

    /// Problems with the values, as "key: reason" lines (empty when usable).
    public func problems() -> [String] {
        var p = layoutProblems(minSide: 8, maxLayerCount: 32)
        if !(maxDisplacement >= 0) { p.append("maxDisplacement: must be ≥ 0, got \(maxDisplacement)") }
        return p
    }
}

/// What the two generators' configurations share: the pairs, their size and layers, the split
/// and the PNG compression.
protocol GeneratedPairsConfig: Encodable {
    var pairs: Int { get }
    var height: Int { get }
    var width: Int { get }
    var minLayers: Int { get }
    var maxLayers: Int { get }
    var validationEvery: Int { get }
    var compression: Int { get }
}

extension GeneratedPairsConfig {
    /// Problems with the shared keys, as "key: reason" lines.
    func layoutProblems(minSide: Int, maxLayerCount: Int) -> [String] {
        var p: [String] = []
        if pairs < 1 { p.append("pairs: must be at least 1, got \(pairs)") }
        if height < minSide || width < minSide { p.append("size: must be at least \(minSide)×\(minSide), got \(height)×\(width)") }
        if height * width > 1 << 24 { p.append("size: \(height)×\(width) is too large") }
        if minLayers < 0 || maxLayers < minLayers || maxLayers > maxLayerCount {
            p.append("layers: need 0 ≤ minLayers ≤ maxLayers ≤ \(maxLayerCount), got \(minLayers)...\(maxLayers)")
        }
        if validationEvery < 0 { p.append("validationEvery: must be ≥ 0, got \(validationEvery)") }
        if !(0...9).contains(compression) { p.append("compression: must be 0-9, got \(compression)") }
        return p
    }

    /// 1 (train) or 2 (validation) for pair `index` (0-based), as written to split.txt.
    func splitCode(of index: Int) -> Int {
        validationEvery > 0 && (index + 1) % validationEvery == 0 ? 2 : 1
    }
}

/// One rendered pair, in the bytes that are written.
public struct SyntheticPair: Sendable {
    public let width: Int
    public let height: Int
    /// (H, W, 3) 8-bit RGB of frame 1 and frame 2.
    public var image1: [UInt8]
    public var image2: [UInt8]
    /// (2, H, W) exact flow frame 1 → frame 2, and frame 2 → frame 1.
    public var forward: [Float]
    public var backward: [Float]
    /// (H, W): 255 where the frame-1 pixel is occluded or leaves the frame in frame 2, else 0.
    public var occlusion: [UInt8]
    /// (H, W): the same for frame-2 pixels not seen in frame 1 (nil: not rendered).
    public var occlusionBackward: [UInt8]? = nil

    public func rgbImage1() -> RGBImage { Self.rgb(image1, width, height) }
    public func rgbImage2() -> RGBImage { Self.rgb(image2, width, height) }
    public func forwardFlow() -> FlowField { FlowField(width: width, height: height, uv: forward, valid: [Float](repeating: 1, count: width * height)) }
    public func backwardFlow() -> FlowField { FlowField(width: width, height: height, uv: backward, valid: [Float](repeating: 1, count: width * height)) }

    static func rgb(_ bytes: [UInt8], _ w: Int, _ h: Int) -> RGBImage {
        let n = w * h
        var p = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n { for c in 0..<3 { p[c * n + i] = Float(bytes[3 * i + c]) / 255 } }
        return RGBImage(width: w, height: h, pixels: p)
    }
}

/// The first error and the pairs done, shared by the generation workers.
private final class GenerationProgress: @unchecked Sendable {
    let lock = NSLock()
    var error: Error?
    var done = 0
}

public enum SyntheticDataset {
    /// File name stem of pair `index` (0-based): "00001" for the first pair.
    public static func stem(_ index: Int) -> String {
        let s = String(index + 1)
        return s.count >= 5 ? s : String(repeating: "0", count: 5 - s.count) + s
    }

    /// Writes `config.pairs` pairs into `directory`/data/ and `directory`/split.txt (plus
    /// `synthetic.json`, the config). Pairs are rendered in parallel on `threads` threads, each
    /// from its own seeded generator, so the bytes do not depend on the thread count.
    /// `progress` is called (from worker threads) with the number of pairs done so far.
    public static func generate(_ config: SyntheticConfig, to directory: String, threads: Int = Runtime.threads,
                                progress: (@Sendable (Int) -> Void)? = nil) throws {
        let problems = config.problems()
        if !problems.isEmpty { throw DataError(path: directory, reason: "invalid synthetic config: " + problems.joined(separator: "; ")) }
        try writePairs(config, to: directory, threads: threads, configFile: "synthetic.json",
                       progress: progress) { renderPair(config, index: $0) }
    }

    /// Renders `config.pairs` pairs with `render` on `threads` threads and writes them into
    /// `directory`/data/, then split.txt and the config as JSON (`configFile`).
    static func writePairs<Config: GeneratedPairsConfig>(_ config: Config, to directory: String, threads: Int, configFile: String,
                                                         progress: (@Sendable (Int) -> Void)?,
                                                         render: @escaping @Sendable (Int) -> SyntheticPair) throws {
        let count = config.pairs, compression = config.compression
        StorageMemory.keepLargeBlocks()  // each pair allocates a few MB; keep them out of mmap/munmap
        let data = joinPath(directory, "data")
        do {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        } catch {
            throw DataError(path: data, reason: "cannot create directory (\(error.localizedDescription))")
        }
        let shared = GenerationProgress()
        let workers = max(1, min(threads, count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var index = worker
            while index < count {
                shared.lock.lock()
                let failed = shared.error != nil
                shared.lock.unlock()
                if failed { return }
                do {
                    try write(render(index), compression: compression, stem: joinPath(data, stem(index)))
                } catch {
                    shared.lock.lock()
                    if shared.error == nil { shared.error = error }
                    shared.lock.unlock()
                    return
                }
                shared.lock.lock()
                shared.done += 1
                let done = shared.done
                shared.lock.unlock()
                progress?(done)
                index += workers
            }
        }
        if let error = shared.error { throw error }
        let split = (0..<count).map { "\(config.splitCode(of: $0))\n" }.joined()
        try Array(split.utf8).withUnsafeBytes { try writeFileBytes(joinPath(directory, "split.txt"), $0) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = (try? encoder.encode(config)) ?? Data()
        try json.withUnsafeBytes { try writeFileBytes(joinPath(directory, configFile), $0) }
    }

    static func write(_ pair: SyntheticPair, compression: Int, stem: String) throws {
        let w = pair.width, h = pair.height
        try pair.image1.withUnsafeBufferPointer {
            try ImageFile.writePNG(rgbBytes: $0.baseAddress!, width: w, height: h, channels: 3, to: stem + "_img1.png", compression: compression)
        }
        try pair.image2.withUnsafeBufferPointer {
            try ImageFile.writePNG(rgbBytes: $0.baseAddress!, width: w, height: h, channels: 3, to: stem + "_img2.png", compression: compression)
        }
        try pair.occlusion.withUnsafeBufferPointer {
            try ImageFile.writePNG(rgbBytes: $0.baseAddress!, width: w, height: h, channels: 1, to: stem + "_occ.png", compression: compression)
        }
        if let back = pair.occlusionBackward {
            try back.withUnsafeBufferPointer {
                try ImageFile.writePNG(rgbBytes: $0.baseAddress!, width: w, height: h, channels: 1, to: stem + "_occ_bw.png", compression: compression)
            }
        }
        try FlowFile.writeFlo(pair.forwardFlow(), to: stem + "_flow.flo")
        try FlowFile.writeFlo(pair.backwardFlow(), to: stem + "_flow_bw.flo")
    }

    /// Renders pair `index` (0-based) of the dataset `config` describes, in memory.
    public static func renderPair(_ config: SyntheticConfig, index: Int) -> SyntheticPair {
        var rng = RandomGenerator(seed: config.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03 &+ 0x5851_F42D)
        let scene = Scene(config: config, rng: &rng)
        return scene.render()
    }
}

// MARK: scene model

/// p ↦ A·p + b.
struct Affine2 {
    var a: Double, b: Double, c: Double, d: Double  // [[a, b], [c, d]]
    var tx: Double, ty: Double

    @inline(__always) func apply(_ x: Double, _ y: Double) -> (Double, Double) {
        (a * x + b * y + tx, c * x + d * y + ty)
    }

    var inverse: Affine2 {
        let det = a * d - b * c
        let ia = d / det, ib = -b / det, ic = -c / det, id = a / det
        return Affine2(a: ia, b: ib, c: ic, d: id, tx: -(ia * tx + ib * ty), ty: -(ic * tx + id * ty))
    }

    /// Rotation by θ and per-axis scale about `center`, then translation.
    static func motion(center cx: Double, _ cy: Double, angle: Double, scaleX: Double, scaleY: Double,
                       shiftX: Double, shiftY: Double) -> Affine2 {
        let cs = cos(angle), sn = sin(angle)
        let a = cs * scaleX, b = -sn * scaleY, c = sn * scaleX, d = cs * scaleY
        return Affine2(a: a, b: b, c: c, d: d, tx: cx + shiftX - (a * cx + b * cy), ty: cy + shiftY - (c * cx + d * cy))
    }
}

/// A procedural texture defined in the layer's own (frame-1) coordinates, so it moves with it.
/// Two independent fractal value noises (detail from tens of pixels down to about one pixel, with
/// a contrast stretch) mix three colours, so every patch has 2-D structure at every pyramid level
/// and a flow net can see motion in any direction; sometimes an anti-aliased stripe pattern (sharp
/// edges), and a linear colour gradient.
struct Texture {
    var seed: UInt32
    var baseScale: Double          // pixels per noise cell at the coarsest octave
    var octaves: Int
    var contrast: Double
    var colorA: (Double, Double, Double)
    var colorB: (Double, Double, Double)
    var colorC: (Double, Double, Double)
    var stripeColor: (Double, Double, Double)
    var stripeStrength: Double
    var stripeDirection: (Double, Double)
    var stripePeriod: Double
    var gradientDirection: (Double, Double)
    var gradientColor: (Double, Double, Double)
    var origin: (Double, Double)

    init(rng: inout RandomGenerator, size: Double) {
        seed = UInt32(truncatingIfNeeded: rng.next())
        baseScale = rng.uniform(12, 40)
        octaves = 5
        contrast = rng.uniform(2, 3.5)
        func colour(_ rng: inout RandomGenerator) -> (Double, Double, Double) { (rng.uniform(), rng.uniform(), rng.uniform()) }
        colorA = colour(&rng)
        colorB = colour(&rng)
        colorC = colour(&rng)
        stripeColor = colour(&rng)
        stripeStrength = rng.chance(0.25) ? rng.uniform(0.2, 0.6) : 0
        let s = rng.uniform(0, 2 * Double.pi)
        stripeDirection = (cos(s), sin(s))
        stripePeriod = rng.uniform(6, 40)
        let g = rng.uniform(0, 2 * Double.pi)
        let length = max(size, 1)
        gradientDirection = (cos(g) / length, sin(g) / length)
        gradientColor = (rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3))
        origin = (rng.uniform(-1000, 1000), rng.uniform(-1000, 1000))
    }

    @inline(__always) static func hash(_ x: Int32, _ y: Int32, _ seed: UInt32) -> Double {
        var h = UInt32(bitPattern: x) &* 0x8DA6_B343 ^ UInt32(bitPattern: y) &* 0xD816_3841 ^ seed &* 0xCB1A_B31F
        h ^= h >> 15
        h &*= 0x2C1B_3C6D
        h ^= h >> 12
        h &*= 0x297A_2D39
        h ^= h >> 15
        return Double(h) * (1.0 / 4_294_967_296.0)
    }

    /// Smooth value noise in [0, 1) at (x, y) in cell units.
    @inline(__always) func valueNoise(_ x: Double, _ y: Double, _ octave: UInt32) -> Double {
        var ix = Int(x), iy = Int(y)  // floor without a libm call
        if Double(ix) > x { ix -= 1 }
        if Double(iy) > y { iy -= 1 }
        let fx = Double(ix), fy = Double(iy)
        var tx = x - fx, ty = y - fy
        tx = tx * tx * (3 - 2 * tx)
        ty = ty * ty * (3 - 2 * ty)
        let s = seed &+ octave &* 0x9E37_79B9
        let cx = Int32(truncatingIfNeeded: ix), cy = Int32(truncatingIfNeeded: iy)
        let v00 = Texture.hash(cx, cy, s), v10 = Texture.hash(cx &+ 1, cy, s)
        let v01 = Texture.hash(cx, cy &+ 1, s), v11 = Texture.hash(cx &+ 1, cy &+ 1, s)
        let top = v00 + (v10 - v00) * tx, bottom = v01 + (v11 - v01) * tx
        return top + (bottom - top) * ty
    }

    /// Fractal noise in [0, 1] at (px, py) in pixels: `octaves` value-noise octaves (lacunarity 2,
    /// persistence 0.6), stretched by `contrast` about 0.5 and clamped.
    @inline(__always) func fractal(_ px: Double, _ py: Double, _ salt: UInt32) -> Double {
        var n = 0.0, amplitude = 1.0, total = 0.0, scale = 1 / baseScale
        for o in 0..<octaves {
            n += amplitude * valueNoise(px * scale, py * scale, UInt32(o) &+ salt)
            total += amplitude
            amplitude *= 0.6
            scale *= 2
        }
        return min(max(0.5 + (n / total - 0.5) * contrast, 0), 1)
    }

    /// RGB in [0, 1] at layer coordinates (x, y).
    @inline(__always) func color(_ x: Double, _ y: Double) -> (Double, Double, Double) {
        let px = x + origin.0, py = y + origin.1
        let n = fractal(px, py, 0), m = fractal(px, py, 16)
        var r = colorA.0 + (colorB.0 - colorA.0) * n, g = colorA.1 + (colorB.1 - colorA.1) * n, b = colorA.2 + (colorB.2 - colorA.2) * n
        r += (colorC.0 - r) * m; g += (colorC.1 - g) * m; b += (colorC.2 - b) * m
        if stripeStrength > 0 {
            // Square wave along stripeDirection with edges about one pixel wide.
            let t = (x * stripeDirection.0 + y * stripeDirection.1) / stripePeriod
            var f = t - Double(Int(t))
            if f < 0 { f += 1 }
            let edge = min(max((abs(f - 0.5) - 0.25) * stripePeriod + 0.5, 0), 1) * stripeStrength
            r += (stripeColor.0 - r) * edge
            g += (stripeColor.1 - g) * edge
            b += (stripeColor.2 - b) * edge
        }
        let grad = x * gradientDirection.0 + y * gradientDirection.1
        r += gradientColor.0 * grad
        g += gradientColor.1 * grad
        b += gradientColor.2 * grad
        return (min(max(r, 0), 1), min(max(g, 0), 1), min(max(b, 0), 1))
    }
}

/// A region in layer (frame-1) coordinates: an ellipse or a star-shaped polygon.
struct Shape {
    enum Kind { case everything, ellipse, polygon }
    var kind: Kind
    var cx = 0.0, cy = 0.0
    var cosA = 1.0, sinA = 0.0, invRx2 = 0.0, invRy2 = 0.0
    var xs: [Double] = [], ys: [Double] = []
    /// Bounding box in layer coordinates.
    var minX = -Double.infinity, maxX = Double.infinity, minY = -Double.infinity, maxY = Double.infinity

    static let everything = Shape(kind: .everything)

    static func random(center cx: Double, _ cy: Double, radius: Double, rng: inout RandomGenerator) -> Shape {
        var s = Shape(kind: rng.chance(0.5) ? .ellipse : .polygon)
        s.cx = cx
        s.cy = cy
        if s.kind == .ellipse {
            let rx = radius * rng.uniform(0.5, 1), ry = radius * rng.uniform(0.5, 1)
            let angle = rng.uniform(0, Double.pi)
            s.cosA = cos(angle); s.sinA = sin(angle)
            s.invRx2 = 1 / (rx * rx); s.invRy2 = 1 / (ry * ry)
            s.minX = cx - radius; s.maxX = cx + radius; s.minY = cy - radius; s.maxY = cy + radius
        } else {
            let count = 3 + rng.int(below: 6)
            let start = rng.uniform(0, 2 * Double.pi)
            for k in 0..<count {
                let angle = start + 2 * Double.pi * (Double(k) + rng.uniform(0.1, 0.9)) / Double(count)
                let r = radius * rng.uniform(0.45, 1)
                s.xs.append(cx + r * cos(angle))
                s.ys.append(cy + r * sin(angle))
            }
            s.minX = s.xs.min()!; s.maxX = s.xs.max()!; s.minY = s.ys.min()!; s.maxY = s.ys.max()!
        }
        return s
    }

    @inline(__always) func contains(_ x: Double, _ y: Double) -> Bool {
        if kind == .everything { return true }
        if x < minX || x > maxX || y < minY || y > maxY { return false }
        if kind == .ellipse {
            let dx = x - cx, dy = y - cy
            let u = cosA * dx + sinA * dy, v = -sinA * dx + cosA * dy
            return u * u * invRx2 + v * v * invRy2 <= 1
        }
        var inside = false
        var j = xs.count - 1
        for i in 0..<xs.count {
            if (ys[i] > y) != (ys[j] > y) {
                let xCross = xs[i] + (y - ys[i]) * (xs[j] - xs[i]) / (ys[j] - ys[i])
                if x < xCross { inside.toggle() }
            }
            j = i
        }
        return inside
    }
}

/// One depth layer: what it looks like (`Surface`, a texture in the layer's frame-1 coordinates),
/// where it is in frame 1, and how it moves to frame 2.
struct Layer<Surface> {
    var shape: Shape
    var texture: Surface
    var motion: Affine2       // frame-1 position ↦ frame-2 position
    var inverse: Affine2      // frame-2 position ↦ frame-1 (layer) position
    /// Bounding box of the layer in frame 2.
    var minX2 = -Double.infinity, maxX2 = Double.infinity, minY2 = -Double.infinity, maxY2 = Double.infinity

    init(shape: Shape, texture: Surface, motion: Affine2) {
        self.shape = shape
        self.texture = texture
        self.motion = motion
        self.inverse = motion.inverse
        if shape.kind != .everything {
            let corners = [(shape.minX, shape.minY), (shape.maxX, shape.minY), (shape.minX, shape.maxY), (shape.maxX, shape.maxY)]
                .map { motion.apply($0.0, $0.1) }
            minX2 = corners.map(\.0).min()!; maxX2 = corners.map(\.0).max()!
            minY2 = corners.map(\.1).min()!; maxY2 = corners.map(\.1).max()!
        }
    }

    /// Whether the layer covers frame-2 point (x, y); if so, also its frame-1 position.
    @inline(__always) func coversInFrame2(_ x: Double, _ y: Double) -> (Bool, Double, Double) {
        if x < minX2 || x > maxX2 || y < minY2 || y > maxY2 { return (false, 0, 0) }
        let (px, py) = inverse.apply(x, y)
        return (shape.contains(px, py), px, py)
    }
}

struct Scene {
    let width: Int, height: Int
    var layers: [Layer<Texture>] = []   // 0 = background; higher index is nearer

    init(config: SyntheticConfig, rng: inout RandomGenerator) {
        width = config.width
        height = config.height
        let w = Double(width), h = Double(height)
        let reach = config.maxDisplacement
        let frameRadius = 0.5 * (w * w + h * h).squareRoot()
        // Background: a gentle camera-like motion about the image centre.
        let bgAngle = rng.uniform(-1, 1) * min(0.1, 0.25 * reach / frameRadius)
        let bgScale = 1 + rng.uniform(-1, 1) * min(0.1, 0.25 * reach / frameRadius)
        let background = Affine2.motion(center: (w - 1) / 2, (h - 1) / 2, angle: bgAngle,
                                        scaleX: bgScale, scaleY: bgScale * (1 + rng.uniform(-0.01, 0.01)),
                                        shiftX: rng.uniform(-0.5, 0.5) * reach, shiftY: rng.uniform(-0.5, 0.5) * reach)
        layers.append(Layer(shape: .everything, texture: Texture(rng: &rng, size: max(w, h)), motion: background))
        let count = config.minLayers + rng.int(below: config.maxLayers - config.minLayers + 1)
        let side = min(w, h)
        for _ in 0..<count {
            let radius = side * rng.uniform(0.1, 0.3)
            let cx = rng.uniform(-0.1, 1.1) * w, cy = rng.uniform(-0.1, 1.1) * h
            let shape = Shape.random(center: cx, cy, radius: radius, rng: &rng)
            let texture = Texture(rng: &rng, size: 2 * radius)
            let angle = rng.uniform(-1, 1) * min(0.3, 0.25 * reach / radius)
            let scaleRange = min(0.1, 0.15 * reach / radius)
            let motion = Affine2.motion(center: cx, cy, angle: angle,
                                        scaleX: 1 + rng.uniform(-1, 1) * scaleRange, scaleY: 1 + rng.uniform(-1, 1) * scaleRange,
                                        shiftX: rng.uniform(-0.6, 0.6) * reach, shiftY: rng.uniform(-0.6, 0.6) * reach)
            layers.append(Layer(shape: shape, texture: texture, motion: motion))
        }
    }

    func render() -> SyntheticPair {
        let w = width, h = height, n = w * h
        var image1 = [UInt8](repeating: 0, count: 3 * n), image2 = [UInt8](repeating: 0, count: 3 * n)
        var forward = [Float](repeating: 0, count: 2 * n), backward = [Float](repeating: 0, count: 2 * n)
        var occlusion = [UInt8](repeating: 0, count: n)
        let top = layers.count - 1
        @inline(__always) func store(_ buffer: UnsafeMutablePointer<UInt8>, _ i: Int, _ c: (Double, Double, Double)) {
            buffer[3 * i] = UInt8(c.0 * 255 + 0.5)
            buffer[3 * i + 1] = UInt8(c.1 * 255 + 0.5)
            buffer[3 * i + 2] = UInt8(c.2 * 255 + 0.5)
        }
        layers.withUnsafeBufferPointer { L in
        image1.withUnsafeMutableBufferPointer { image1 in
        image2.withUnsafeMutableBufferPointer { image2 in
        forward.withUnsafeMutableBufferPointer { forward in
        backward.withUnsafeMutableBufferPointer { backward in
        occlusion.withUnsafeMutableBufferPointer { occlusion in
            let i1 = image1.baseAddress!, i2 = image2.baseAddress!
            for y in 0..<h {
                let fy = Double(y)
                for x in 0..<w {
                    let fx = Double(x), i = y * w + x
                    // Frame 1: the nearest layer covering (x, y).
                    var k = top
                    while k > 0 && !L[k].shape.contains(fx, fy) { k -= 1 }
                    store(i1, i, L[k].texture.color(fx, fy))
                    let (qx, qy) = L[k].motion.apply(fx, fy)
                    forward[i] = Float(qx - fx)
                    forward[n + i] = Float(qy - fy)
                    // Occluded: leaves the frame, or a nearer layer covers its frame-2 position.
                    var occluded = qx < 0 || qy < 0 || qx > Double(w - 1) || qy > Double(h - 1)
                    if !occluded {
                        var j = top
                        while j > k {
                            if L[j].coversInFrame2(qx, qy).0 { occluded = true; break }
                            j -= 1
                        }
                    }
                    occlusion[i] = occluded ? 255 : 0
                    // Frame 2: the nearest layer covering (x, y) after its motion (the background
                    // covers everything).
                    var m = top
                    var px = 0.0, py = 0.0
                    while true {
                        let (covers, lx, ly) = L[m].coversInFrame2(fx, fy)
                        if covers || m == 0 { px = lx; py = ly; break }
                        m -= 1
                    }
                    store(i2, i, L[m].texture.color(px, py))
                    backward[i] = Float(px - fx)
                    backward[n + i] = Float(py - fy)
                }
            }
        }
        }
        }
        }
        }
        }
        return SyntheticPair(width: w, height: h, image1: image1, image2: image2, forward: forward, backward: backward,
                             occlusion: occlusion)
    }
}
