import Foundation
import COpenBLAS

/// OpenBLAS runs single-threaded: its idle pthreads spin in sched_yield after every call and
/// stole a quarter of the CPU from our own kernels and the data loader (measured with perf on a
/// training step). Multi-core GEMM is done here instead, by splitting the product across
/// `Runtime.threads` with `parallelFor`, so the cores have one owner.
let blasSingleThreaded: Bool = {
    openblas_set_num_threads(1)
    return true
}()

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C, with op(A) (m×k) and op(B)
/// (k×n). Leading dimensions are row strides in elements. The one place that calls OpenBLAS.
/// Products big enough are split into column (or row) blocks computed on all threads, unless
/// `serial` (the caller already runs one task per thread).
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, _ a: UnsafePointer<Float>, lda: Int,
                  _ b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int, serial: Bool = false) {
    _ = blasSingleThreaded
    if m == 0 || n == 0 { return }
    if k == 0 {
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { row[j] *= beta } }
        }
        return
    }
    let threads = Runtime.threads
    let work = Double(m) * Double(n) * Double(k)
    guard !serial, threads > 1, work >= 4e6 else {
        sgemmBlock(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    // Split the larger of n and m into `threads` blocks, keeping blocks a multiple of 16 wide.
    if n >= m || n >= 64 * threads {
        let per = ((n + threads - 1) / threads + 15) / 16 * 16
        parallelFor(threads) { r in
            for t in r {
                let j0 = t * per, j1 = min(n, j0 + per)
                if j1 <= j0 { continue }
                let bp = transB ? b + j0 * ldb : b + j0
                sgemmBlock(transA, transB, m, j1 - j0, k, alpha, a, lda, bp, ldb, beta, c + j0, ldc)
            }
        }
    } else {
        let per = ((m + threads - 1) / threads + 7) / 8 * 8
        parallelFor(threads) { r in
            for t in r {
                let i0 = t * per, i1 = min(m, i0 + per)
                if i1 <= i0 { continue }
                let ap = transA ? a + i0 : a + i0 * lda
                sgemmBlock(transA, transB, i1 - i0, n, k, alpha, ap, lda, b, ldb, beta, c + i0 * ldc, ldc)
            }
        }
    }
}

@inline(__always)
private func sgemmBlock(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
