import Foundation

/// A float buffer from the process-wide pool. Memory is 64-byte aligned and uninitialized unless
/// stated; it goes back to the pool when the last reference dies.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialized storage for `count` floats.
    public init(count: Int) {
        self.count = count
        self.pointer = BufferPool.shared.acquire(count)
    }

    /// Zero-filled storage for `count` floats.
    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.update(repeating: 0, count: count)
    }

    deinit { BufferPool.shared.release(pointer, count: count) }
}

/// Size-keyed free lists of raw buffers, like PyTorch's caching allocator: a training step asks
/// for the same sizes every time, so after the first step nothing reaches malloc. The cache is
/// capped; beyond the cap buffers are freed.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    /// Most bytes kept for reuse.
    public var capacityBytes = 6 << 30

    func acquire(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        lock.lock()
        if let p = free[n]?.popLast() {   // in place: no copy of the list
            cachedBytes -= n * 4
            lock.unlock()
            return p
        }
        lock.unlock()
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    func release(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let n = max(count, 1)
        lock.lock()
        if cachedBytes + n * 4 <= capacityBytes {
            free[n, default: []].append(p)
            cachedBytes += n * 4
            lock.unlock()
            return
        }
        lock.unlock()
        UnsafeMutableRawPointer(p).deallocate()
    }

    /// Frees every cached buffer.
    public func trim() {
        lock.lock()
        let lists = free
        free = [:]
        cachedBytes = 0
        lock.unlock()
        for (_, list) in lists { for p in list { UnsafeMutableRawPointer(p).deallocate() } }
    }

    /// Bytes currently held for reuse.
    public var cached: Int { lock.lock(); defer { lock.unlock() }; return cachedBytes }
}
