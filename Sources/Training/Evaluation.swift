import Foundation
import Tensor
import FlowData
import Losses

/// Runs a net over a dataset's pairs in order (no augmentation) and measures flow accuracy.
public enum Evaluation {
    /// `shard`: evaluate only pairs i with i mod count = rank (data-parallel validation; the parts'
    /// `sums` add up to the whole's).
    public static func run(_ net: TrainableFlowNet, on dataset: FlowDataset, maxPairs: Int = 0, shard: DataShard = .whole,
                           visualize: String? = nil, progress: (Int, Int) -> Void = { _, _ in }) throws -> FlowMetrics {
        try run(predict: net.infer, on: dataset, maxPairs: maxPairs, shard: shard, visualize: visualize, progress: progress)
    }

    /// The zero-flow baseline on the same pairs: what a net that has learned nothing scores.
    public static func zeroFlow(on dataset: FlowDataset, maxPairs: Int = 0) throws -> FlowMetrics {
        try run(predict: { a, _ in Tensor.zeros([1, 2, a.shape[2], a.shape[3]]) }, on: dataset, maxPairs: maxPairs)
    }

    /// `predict`: two (1, 3, h, w) RGB frames in [0, 1] → (1, 2, h, w) flow in pixels.
    public static func run(predict: (Tensor, Tensor) -> Tensor, on dataset: FlowDataset, maxPairs: Int = 0, shard: DataShard = .whole,
                           visualize: String? = nil, progress: (Int, Int) -> Void = { _, _ in }) throws -> FlowMetrics {
        var metrics = FlowMetrics()
        let pairs = maxPairs > 0 ? Array(dataset.pairs.prefix(maxPairs)) : dataset.pairs
        for (i, pair) in pairs.enumerated() where i % shard.count == shard.rank {
            let sample = try pair.load()
            guard let gt = sample.flow else { throw DataError(path: pair.image1, reason: "no ground-truth flow to evaluate against") }
            let (h, w) = (sample.height, sample.width)
            let i1 = Tensor(shape: [1, 3, h, w], values: sample.image1.pixels)
            let i2 = Tensor(shape: [1, 3, h, w], values: sample.image2.pixels)
            let pred = predict(i1, i2)
            let gtT = Tensor(shape: [1, 2, h, w], values: gt.uv)
            let valid = Tensor(shape: [1, 1, h, w], values: gt.valid)
            let occ = sample.occlusion.map { Tensor(shape: [1, 1, h, w], values: $0) }
            metrics.add(pred: pred, gt: gtT, valid: valid, occluded: occ)
            if let visualize {
                try FileManager.default.createDirectory(atPath: visualize, withIntermediateDirectories: true)
                let field = FlowField(width: w, height: h, uv: pred.toArray(), valid: [Float](repeating: 1, count: h * w))
                try FlowViz.writePNG(field, to: visualize + "/" + pair.id.replacingOccurrences(of: "/", with: "_") + ".png")
            }
            progress(i + 1, pairs.count)
        }
        return metrics
    }
}
