import Foundation
import CKernels

/// A float buffer. Memory is 64-byte aligned and uninitialized unless stated; it is freed when the
/// last reference dies.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialized storage for `count` floats.
    public init(count: Int) {
        self.count = count
        self.pointer = StorageMemory.acquire(count)
    }

    /// Zero-filled storage for `count` floats.
    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.update(repeating: 0, count: count)
    }

    deinit { StorageMemory.release(pointer, count: count) }
}

/// Where tensors' memory comes from: the C heap, with glibc told to keep large blocks in the process
/// (no mmap per block, no trimming), so that a freed block serves the next request of any size.
/// Its default maps every block over 32 MiB afresh and returns it on free: each training step then
/// page-faults its buffers in again (PyTorch's inference ran 18–29% faster with that off,
/// perf-anchors.md). An earlier exact-size cache of freed buffers avoided that too, but kept one
/// buffer of every size a step had used: peak RSS 624 MB for full-RAFT inference with 236 MB of
/// tensors alive at most, 556 MB for FastFlowNet training (now 492–581 and ~365, no slower).
public enum StorageMemory {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var live = 0, peak = 0

    /// Sets glibc's large-block policy once per process (idempotent; Storage calls it first).
    public static func keepLargeBlocks() { _ = tuned }
    private static let tuned: Void = mdf_keep_large_blocks()

    static func acquire(_ count: Int) -> UnsafeMutablePointer<Float> {
        _ = tuned
        let bytes = max(count, 1) * 4
        lock.lock()
        live += bytes
        peak = max(peak, live)
        lock.unlock()
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
        if let poison { p.update(repeating: poison, count: max(count, 1)) }
        return p
    }

    /// MDFLOW_POISON=v (a float, e.g. nan): fill every new buffer with v and every freed one with
    /// NaN, so that a kernel reading memory it never wrote, or memory already freed, changes its
    /// results (the release-build test run uses nan; Swift may end a buffer's life at its last use in Swift, so a
    /// raw pointer must not outlive it: `withExtendedLifetime`).
    static let poison = ProcessInfo.processInfo.environment["MDFLOW_POISON"].flatMap { Float($0) }

    static func release(_ p: UnsafeMutablePointer<Float>, count: Int) {
        lock.lock()
        live -= max(count, 1) * 4
        lock.unlock()
        if poison != nil { p.update(repeating: .nan, count: max(count, 1)) }
        UnsafeMutableRawPointer(p).deallocate()
    }

    /// Bytes of Storage alive now, and the most alive at once since the process started.
    public static var usage: (live: Int, peak: Int) { lock.lock(); defer { lock.unlock() }; return (live, peak) }

    /// Bytes in live malloc allocations of any kind (tensors included; 0 without glibc).
    public static var heapInUse: Int { Int(mdf_heap_in_use()) }

    /// Returns the heaps' free pages to the system. A long run calls it now and then so that heap
    /// fragmentation cannot slowly grow the resident set (`mdf_release_free_memory`).
    public static func releaseFreePages() { mdf_release_free_memory() }
}
