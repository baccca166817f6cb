import Foundation
import Tensor

/// Convolution throughput against plain sgemm of the same (M, K, N): the engine's main speed
/// claim. Shapes are FastFlowNet's 3×3 layers at 384×512 (perf-anchors' inference size) and
/// RAFT's 3×3 encoder layers at 256×320 (its training size), and small RAFT's GRU convolution at
/// 384×512 (1/8 resolution).
public enum ConvBench {
    public struct Layer: Sendable {
        public let name: String
        public let cin, cout, h, w, kernel, stride, groups: Int
        public var geometry: ConvGeometry { ConvGeometry(kernel: kernel, stride: stride, padding: kernel / 2, groups: groups) }
        /// GEMM sizes per group: M = cout/groups, K = cin/groups·k², N = output pixels.
        public var mkn: (Int, Int, Int) {
            let (oh, ow) = geometry.outputSize(h: h, w: w)
            return (cout / groups, cin / groups * kernel * kernel, oh * ow)
        }
        public var flops: Double { let (m, k, n) = mkn; return 2 * Double(m * k * n * groups) }
    }

    public static let layers: [Layer] = [
        Layer(name: "ffn pconv1_1 3→16 s2", cin: 3, cout: 16, h: 384, w: 512, kernel: 3, stride: 2, groups: 1),
        Layer(name: "ffn pconv1_2 16→16", cin: 16, cout: 16, h: 192, w: 256, kernel: 3, stride: 1, groups: 1),
        Layer(name: "ffn pconv2_1 16→32 s2", cin: 16, cout: 32, h: 192, w: 256, kernel: 3, stride: 2, groups: 1),
        Layer(name: "ffn pconv2_2 32→32", cin: 32, cout: 32, h: 96, w: 128, kernel: 3, stride: 1, groups: 1),
        Layer(name: "ffn pconv3_2 64→64", cin: 64, cout: 64, h: 48, w: 64, kernel: 3, stride: 1, groups: 1),
        Layer(name: "ffn dec2 conv1 87→96", cin: 87, cout: 96, h: 96, w: 128, kernel: 3, stride: 1, groups: 1),
        Layer(name: "ffn dec2 conv2 96→96 g3", cin: 96, cout: 96, h: 96, w: 128, kernel: 3, stride: 1, groups: 3),
        Layer(name: "ffn dec2 conv5 96→64", cin: 96, cout: 64, h: 96, w: 128, kernel: 3, stride: 1, groups: 1),
        Layer(name: "ffn dec2 conv6 64→32", cin: 64, cout: 32, h: 96, w: 128, kernel: 3, stride: 1, groups: 1),
        Layer(name: "raft layer1 64→64", cin: 64, cout: 64, h: 128, w: 160, kernel: 3, stride: 1, groups: 1),
        Layer(name: "raft layer2 96→96", cin: 96, cout: 96, h: 64, w: 80, kernel: 3, stride: 1, groups: 1),
        Layer(name: "raft-s gru 242→96", cin: 242, cout: 96, h: 48, w: 64, kernel: 3, stride: 1, groups: 1),
    ]

    public struct Row: Sendable {
        public let layer: Layer
        public let threads: Int
        /// GFLOP/s (from medians) of conv forward, backward-data, backward-weight, and of sgemm
        /// for the same three products.
        public let fwd, bwdData, bwdWeight, gemmFwd, gemmData, gemmWeight: Double
    }

    /// Measures the given layers (default: all) at each thread count.
    public static func run(_ chosen: [Layer] = layers, threads: [Int], reps: Int, progress: (String) -> Void = { _ in }) -> [Row] {
        var rows: [Row] = []
        for t in threads {
            Runtime.setThreads(t)
            for l in chosen {
                progress("\(l.name) @ \(t) thread(s)")
                rows.append(measure(l, threads: t, reps: reps))
            }
        }
        return rows
    }

