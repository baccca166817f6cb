import Foundation
import Testing
import Tensor
import NN
import FlowNets
import TestSupport

/// A smooth multi-scale colour texture (random Gaussian blobs over sinusoids), 0…255.
func texture(height: Int, width: Int, seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let t = Tensor.zeros([1, 3, height, width])
    let p = t.data, hw = height * width
    for c in 0..<3 {
        let fx = rng.uniform(0.02, 0.15), fy = rng.uniform(0.02, 0.15), ph = rng.uniform(0, 6)
        for y in 0..<height { for x in 0..<width { p[c * hw + y * width + x] = Float(60 + 40 * sin(fx * Double(x) + fy * Double(y) + ph)) } }
    }
    for _ in 0..<120 {
        let cx = rng.uniform(0, Double(width)), cy = rng.uniform(0, Double(height)), r = rng.uniform(2, 14)
        let col = (0..<3).map { _ in rng.uniform(-90, 90) }
        let x0 = max(0, Int(cx - 3 * r)), x1 = min(width, Int(cx + 3 * r)), y0 = max(0, Int(cy - 3 * r)), y1 = min(height, Int(cy + 3 * r))
        if x0 >= x1 || y0 >= y1 { continue }
        for y in y0..<y1 {
            for x in x0..<x1 {
                let g = Foundation.exp(-((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)) / (2 * r * r))
                for c in 0..<3 { p[c * hw + y * width + x] += Float(col[c] * g) }
            }
        }
    }
    return t.clamp(min: 0, max: 255)
}

@Suite struct PretrainedRAFTTests {
    @Test func pretrainedRAFTSmallRecoversAKnownTranslation() throws {
        let url = Fixtures.checkpoint("raft-small.pth")
        let net = RAFT(small: true)
        try net.load(try TorchImport.read(url), source: url.path)      // strict: every key matched
        net.setTraining(false)
        let big = texture(height: 160, width: 192, seed: 21)
        // frame1(x, y) = big(x + 16, y + 16); frame2(x, y) = big(x + 13, y + 18): content moves by (+3, −2).
        let f1 = big.slice(dim: 2, start: 16, length: 128).slice(dim: 3, start: 16, length: 160)
        let f2 = big.slice(dim: 2, start: 18, length: 128).slice(dim: 3, start: 13, length: 160)
        let flow = net.predict(f1, f2, iters: 12)
        // Mean over the interior (away from the borders that leave the view).
        var su = 0.0, sv = 0.0, n = 0.0
        let hw = 128 * 160
        for y in 16..<112 { for x in 16..<144 { su += Double(flow.data[y * 160 + x]); sv += Double(flow.data[hw + y * 160 + x]); n += 1 } }
        print("pretrained RAFT-small on a (+3, −2) translation: mean flow (\(su / n), \(sv / n))")
        #expect(abs(su / n - 3) < 0.3 && abs(sv / n + 2) < 0.3)
    }
}
