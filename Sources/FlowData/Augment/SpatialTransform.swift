// ARFlow's spatial transform, the "A" of self-augmentation (Training/SelfAugment.swift): per-pair
// affine maps drawn and applied to images, flows (re-expressed exactly) and masks, of a sample or a batch.
import Foundation
import Tensor

/// The sampled spatial transform of one pair, as content maps in pixel coordinates: a point p of
/// source frame k appears at `first.apply(p)` (k = 1) or `second.apply(p)` (k = 2) in the output.
public struct ARTransform: Sendable, Codable, Equatable {
    public var first: AffineMap
    public var second: AffineMap
    public var width: Int
    public var height: Int

    public init(first: AffineMap, second: AffineMap, width: Int, height: Int) {
        self.first = first
        self.second = second
        self.width = width
        self.height = height
    }

    public static func identity(width: Int, height: Int) -> ARTransform {
        ARTransform(first: .identity, second: .identity, width: width, height: height)
    }
}

/// p ↦ [[a, b], [c, d]]·p + (tx, ty).
public struct AffineMap: Sendable, Codable, Equatable {
    public var a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double

    public init(a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.tx = tx; self.ty = ty
    }

    public static let identity = AffineMap(a: 1, b: 0, c: 0, d: 1, tx: 0, ty: 0)

    @inline(__always) public func apply(_ x: Double, _ y: Double) -> (Double, Double) {
        (a * x + b * y + tx, c * x + d * y + ty)
    }

    public var inverse: AffineMap {
        let det = a * d - b * c
        let ia = d / det, ib = -b / det, ic = -c / det, id = a / det
        return AffineMap(a: ia, b: ib, c: ic, d: id, tx: -(ia * tx + ib * ty), ty: -(ic * tx + id * ty))
    }

    /// self ∘ other: first `other`, then `self`.
    public func after(_ o: AffineMap) -> AffineMap {
        AffineMap(a: a * o.a + b * o.c, b: a * o.b + b * o.d, c: c * o.a + d * o.c, d: c * o.b + d * o.d,
                  tx: a * o.tx + b * o.ty + tx, ty: c * o.tx + d * o.ty + ty)
    }
}

public enum SpatialAugment {
    /// One transform per batch item.
    public static func sample(_ config: SpatialTransformConfig, count: Int, width: Int, height: Int,
                              using rng: inout RandomGenerator) -> [ARTransform] {
        (0..<count).map { _ in sample(config, width: width, height: height, using: &rng) }
    }

    /// Draws a transform for a width × height pair: global zoom/squeeze/rotation/translation for
    /// frame 1, composed with a relative one for frame 2, resampled until the four output corners
    /// of both frames map inside their source (no empty borders), then mirrored at random.
    public static func sample(_ config: SpatialTransformConfig, width: Int, height: Int,
                              using rng: inout RandomGenerator) -> ARTransform {
        precondition(config.problems().isEmpty, "SpatialTransformConfig: " + config.problems().joined(separator: "; "))
        func draw(_ range: ArraySlice<Double>, _ rng: inout RandomGenerator) -> Double {
            rng.uniform(range[range.startIndex], range[range.startIndex + 1])
        }
        func matrix(zoom z: Double, squeeze s: Double, angle: Double, tx: Double, ty: Double) -> AffineMap {
            let sx = z * s, sy = z / s
            return AffineMap(a: cos(angle) * sx, b: sin(angle) * sy, c: -sin(angle) * sx, d: cos(angle) * sy, tx: tx, ty: ty)
        }
        // Normalized ([−1, 1], align_corners=True) ↔ pixels.
        let w1 = Double(max(width - 1, 1)), h1 = Double(max(height - 1, 1))
        let toNormal = AffineMap(a: 2 / w1, b: 0, c: 0, d: 2 / h1, tx: -1, ty: -1)
        let toPixel = toNormal.inverse
        func inside(_ m: AffineMap) -> Bool {
            let inv = m.inverse
            for (x, y) in [(-1.0, -1.0), (1, -1), (-1, 1), (1, 1)] {
                let (sx, sy) = inv.apply(x, y)
                if abs(sx) > 1 + 1e-9 || abs(sy) > 1 + 1e-9 { return false }
            }
            return true
        }
        var first = AffineMap.identity, second = AffineMap.identity
        for _ in 0..<config.maxTries {
            let t = config.translate[0] / 2, tr = config.translate[1] / 2
            let global = matrix(zoom: draw(config.zoom[0...1], &rng), squeeze: draw(config.squeeze[0...1], &rng),
                                angle: draw(config.rotate[0...1], &rng), tx: rng.uniform(-t, t), ty: rng.uniform(-t, t))
            let relative = matrix(zoom: draw(config.zoom[2...3], &rng), squeeze: draw(config.squeeze[2...3], &rng),
                                  angle: draw(config.rotate[2...3], &rng), tx: rng.uniform(-tr, tr), ty: rng.uniform(-tr, tr))
            let composed = relative.after(global)
            if inside(global) && inside(composed) {
                first = global
                second = composed
                break
            }
        }
        let hflip = config.hflip && rng.chance(0.5), vflip = config.vflip && rng.chance(0.5)
        let mirror = AffineMap(a: hflip ? -1 : 1, b: 0, c: 0, d: vflip ? -1 : 1, tx: 0, ty: 0)
        first = mirror.after(first)
        second = mirror.after(second)
        return ARTransform(first: toPixel.after(first).after(toNormal), second: toPixel.after(second).after(toNormal),
                           width: width, height: height)
    }

