import Testing
import Foundation
@testable import Tensor

/// parallelFor on the worker pool: every index runs exactly once, in the same contiguous chunks
/// (eight per thread) whatever thread takes them; nested calls and calls from two threads at once run (inline where
/// the pool is busy) instead of deadlocking.
@Suite struct ParallelTests {
    /// Counts of how often each index ran, and the chunk each came in.
    private func run(_ count: Int) -> (hits: [Int], chunks: [Range<Int>]) {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        hits.initialize(repeating: 0, count: max(count, 1))
        defer { hits.deallocate() }
        let lock = NSLock()
        var chunks: [Range<Int>] = []
        let p = SendablePointer(hits)
        parallelFor(count) { range in
            for i in range { p.base[i] += 1 }
            lock.lock(); chunks.append(range); lock.unlock()
        }
        return (Array(UnsafeBufferPointer(start: hits, count: count)), chunks.sorted { $0.lowerBound < $1.lowerBound })
    }

    @Test func everyIndexRunsOnceInFixedChunks() {
        // At the process's thread count: changing it here would change other suites' chunks.
        let threads = Runtime.threads
        for count in [0, 1, 2, 5, 1000] {
            let (hits, chunks) = run(count)
            #expect(hits.allSatisfy { $0 == 1 }, "count \(count), threads \(threads)")
            let n = min(threads * chunksPerThread, count)
            let expected = count <= 1 || threads == 1 ? (count > 0 ? [0..<count] : [])
                : (0..<n).map { count * $0 / n ..< count * ($0 + 1) / n }
            #expect(chunks == expected, "count \(count), threads \(threads)")
        }
    }

    @Test func nestedAndConcurrentCallsFinish() {
        let lock = NSLock()
        let ran = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        ran.initialize(repeating: 0, count: 2)
        defer { ran.deallocate() }
        let r = SendablePointer(ran)
        // Two threads each run 200 jobs of 4 chunks, each chunk a nested job of 3 items.
        DispatchQueue.concurrentPerform(iterations: 2) { who in
            for _ in 0..<200 {
                parallelFor(4) { outer in
                    for _ in outer {
                        parallelFor(3) { inner in lock.lock(); r.base[who] += inner.count; lock.unlock() }
                    }
                }
            }
        }
        #expect(ran[0] == 200 * 4 * 3 && ran[1] == 200 * 4 * 3)
    }

    /// Back-to-back jobs whose chunk count alternates between few and many: a worker still looking
    /// at the finished job's ticket must not claim a chunk of the next one (which would run a chunk
    /// twice and let the caller return while the worker is inside its closure). A stress check:
    /// the race it guards against needs a worker preempted in a window of a few instructions.
    @Test func alternatingJobsRunEveryChunkExactlyOnce() {
        let hits = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        defer { hits.deallocate() }
        let p = SendablePointer(hits)
        var bad = 0
        for job in 0..<100_000 {
            let count = job % 2 == 0 ? 2 : 64
            hits.initialize(repeating: 0, count: count)
            parallelFor(count) { range in for i in range { p.base[i] += 1 } }
            for i in 0..<count where hits[i] != 1 { bad += 1 }
        }
        #expect(bad == 0, "\(bad) indices ran other than once")
    }
}

