// The loader: batches of augmented pairs as tensors, shuffled per epoch from the seed, decoded
// and augmented on a background thread (with parallel workers) while the nets compute, with an
// exact resumable position.
import CSupport
import Foundation
import Tensor

/// How the loader batches and prefetches (`DefaultConfig`: missing keys take these defaults).
public struct LoaderConfig: Codable, Sendable, Equatable {
    public var batchSize: Int = 8
    /// Shuffle the pair order every epoch (from the seed).
    public var shuffle: Bool = true
    /// Batches prepared ahead of the consumer.
    public var prefetchBatches: Int = 2
    /// Threads decoding and augmenting one batch's pairs (0: `Runtime.threads`).
    public var workers: Int = 0
    /// A bad file is skipped and counted instead of failing the run.
    public var skipBadFiles: Bool = false
    /// Decode ground-truth files (flow, masks) when the dataset has them.
    public var loadGroundTruth: Bool = true

    public init() {}
    public init(batchSize: Int) { self.batchSize = batchSize }
}

/// Where the loader is: the next batch starts at `index` of epoch `epoch`'s order, and
/// `generator` is the state at the start of that epoch (it decides the epoch's order and every
/// augmentation draw in it). Saved in checkpoints; a loader made from it delivers exactly the
/// batches the original would have delivered next.
public struct LoaderPosition: Codable, Sendable, Equatable {
    public var epoch: Int
    public var index: Int
    public var generator: RandomGenerator
    /// Pairs in the dataset when the position was taken (checked on resume).
    public var pairCount: Int

    /// The position before the first batch of a run seeded with `seed`.
    public static func start(seed: UInt64, pairCount: Int) -> LoaderPosition {
        LoaderPosition(epoch: 0, index: 0, generator: RandomGenerator(seed: seed), pairCount: pairCount)
    }
}

/// One batch. Ground-truth tensors are present when every pair in the batch has them.
public struct Batch: Sendable {
    /// (B, 3, H, W) in [0, 1].
    public var image1: Tensor
    public var image2: Tensor
    /// (B, 2, H, W) forward flow and (B, 1, H, W) its validity.
    public var flow: Tensor?
    public var valid: Tensor?
    /// (B, 2, H, W) backward flow and its validity (synthetic dataset).
    public var backwardFlow: Tensor?
    public var backwardValid: Tensor?
    /// (B, 1, H, W): 1 where a frame-1 pixel is occluded.
    public var occlusion: Tensor?
    public var ids: [String]
    /// The position this batch started at, and the one after it.
    public var start: LoaderPosition
    public var end: LoaderPosition
    /// Files skipped while filling this batch (only with `skipBadFiles`).
    public var skipped: [DataError]
}

/// The order and seeds of one epoch, all derived from the generator state at its start.
struct EpochPlan {
    let order: [Int]
    let seed: UInt64
    let next: RandomGenerator

    init(_ generator: RandomGenerator, count: Int, shuffle: Bool) {
        var g = generator
        order = shuffle ? g.permutation(count) : Array(0..<count)
        seed = g.next()
        next = g
    }