    static func measure(_ l: Layer, threads: Int, reps: Int) -> Row {
        var rng = RandomGenerator(seed: 1)
        let g = l.geometry
        let (oh, ow) = g.outputSize(h: l.h, w: l.w)
        let x = Tensor.randn([1, l.cin, l.h, l.w], using: &rng)
        let w = Tensor.randn([l.cout, l.cin / l.groups, l.kernel, l.kernel], using: &rng)
        let b = Tensor.randn([l.cout], using: &rng)
        let y = Tensor(uninitialized: [1, l.cout, oh, ow])
        let dy = Tensor.randn(y.shape, using: &rng)
        let dx = Tensor.zeros(x.shape), dw = Tensor.zeros(w.shape)
        // Plain sgemm of the same sizes, repeated per group.
        let (m, k, n) = l.mkn
        let a = Tensor.randn([m, k], using: &rng), bm = Tensor.randn([k, n], using: &rng)
        let c = Tensor(uninitialized: [m, n]), ck = Tensor(uninitialized: [k, n]), cw = Tensor(uninitialized: [m, k])
        // Each conv product and its sgemm are timed in alternation, so that their ratio compares
        // runs under the same load.
        let times = Timing.interleaved(reps: reps, warmup: 2, [
            { conv2dForward(y.data, x.data, w.data, b.data, n: 1, cin: l.cin, h: l.h, w: l.w, cout: l.cout, g) },
            { for _ in 0..<l.groups { sgemm(m: m, n: n, k: k, a.data, lda: k, bm.data, ldb: n, c.data, ldc: n) } },
            // dx = Wᵀ·dY, as sgemm's C = AᵀB and as training's first gradient to reach a tensor.
            { conv2dBackward(dx: dx.data, dw: nil, db: nil, dy.data, x.data, w.data, n: 1, cin: l.cin, h: l.h, w: l.w, cout: l.cout, g,
                             assignDx: true) },
            { for _ in 0..<l.groups { sgemm(transA: true, m: k, n: n, k: m, a.data, lda: k, c.data, ldb: n, ck.data, ldc: n) } },
            { conv2dBackward(dx: nil, dw: dw.data, db: nil, dy.data, x.data, w.data, n: 1, cin: l.cin, h: l.h, w: l.w, cout: l.cout, g) },
            { for _ in 0..<l.groups { sgemm(transB: true, m: m, n: k, k: n, c.data, lda: n, bm.data, ldb: n, cw.data, ldc: k) } },
        ])
        let r = times.map { l.flops / 1e9 / Timing.median($0) }
        let (fwd, gfw, bd, gd, bw, gw) = (r[0], r[1], r[2], r[3], r[4], r[5])
        return Row(layer: l, threads: threads, fwd: fwd, bwdData: bd, bwdWeight: bw, gemmFwd: gfw, gemmData: gd, gemmWeight: gw)
    }

    /// A Markdown table of the rows.
    public static func table(_ rows: [Row]) -> String {
        var s = "| layer | M×K×N | thr | fwd | sgemm | % | bwd-data | sgemm | % | bwd-weight | sgemm | % |\n"
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            let (m, k, n) = r.layer.mkn
            let g = r.layer.groups > 1 ? "×\(r.layer.groups)" : ""
            s += "| \(r.layer.name) | \(m)×\(k)×\(n)\(g) | \(r.threads) | \(f(r.fwd)) | \(f(r.gemmFwd)) | \(pct(r.fwd, r.gemmFwd)) | "
            s += "\(f(r.bwdData)) | \(f(r.gemmData)) | \(pct(r.bwdData, r.gemmData)) | "
            s += "\(f(r.bwdWeight)) | \(f(r.gemmWeight)) | \(pct(r.bwdWeight, r.gemmWeight)) |\n"
        }
        return s
    }

    static func f(_ x: Double) -> String { String(format: "%.1f", x) }
    static func pct(_ x: Double, _ of: Double) -> String { "\(Int((100 * x / of).rounded()))%" }
}
