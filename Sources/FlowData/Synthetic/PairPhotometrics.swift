// What a real camera adds between two frames of the same scene: a change of exposure and white
// balance (brightness, contrast, gamma, per-channel gain) in frame 2, defocus blur of about the same
// size in both frames, and independent sensor noise. The flow is unchanged by all of it, so a net
// trained on these pairs learns to match through them.
import Foundation
import Tensor

struct PairPhotometrics {
    var brightness = 0.0, contrast = 1.0, gamma = 1.0
    var gain: RGB = (1, 1, 1)
    var blur1 = 0.0, blur2 = 0.0
    var noise = 0.0

    init() {}

    init(config: LayeredConfig, rng: inout RandomGenerator) {
        guard config.photometric else { return }
        if rng.chance(0.8) {
            brightness = rng.uniform(-0.06, 0.06)
            contrast = rng.uniform(0.9, 1.1)
            gamma = rng.uniform(0.9, 1.1)
            gain = (rng.uniform(0.96, 1.04), rng.uniform(0.96, 1.04), rng.uniform(0.96, 1.04))
        }
        if rng.chance(0.7) {
            let base = rng.uniform(0, config.maxBlur)
            blur1 = base * rng.uniform(0.8, 1.2)
            blur2 = base * rng.uniform(0.8, 1.2)
        }
        if rng.chance(0.7) { noise = rng.uniform(0, config.maxNoise) }
    }

    /// Applies the change to both frames (3, H, W) in place; `rng` draws the noise.
    func apply(_ image1: inout [Float], _ image2: inout [Float], height h: Int, width w: Int, rng: inout RandomGenerator) {
        let n = h * w
        if brightness != 0 || contrast != 1 || gamma != 1 || gain != (1, 1, 1) {
            let gains = [gain.0, gain.1, gain.2]
            for c in 0..<3 {
                for i in 0..<n {
                    var v = Double(image2[c * n + i])
                    v = Foundation.pow(min(max(v, 0), 1), gamma)
                    v = (v - 0.5) * contrast + 0.5 + brightness
                    image2[c * n + i] = Float(v * gains[c])
                }
            }
        }
        image1.withUnsafeMutableBufferPointer { p in
            if blur1 >= 0.3 { PhotometricAugment.gaussianBlur(p.baseAddress!, channels: 3, height: h, width: w, sigma: Float(blur1)) }
        }
        image2.withUnsafeMutableBufferPointer { p in
            if blur2 >= 0.3 { PhotometricAugment.gaussianBlur(p.baseAddress!, channels: 3, height: h, width: w, sigma: Float(blur2)) }
        }
        if noise > 0 {
            let s = Float(noise)
            for i in 0..<(3 * n) { image1[i] += s * Float(rng.normal()) }
            for i in 0..<(3 * n) { image2[i] += s * Float(rng.normal()) }
        }
    }
}
