import Foundation

/// Forms computed from weights (Winograd-transformed, packed in panels, rearranged for the input
/// gradient), kept while the weights stay the same: RAFT's update block applies the same
/// convolutions at every iteration, and at small images rebuilding these forms each time was a
/// tenth of a training step. An entry is reused only when the weights match its copy byte for byte,
/// so every write to them (an optimizer step, a loaded checkpoint, a finite-difference probe) is
/// seen. Least recently used entries go first beyond `capacityBytes`.
final class DerivedWeights: @unchecked Sendable {
    static let shared = DerivedWeights()

    private struct Entry {
        let weights: Storage
        let value: Storage
        var lastUse: Int
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var bytes = 0
    private var clock = 0
    /// Most bytes held (weight copies and derived forms together).
    var capacityBytes = 256 << 20
    /// Smaller weights are not kept: rebuilding their forms costs less than comparing them.
    var minimumCount = 1 << 12

    /// The form `kind` (which must name every parameter `make` depends on) of the `count` weights
    /// at w: the cached one if w still holds the same values, else `make()`.
    func form(_ kind: String, of w: UnsafePointer<Float>, count: Int, _ make: () -> Storage) -> Storage {
        if count < minimumCount { return make() }
        let key = "\(kind)@\(UInt(bitPattern: w)):\(count)"
        lock.lock()
        clock += 1
        if var e = entries[key], memcmp(e.weights.pointer, w, count * 4) == 0 {
            e.lastUse = clock
            entries[key] = e
            lock.unlock()
            return e.value
        }
        lock.unlock()
        let value = make()
        let copy = Storage(count: count)
        copy.pointer.update(from: w, count: count)
        lock.lock()
        defer { lock.unlock() }
        if let old = entries.removeValue(forKey: key) { bytes -= 4 * (old.weights.count + old.value.count) }
        let size = 4 * (count + value.count)
        guard size <= capacityBytes else { return value }
        while bytes + size > capacityBytes, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            entries.removeValue(forKey: oldest.key)
            bytes -= 4 * (oldest.value.weights.count + oldest.value.value.count)
        }
        entries[key] = Entry(weights: copy, value: value, lastUse: clock)
        bytes += size
        return value
    }
}