    /// The generator for the augmentation of the pair at `index` of this epoch's order.
    func generator(at index: Int) -> RandomGenerator {
        RandomGenerator(seed: seed ^ (UInt64(index) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
    }
}

/// Which part of every batch this process loads in data-parallel training: the samples
/// `rank·B/count ..< (rank+1)·B/count` of each global batch of B.
public struct DataShard: Sendable, Equatable {
    public let rank: Int, count: Int
    public init(rank: Int, count: Int) { self.rank = rank; self.count = count }
    public static let whole = DataShard(rank: 0, count: 1)
    /// This shard's range of a batch of `batch` samples (`batch` divisible by `count`).
    public func range(of batch: Int) -> Range<Int> { (rank * batch / count)..<((rank + 1) * batch / count) }
}

/// Produces batches in order from a position; pure given the dataset, config, shard and position.
struct BatchMaker: Sendable {
    let pairs: [FlowPair]
    let config: LoaderConfig
    let augmentation: AugmentationConfig
    let shard: DataShard

    func loadSample(_ pair: FlowPair, rng: RandomGenerator) throws -> FlowSample {
        var p = pair
        if !config.loadGroundTruth { p = FlowPair(id: pair.id, image1: pair.image1, image2: pair.image2) }
        var sample = try p.load()
        var g = rng
        try augmentation.apply(to: &sample, using: &g)
        return sample
    }

    /// The batch starting at `position` (this shard's part of it), and where the next begins.
    /// The sample at each position of an epoch is defined on its own: its pair in the epoch's
    /// order, augmented from the position's generator; with `skipBadFiles`, a pair that does not
    /// load is replaced by the next readable one in the order (same generator). So a batch holds
    /// the same samples however it is split over processes.
    func make(at position: LoaderPosition) throws -> Batch {
        let b = config.batchSize
        var pos = position
        var plan = EpochPlan(pos.generator, count: pairs.count, shuffle: config.shuffle)
        if pairs.count - pos.index < b {
            // Not enough left in this epoch: the partial batch is dropped, the next epoch starts.
            pos = LoaderPosition(epoch: pos.epoch + 1, index: 0, generator: plan.next, pairCount: pairs.count)
            plan = EpochPlan(pos.generator, count: pairs.count, shuffle: config.shuffle)
        }
        let start = pos
        let positions = shard.range(of: b).map { pos.index + $0 }
        let results = loadParallel(positions.map { (pairs[plan.order[$0]], plan.generator(at: $0)) })
        var samples: [FlowSample] = []
        var skipped: [DataError] = []
        for (k, r) in results.enumerated() {
            var result = r
            var offset = 0
            while case .failure(let e) = result {
                let error = e as? DataError ?? DataError(path: "?", reason: "\(e)")
                if !config.skipBadFiles { throw error }
                skipped.append(error)
                offset += 1
                if offset >= pairs.count {
                    throw DataError(path: pairs.first?.image1 ?? "dataset", reason: "no readable pair in the whole dataset")
                }
                let p = positions[k]
                result = Result { try loadSample(pairs[plan.order[(p + offset) % pairs.count]], rng: plan.generator(at: p)) }
            }
            if case .success(let s) = result { samples.append(s) }
        }
        pos.index += b
        if pairs.count - pos.index < b {
            // The rest of this epoch cannot fill a batch: the next batch starts the next epoch.
            pos = LoaderPosition(epoch: pos.epoch + 1, index: 0, generator: plan.next, pairCount: pairs.count)
        }
        var batch = try collate(samples)
        batch.start = start
        batch.end = pos
        batch.skipped = skipped
        return batch
    }

    func loadParallel(_ jobs: [(FlowPair, RandomGenerator)]) -> [Result<FlowSample, Error>] {
        var results = [Result<FlowSample, Error>](repeating: .failure(DataError(path: "", reason: "")), count: jobs.count)
        let workers = max(1, min(config.workers > 0 ? config.workers : Runtime.threads, jobs.count))
        results.withUnsafeMutableBufferPointer { buffer in
            let out = SendablePointer(buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var k = worker
                while k < jobs.count {
                    let job = jobs[k]
                    out.base[k] = Result { try loadSample(job.0, rng: job.1) }
                    k += workers
                }
            }
        }
        return results
    }

    func collate(_ samples: [FlowSample]) throws -> Batch {
        let first = samples[0]
        let h = first.height, w = first.width, n = h * w, b = samples.count
        for s in samples where s.width != w || s.height != h {
            throw DataError(path: s.id, reason: "size \(s.width)×\(s.height) differs from \(first.id) (\(w)×\(h)) in one batch; set a crop or resize")
        }
        func stack(_ channels: Int, _ get: (FlowSample) -> [Float]?) -> Tensor? {
            guard samples.allSatisfy({ get($0) != nil }) else { return nil }
            let t = Tensor(uninitialized: [b, channels, h, w])
            for (i, s) in samples.enumerated() {
                get(s)!.withUnsafeBufferPointer { (t.data + i * channels * n).update(from: $0.baseAddress!, count: channels * n) }
            }
            return t
        }
        let dummy = LoaderPosition.start(seed: 0, pairCount: 0)
        return Batch(image1: stack(3) { $0.image1.pixels }!, image2: stack(3) { $0.image2.pixels }!,
                     flow: stack(2) { $0.flow?.uv }, valid: stack(1) { $0.flow?.valid },
                     backwardFlow: stack(2) { $0.backwardFlow?.uv }, backwardValid: stack(1) { $0.backwardFlow?.valid },
                     occlusion: stack(1) { $0.occlusion }, ids: samples.map(\.id), start: dummy, end: dummy, skipped: [])
    }
}

/// The prefetch queue shared by the loader and its producer thread.
final class PrefetchQueue: @unchecked Sendable {
    let condition = NSCondition()
    var items: [Result<Batch, Error>] = []
    var stopped = false
}

/// Delivers batches in a fixed order from a position; a background thread prepares the next
/// `prefetchBatches` batches while the caller computes.
public final class DataLoader: @unchecked Sendable {
    public let datasetName: String
    public let config: LoaderConfig
    /// Where the next batch delivered by `next()` starts (save this to resume).
    public private(set) var position: LoaderPosition
    /// Files skipped so far (with `skipBadFiles`).
    public private(set) var skippedCount = 0
    public private(set) var skippedFiles: [DataError] = []

    private let queue = PrefetchQueue()
    private var failed: Error?

    /// `resumeFrom`: a position saved earlier (nil: the start of epoch 0 for `seed`).
    /// `shard`: the part of every batch this process loads (data-parallel training).
    public init(dataset: FlowDataset, config: LoaderConfig, augmentation: AugmentationConfig, seed: UInt64,
                resumeFrom: LoaderPosition? = nil, shard: DataShard = .whole) throws {
        let pairs = dataset.pairs
        guard config.batchSize >= 1 else { throw DataError(path: dataset.name, reason: "batchSize must be at least 1, got \(config.batchSize)") }
        guard pairs.count >= config.batchSize else {
            throw DataError(path: dataset.name, reason: "\(pairs.count) pairs, fewer than the batch size \(config.batchSize)")
        }
        if let spatial = augmentation.spatial, !spatial.problems().isEmpty {
            throw DataError(path: dataset.name, reason: "augmentation.spatial: " + spatial.problems().joined(separator: "; "))
        }
        guard shard.count >= 1, shard.rank >= 0, shard.rank < shard.count, config.batchSize % shard.count == 0 else {
            throw DataError(path: dataset.name, reason: "a batch of \(config.batchSize) does not split into \(shard.count) equal parts")
        }
        let start = resumeFrom ?? .start(seed: seed, pairCount: pairs.count)
        guard start.pairCount == pairs.count, start.index >= 0, start.index <= pairs.count else {
            throw DataError(path: dataset.name, reason: "saved loader position is for \(start.pairCount) pairs (index \(start.index)), the dataset has \(pairs.count)")
        }
        datasetName = dataset.name
        self.config = config
        position = start
        let maker = BatchMaker(pairs: pairs, config: config, augmentation: augmentation, shard: shard)
        let queue = self.queue
        let depth = max(1, config.prefetchBatches)
        let thread = Thread {
            var pos = start
            while true {
                queue.condition.lock()
                while queue.items.count >= depth && !queue.stopped { queue.condition.wait() }
                let stop = queue.stopped
                queue.condition.unlock()
                if stop { return }
                let result = Result { try maker.make(at: pos) }
                queue.condition.lock()
                queue.items.append(result)
                queue.condition.broadcast()
                queue.condition.unlock()
                guard case .success(let batch) = result else { return }
                pos = batch.end
            }
        }
        thread.name = "mdflow.loader"
        thread.start()
    }

    deinit { stop() }

    /// The next batch; waits for the background thread if it is behind. A failure (a bad file
    /// without `skipBadFiles`) is thrown here, naming the file, and again on every later call.
    public func next() throws -> Batch {
        if let failed { throw failed }
        queue.condition.lock()
        while queue.items.isEmpty && !queue.stopped { queue.condition.wait() }
        if queue.items.isEmpty {
            queue.condition.unlock()
            throw DataError(path: datasetName, reason: "loader stopped")
        }
        let result = queue.items.removeFirst()
        queue.condition.broadcast()
        queue.condition.unlock()
        switch result {
        case .success(let batch):
            position = batch.end
            skippedCount += batch.skipped.count
            skippedFiles += batch.skipped.prefix(max(0, 1000 - skippedFiles.count))
            return batch
        case .failure(let error):
            failed = error
            throw error
        }
    }

    /// Stops the background thread (also done on deinit).
    public func stop() {
        queue.condition.lock()
        queue.stopped = true
        queue.condition.broadcast()
        queue.condition.unlock()
    }
}

// MARK: benchmark

/// What `benchmarkLoader` measured.
public struct LoaderBenchmark: Sendable, CustomStringConvertible {
    public let pairs: Int
    public let seconds: Double
    public let batchSize: Int
    public let height: Int
    public let width: Int
    public let threads: Int
    public var pairsPerSecond: Double { Double(pairs) / seconds }

    public var description: String {
        String(format: "loader: %d augmented pairs of %d×%d in %.2f s = %.1f pairs/s (batch %d, %d threads)",
               pairs, height, width, seconds, pairsPerSecond, batchSize, threads)
    }
}

/// The augmentation `benchmarkLoader` uses unless told otherwise: h-flip, swap, ARFlow's Sintel
/// spatial transform and photometric jitter, and the eraser.
public let benchmarkAugmentation = AugmentationConfig(pair: PairAugmentConfig(), spatial: .sintel, photometric: .arflowSintel,
                                                     eraser: EraserConfig())

/// Loader throughput: decodes and augments `batches` batches (after one warm-up batch) from the
/// FlyingChairs-layout dataset at `root`, or, when `root` is nil, from a synthetic dataset of
/// `pairs` pairs at height × width generated into a temporary folder (removed afterwards).
/// Nothing else should run meanwhile.
public func benchmarkLoader(root: String? = nil, pairs: Int = 64, height: Int = 256, width: Int = 320,
                            batchSize: Int = 8, batches: Int = 20, augmentation: AugmentationConfig = benchmarkAugmentation,
                            threads: Int = Runtime.threads, seed: UInt64 = 0) throws -> LoaderBenchmark {
    StorageMemory.keepLargeBlocks()  // as the trainer runs: large buffers stay in the process
    var directory = root
    var temporary: String?
    if directory == nil {
        let path = NSTemporaryDirectory() + "mdflow-bench-loader-\(getpid())"
        var config = SyntheticConfig(pairs: pairs, height: height, width: width, seed: seed)
        config.validationEvery = 0
        try SyntheticDataset.generate(config, to: path, threads: threads)
        directory = path
        temporary = path
    }
    defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
    let dataset = try FlyingChairs(root: directory!)
    var config = LoaderConfig(batchSize: batchSize)
    config.workers = threads
    let loader = try DataLoader(dataset: dataset, config: config, augmentation: augmentation, seed: seed)
    defer { loader.stop() }
    let warm = try loader.next()
    let clock = ContinuousClock()
    let began = clock.now
    var count = 0
    for _ in 0..<batches { count += try loader.next().ids.count }
    let elapsed = clock.now - began
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    return LoaderBenchmark(pairs: count, seconds: seconds, batchSize: batchSize, height: warm.image1.shape[2],
                           width: warm.image1.shape[3], threads: threads)
}
