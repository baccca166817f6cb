import Foundation
import COpenBLAS
import CKernels

/// A raw pointer that may cross into `parallelFor` bodies. Kernels never see it: `parallelFor`
/// takes a plain closure.
public struct SendablePointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Who owns the cores: `parallelFor` alone. OpenBLAS is kept single-threaded and `sgemm` splits
/// large products across these threads itself (see BLAS.swift), so no pool of spinning BLAS
/// threads competes with the kernels.
public enum Runtime {
    nonisolated(unsafe) private static var _threads: Int = {
        let n = ProcessInfo.processInfo.activeProcessorCount
        return max(1, n)
    }()

    /// Threads used by kernels and GEMMs.
    public static var threads: Int { _threads }

    /// Sets the thread count for `parallelFor` and GEMM splitting.
    public static func setThreads(_ n: Int) {
        _threads = max(1, n)
        _ = blasSingleThreaded
    }

    /// OpenBLAS's build string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH … Zen".
    public static var blasConfig: String {
        guard let c = openblas_get_config() else { return "unknown" }
        return String(cString: c)
    }
}

/// Runs `body` over `0..<count`, split into at most `chunksPerThread · Runtime.threads` contiguous
/// chunks, on the calling thread and the pool's workers (CKernels `mdf_pool_run`). Work below
/// `minCount` items (or when only one thread is set) runs inline, since handing work to a second
/// thread costs more than small kernels take. Chunk boundaries depend only on `count` and the
/// thread count.
@inline(__always)
public func parallelFor(_ count: Int, minCount: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = Runtime.threads
    if threads <= 1 || count < max(2, minCount) {
        if count > 0 { body(0..<count) }
        return
    }
    let chunks = min(threads * chunksPerThread, count)
    withoutActuallyEscaping(body) { escapable in
        var job = ParallelJob(count: count, chunks: chunks, body: escapable)
        withUnsafeMutablePointer(to: &job) { p in
            mdf_pool_run(chunks, Int32(threads), { ctx, c in
                let job = ctx!.assumingMemoryBound(to: ParallelJob.self)
                let count = job.pointee.count, chunks = job.pointee.chunks
                let lo = count * c / chunks, hi = count * (c + 1) / chunks
                if hi > lo { job.pointee.body(lo..<hi) }
            }, p)
        }
    }
}

/// Chunks a parallel call is cut into, per thread. The threads claim chunks as they go, so one
/// that starts late (a worker waking) or runs slow takes fewer: with one chunk per thread the caller
/// spent 6–12% of RAFT-small's training step waiting for the worker's half (perf, 2 threads), with
/// eight about 2–3%.
let chunksPerThread = 8

/// What a pool chunk needs to find its range and run it.
private struct ParallelJob {
    let count: Int, chunks: Int
    let body: (Range<Int>) -> Void
}
