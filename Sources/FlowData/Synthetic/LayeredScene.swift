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

    /// Both frames (3, H, W) in [0, 1] before photometric change, flows (2, H, W) and occlusion
    /// masks (H, W: 1 where the pixel is not seen in the other frame).
    func render() -> (image1: [Float], image2: [Float], forward: [Float], backward: [Float],
                      occlusion: [UInt8], occlusionBackward: [UInt8]) {
        let w = width, h = height, n = w * h
        var image1 = [Float](repeating: 0, count: 3 * n), image2 = [Float](repeating: 0, count: 3 * n)
        var forward = [Float](repeating: 0, count: 2 * n), backward = [Float](repeating: 0, count: 2 * n)
        var occ1 = [UInt8](repeating: 0, count: n), occ2 = [UInt8](repeating: 0, count: n)
        let maxX = Double(w - 1), maxY = Double(h - 1)
        for y in 0..<h {
            let fy = Double(y)
            for x in 0..<w {
                let fx = Double(x), i = y * w + x
                // Frame 1: layer k at (x, y) moves to q; occluded when q leaves the frame or a
                // nearer layer covers q in frame 2.
                let k = layerInFrame1(fx, fy)
                let c1 = layers[k].texture.colour(fx, fy)
                image1[i] = Float(c1.0); image1[n + i] = Float(c1.1); image1[2 * n + i] = Float(c1.2)
                let (qx, qy) = layers[k].motion.apply(fx, fy)
                forward[i] = Float(qx - fx); forward[n + i] = Float(qy - fy)
                var hidden = qx < 0 || qy < 0 || qx > maxX || qy > maxY
                if !hidden { hidden = layerInFrame2(qx, qy).0 > k }
                occ1[i] = hidden ? 1 : 0
                // Frame 2: layer m at (x, y) came from p; occluded in frame 1 symmetrically.
                let (m, px, py) = layerInFrame2(fx, fy)
                let c2 = layers[m].texture.colour(px, py)
                image2[i] = Float(c2.0); image2[n + i] = Float(c2.1); image2[2 * n + i] = Float(c2.2)
                backward[i] = Float(px - fx); backward[n + i] = Float(py - fy)
                var unseen = px < 0 || py < 0 || px > maxX || py > maxY
                if !unseen { unseen = layerInFrame1(px, py) > m }
                occ2[i] = unseen ? 1 : 0
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
