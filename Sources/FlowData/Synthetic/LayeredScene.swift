// A layered scene: a background that moves with the camera and foreground layers, each with its own
// rotation, zoom and translation on top of the camera motion, depth-ordered so they occlude one
// another. Rendering gives both frames, the exact forward and backward flow, and the occlusion masks
// of both frames; PairPhotometrics then adds the change between the frames a real camera sees.
import Foundation
import Tensor

struct LayeredScene {
    let width: Int, height: Int
    /// 0 = background; a higher index is nearer.
    var layers: [Layer<NaturalTexture>] = []

    init(config: LayeredConfig, rng: inout RandomGenerator) {
        width = config.width
        height = config.height
        let w = Double(width), h = Double(height)
        let cx = (w - 1) / 2, cy = (h - 1) / 2
        func clippedNormal(_ rng: inout RandomGenerator) -> Double { min(max(rng.normal(), -3), 3) }
        let degree = Double.pi / 180
        let zoom = 1 + clippedNormal(&rng) * config.cameraZoom
        let camera = Affine2.motion(center: cx, cy, angle: clippedNormal(&rng) * config.cameraRotation * degree,
                                    scaleX: zoom, scaleY: zoom,
                                    shiftX: clippedNormal(&rng) * config.cameraShift * w, shiftY: clippedNormal(&rng) * config.cameraShift * w)
        // The background's texture must cover frame 1 and everything frame 2 sees of it.
        let back = camera.inverse
        var bx0 = -2.0, by0 = -2.0, bx1 = w + 2, by1 = h + 2
        for (x, y) in [(0.0, 0.0), (w, 0), (0, h), (w, h)] {
            let (px, py) = back.apply(x, y)
            bx0 = min(bx0, px - 2); bx1 = max(bx1, px + 2); by0 = min(by0, py - 2); by1 = max(by1, py + 2)
        }
        layers.append(Layer(shape: .everything,
                                   texture: NaturalTexture(rng: &rng, x0: bx0, y0: by0, x1: bx1, y1: by1), motion: camera))
        let count = config.minLayers + rng.int(below: config.maxLayers - config.minLayers + 1)
        let side = min(w, h)
        for _ in 0..<count {
            let radius = side * rng.uniform(0.06, 0.35)
            let lx = rng.uniform(-0.1, 1.1) * w, ly = rng.uniform(-0.1, 1.1) * h
            let shape = Shape.random(center: lx, ly, radius: radius, rng: &rng)
            let texture = NaturalTexture(rng: &rng, x0: shape.minX, y0: shape.minY, x1: shape.maxX, y1: shape.maxY)
            var own = Affine2(a: 1, b: 0, c: 0, d: 1, tx: 0, ty: 0)
            if rng.chance(0.85) {
                let magnitude = config.maxShift * w * Foundation.pow(rng.uniform(), 2)
                let direction = rng.uniform(0, 2 * Double.pi)
                let z = 1 + rng.uniform(-1, 1) * config.layerZoom
                own = Affine2.motion(center: lx, ly, angle: rng.uniform(-1, 1) * config.layerRotation * degree,
                                     scaleX: z, scaleY: z * (1 + rng.uniform(-0.02, 0.02)),
                                     shiftX: magnitude * cos(direction), shiftY: magnitude * sin(direction))
            }
            layers.append(Layer(shape: shape, texture: texture, motion: camera.after(own)))
        }
    }

    /// The nearest layer covering frame-1 point (x, y) (the background covers everything).
    @inline(__always) func layerInFrame1(_ x: Double, _ y: Double) -> Int {
        var k = layers.count - 1
        while k > 0 && !layers[k].shape.contains(x, y) { k -= 1 }
        return k
    }

    /// The nearest layer covering frame-2 point (x, y), with the point's position in that layer.
    @inline(__always) func layerInFrame2(_ x: Double, _ y: Double) -> (Int, Double, Double) {
        var m = layers.count - 1
        while true {
            let (covers, lx, ly) = layers[m].coversInFrame2(x, y)
            if covers || m == 0 { return (m, lx, ly) }
            m -= 1
        }
    }