    /// Applies `t` to images, flows and the occlusion mask of `sample`.
    public static func apply(_ t: ARTransform, to s: FlowSample) -> FlowSample {
        precondition(t.width == s.width && t.height == s.height, "ARTransform for \(t.width)×\(t.height) applied to \(s.width)×\(s.height)")
        let w = s.width, h = s.height
        var out = s
        out.image1.pixels = warp(s.image1.pixels, channels: 3, width: w, height: h, outputToSource: t.first.inverse)
        out.image2.pixels = warp(s.image2.pixels, channels: 3, width: w, height: h, outputToSource: t.second.inverse)
        out.flow = s.flow.map { warpFlow($0, sourceMap: t.first.inverse, targetMap: t.second) }
        out.backwardFlow = s.backwardFlow.map { warpFlow($0, sourceMap: t.second.inverse, targetMap: t.first) }
        out.occlusion = s.occlusion.map { m in
            var warped = warp(m, channels: 1, width: w, height: h, outputToSource: t.first.inverse)
            threshold(&warped)
            return warped
        }
        return out
    }

    /// Bilinear resampling of (channels, H, W) planes: out(y) = src(outputToSource(y)), zero outside.
    public static func warp(_ src: [Float], channels: Int, width: Int, height: Int, outputToSource m: AffineMap) -> [Float] {
        var out = [Float](repeating: 0, count: src.count)
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                affineWarpForward(o.baseAddress!, s.baseAddress!, channels: channels, height: height, width: width, map: m)
            }
        }
        return out
    }

    /// The flow re-expressed in the transformed frames: for output pixel y of frame 1,
    /// s = sourceMap(y) (its source position), F'(y) = targetMap(s + F(s)) − y, with F(s)
    /// sampled bilinearly. Valid where s is inside and every contributing source pixel is valid.
    public static func warpFlow(_ f: FlowField, sourceMap: AffineMap, targetMap: AffineMap) -> FlowField {
        var uv = [Float](repeating: 0, count: f.uv.count), valid = [Float](repeating: 0, count: f.valid.count)
        f.uv.withUnsafeBufferPointer { u in
            f.valid.withUnsafeBufferPointer { v in
                uv.withUnsafeMutableBufferPointer { o in
                    valid.withUnsafeMutableBufferPointer { ov in
                        affineFlowForward(o.baseAddress!, ov.baseAddress!, u.baseAddress!, v.baseAddress!,
                                          height: f.height, width: f.width, sourceMap: sourceMap, targetMap: targetMap)
                    }
                }
            }
        }
        return FlowField(width: f.width, height: f.height, uv: uv, valid: valid)
    }

    // MARK: batch tensors (for the trainer: teacher predictions and masks)

    /// Frame `frame` (1 or 2) of a batch (B, C, H, W) under per-item transforms.
    public static func warpImages(_ x: Tensor, _ transforms: [ARTransform], frame: Int) -> Tensor {
        require(x.rank == 4 && x.shape[0] == transforms.count, "SpatialAugment.warpImages", "batch \(describe(x.shape)) with \(transforms.count) transforms")
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: x.shape)
        for i in 0..<b {
            let m = (frame == 1 ? transforms[i].first : transforms[i].second).inverse
            affineWarpForward(out.data + i * c * h * w, x.data + i * c * h * w, channels: c, height: h, width: w, map: m)
        }
        return out
    }

    /// A forward (frame 1 → 2) or backward (`backward: true`, frame 2 → 1) flow batch (B, 2, H, W)
    /// re-expressed under the transforms. Returns the flow and its validity (B, 1, H, W).
    public static func warpFlow(_ flow: Tensor, _ transforms: [ARTransform], backward: Bool = false,
                                valid: Tensor? = nil) -> (flow: Tensor, valid: Tensor) {
        require(flow.rank == 4 && flow.shape[1] == 2 && flow.shape[0] == transforms.count, "SpatialAugment.warpFlow",
                "flow \(describe(flow.shape)) with \(transforms.count) transforms")
        let (b, h, w) = (flow.shape[0], flow.shape[2], flow.shape[3])
        let out = Tensor(uninitialized: flow.shape), outValid = Tensor(uninitialized: [b, 1, h, w])
        let ones = valid == nil ? Tensor.ones([h * w]) : nil
        for i in 0..<b {
            let t = transforms[i]
            let source = backward ? t.second.inverse : t.first.inverse, target = backward ? t.first : t.second
            let v = valid.map { $0.data + i * h * w } ?? ones!.data
            affineFlowForward(out.data + i * 2 * h * w, outValid.data + i * h * w, flow.data + i * 2 * h * w, v,
                              height: h, width: w, sourceMap: source, targetMap: target)
        }
        return (out, outValid)
    }

    /// A mask batch (B, 1, H, W) of frame `frame`, resampled and thresholded at 0.5.
    public static func warpMask(_ mask: Tensor, _ transforms: [ARTransform], frame: Int = 1) -> Tensor {
        let out = warpImages(mask, transforms, frame: frame)
        threshold(UnsafeMutableBufferPointer(start: out.data, count: out.count))
        return out
    }
}
