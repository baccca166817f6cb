import Foundation
import Testing
@testable import FlowData
import Tensor

private func makeDataset(_ dir: TempDir, pairs: Int = 10) throws -> FlyingChairs {
    var config = SyntheticConfig(pairs: pairs, height: 20, width: 28, seed: 5)
    config.validationEvery = 0
    try SyntheticDataset.generate(config, to: dir.path)
    return try FlyingChairs(root: dir.path)
}

private let augmentation: AugmentationConfig = {
    var a = AugmentationConfig(spatial: .sintel, photometric: .arflowSintel)
    a.pair.crop = [16, 24]
    return a
}()

@Test func loaderBatchesHaveTheRightShapesAndRanges() throws {
    let dir = TempDir()
    let loader = try DataLoader(dataset: try makeDataset(dir), config: LoaderConfig(batchSize: 3), augmentation: augmentation, seed: 1)
    let batch = try loader.next()
    #expect(batch.image1.shape == [3, 3, 16, 24] && batch.image2.shape == [3, 3, 16, 24])
    #expect(batch.flow?.shape == [3, 2, 16, 24] && batch.valid?.shape == [3, 1, 16, 24])
    #expect(batch.image1.toArray().allSatisfy { $0 >= 0 && $0 <= 1 })
    #expect(loader.position.index == 3 && loader.position.epoch == 0)
}

@Test func loaderVisitsEveryPairOncePerEpoch() throws {
    let dir = TempDir()
    let loader = try DataLoader(dataset: try makeDataset(dir), config: LoaderConfig(batchSize: 5), augmentation: .none, seed: 3)
    let epoch0 = try loader.next().ids + loader.next().ids
    let epoch1 = try loader.next().ids + loader.next().ids
    #expect(Set(epoch0).count == 10 && Set(epoch1).count == 10)
    #expect(epoch0 != epoch1)
    #expect(loader.position.epoch == 2 && loader.position.index == 0)
}

@Test func loaderResumesExactlyFromASavedPosition() throws {
    let dir = TempDir()
    let dataset = try makeDataset(dir)
    let config = LoaderConfig(batchSize: 4)  // 2 batches per epoch, 2 pairs dropped
    let first = try DataLoader(dataset: dataset, config: config, augmentation: augmentation, seed: 9)
    var batches: [Batch] = []
    var saved: LoaderPosition?
    for k in 0..<5 {
        batches.append(try first.next())
        if k == 1 { saved = first.position }
    }
    let json = try JSONEncoder().encode(saved!)
    let restored = try JSONDecoder().decode(LoaderPosition.self, from: json)
    #expect(restored == saved)
    let second = try DataLoader(dataset: dataset, config: config, augmentation: augmentation, seed: 12345, resumeFrom: restored)
    for k in 2..<5 {
        let b = try second.next()
        #expect(b.ids == batches[k].ids)
        #expect(b.image1.toArray() == batches[k].image1.toArray() && b.flow!.toArray() == batches[k].flow!.toArray())
    }
    #expect(second.position == first.position)
}

@Test func loaderNamesABadFileOrSkipsIt() throws {
    let dir = TempDir()
    let dataset = try makeDataset(dir, pairs: 6)
    let bad = dir.file("data", "00004_img2.png")
    truncate(bad, to: 100)
    var config = LoaderConfig(batchSize: 6)
    config.shuffle = false
    let strict = try DataLoader(dataset: dataset, config: config, augmentation: .none, seed: 1)
    let message = errorMessage { _ = try strict.next() }
    #expect(message?.hasPrefix(bad + ": truncated PNG") == true)
    config.skipBadFiles = true
    config.batchSize = 2
    let lenient = try DataLoader(dataset: dataset, config: config, augmentation: .none, seed: 1)
    let ids = try (0..<2).flatMap { _ in try lenient.next().ids }
    #expect(ids == ["00001", "00002", "00003", "00005"])
    #expect(lenient.skippedCount == 1 && lenient.skippedFiles.first?.path == bad)
}

@Test func shardsOfABatchAreItsSamplesWhateverTheSplit() throws {
    let dir = TempDir()
    let dataset = try makeDataset(dir, pairs: 10)
    truncate(dir.file("data", "00003_img1.png"), to: 100)
    var config = LoaderConfig(batchSize: 4)
    config.skipBadFiles = true
    let whole = try DataLoader(dataset: dataset, config: config, augmentation: augmentation, seed: 4)
    let shards = try (0..<2).map { try DataLoader(dataset: dataset, config: config, augmentation: augmentation, seed: 4, shard: DataShard(rank: $0, count: 2)) }
    var sawSkip = false
    for _ in 0..<5 {   // two and a half epochs
        let b = try whole.next()
        let parts = try shards.map { try $0.next() }
        sawSkip = sawSkip || !b.skipped.isEmpty
        #expect(parts[0].ids + parts[1].ids == b.ids)
        #expect(parts[0].image1.toArray() + parts[1].image1.toArray() == b.image1.toArray())
        #expect(parts[0].flow!.toArray() + parts[1].flow!.toArray() == b.flow!.toArray())
        #expect(parts[0].end == b.end && parts[1].end == b.end)
    }
    #expect(sawSkip)
    let message = errorMessage { _ = try DataLoader(dataset: dataset, config: config, augmentation: .none, seed: 1, shard: DataShard(rank: 0, count: 3)) }
    #expect(message?.contains("a batch of 4 does not split into 3 equal parts") == true)
}

@Test func loaderRejectsAPositionFromAnotherDataset() throws {
    let dir = TempDir()
    let dataset = try makeDataset(dir, pairs: 4)
    let position = LoaderPosition.start(seed: 1, pairCount: 7)
    let message = errorMessage { _ = try DataLoader(dataset: dataset, config: LoaderConfig(batchSize: 2), augmentation: .none, seed: 1, resumeFrom: position) }
    #expect(message?.contains("saved loader position is for 7 pairs") == true)
}