    /// Both frames (3, h, w) in [0, 1] before photometric change, flows (2, h, w) and occlusion
    /// masks (h, w: 1 where the pixel is not seen in the other frame), at 1/`supersample` of the
    /// scene's size. A pixel's colour is the mean of the supersample² scene pixels under it (the
    /// area a camera pixel integrates); its flow and occlusion are exact at its centre.
    func render(supersample k: Int = 1) -> (image1: [Float], image2: [Float], forward: [Float], backward: [Float],
                                            occlusion: [UInt8], occlusionBackward: [UInt8]) {
        let w = width / k, h = height / k, n = w * h
        var image1 = [Float](repeating: 0, count: 3 * n), image2 = [Float](repeating: 0, count: 3 * n)
        var forward = [Float](repeating: 0, count: 2 * n), backward = [Float](repeating: 0, count: 2 * n)
        var occ1 = [UInt8](repeating: 0, count: n), occ2 = [UInt8](repeating: 0, count: n)
        let scale = Double(k), inverse = 1 / Double(k), area = 1 / Double(k * k)
        let maxX = Double(w - 1), maxY = Double(h - 1)
        /// Scene coordinate → output pixel coordinate.
        func output(_ s: Double) -> Double { k == 1 ? s : (s + 0.5) * inverse - 0.5 }
        func outside(_ sx: Double, _ sy: Double) -> Bool {
            let ox = output(sx), oy = output(sy)
            return ox < 0 || oy < 0 || ox > maxX || oy > maxY
        }
        for y in 0..<h {
            let fy = (Double(y) + 0.5) * scale - 0.5
            for x in 0..<w {
                let fx = (Double(x) + 0.5) * scale - 0.5, i = y * w + x
                // Frame 1: layer k at the centre moves to q; occluded when q leaves the frame or a
                // nearer layer covers q in frame 2.
                let k1 = layerInFrame1(fx, fy)
                let (qx, qy) = layers[k1].motion.apply(fx, fy)
                forward[i] = Float((qx - fx) * inverse); forward[n + i] = Float((qy - fy) * inverse)
                var hidden = outside(qx, qy)
                if !hidden { hidden = layerInFrame2(qx, qy).0 > k1 }
                occ1[i] = hidden ? 1 : 0
                // Frame 2: layer m at the centre came from p; occluded in frame 1 symmetrically.
                let (m, px, py) = layerInFrame2(fx, fy)
                backward[i] = Float((px - fx) * inverse); backward[n + i] = Float((py - fy) * inverse)
                var unseen = outside(px, py)
                if !unseen { unseen = layerInFrame1(px, py) > m }
                occ2[i] = unseen ? 1 : 0
                var c1: RGB, c2: RGB
                if k == 1 {
                    c1 = layers[k1].texture.colour(fx, fy)
                    c2 = layers[m].texture.colour(px, py)
                } else {
                    c1 = (0, 0, 0); c2 = (0, 0, 0)
                    for sy in 0..<k {
                        let ty = Double(y * k + sy)
                        for sx in 0..<k {
                            let tx = Double(x * k + sx)
                            let a = layers[layerInFrame1(tx, ty)].texture.colour(tx, ty)
                            let (mb, bx, by) = layerInFrame2(tx, ty)
                            let b = layers[mb].texture.colour(bx, by)
                            c1 = (c1.0 + a.0, c1.1 + a.1, c1.2 + a.2); c2 = (c2.0 + b.0, c2.1 + b.1, c2.2 + b.2)
                        }
                    }
                    c1 = (c1.0 * area, c1.1 * area, c1.2 * area); c2 = (c2.0 * area, c2.1 * area, c2.2 * area)
                }
                image1[i] = Float(c1.0); image1[n + i] = Float(c1.1); image1[2 * n + i] = Float(c1.2)
                image2[i] = Float(c2.0); image2[n + i] = Float(c2.1); image2[2 * n + i] = Float(c2.2)
            }
        }
        return (image1, image2, forward, backward, occ1, occ2)
    }
}

extension Affine2 {
    /// self ∘ other: first `other`, then `self`.
    func after(_ o: Affine2) -> Affine2 {
        Affine2(a: a * o.a + b * o.c, b: a * o.b + b * o.d, c: c * o.a + d * o.c, d: c * o.b + d * o.d,
                tx: a * o.tx + b * o.ty + tx, ty: c * o.tx + d * o.ty + ty)
    }
}
