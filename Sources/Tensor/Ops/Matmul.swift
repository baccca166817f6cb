import Foundation

extension Tensor {
    /// Matrix product of (M, K)·(K, N), or batched (B, M, K)·(B, K, N), through sgemm.
    public func matmul(_ other: Tensor) -> Tensor {
        let a = self, b = other
        require((a.rank == 2 && b.rank == 2) || (a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0]), "matmul",
                "shapes \(describe(a.shape)) and \(describe(b.shape)) are not (M,K)·(K,N) or (B,M,K)·(B,K,N)")
        let batch = a.rank == 3 ? a.shape[0] : 1
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        require(b.shape[b.rank - 2] == k, "matmul", "inner sizes differ: \(describe(a.shape)) · \(describe(b.shape))")
        let y = Tensor(uninitialized: a.rank == 3 ? [batch, m, n] : [m, n])
        for i in 0..<batch {
            sgemm(m: m, n: n, k: k, a.data + i * m * k, lda: k, b.data + i * k * n, ldb: n, y.data + i * m * n, ldc: n)
        }
        Tape.record(y, inputs: [a, b]) { dy in
            for i in 0..<batch {
                // dA += dY·Bᵀ ; dB += Aᵀ·dY
                if let da = a.gradIfNeeded {
                    sgemm(transB: true, m: m, n: k, k: n, dy + i * m * n, lda: n, b.data + i * k * n, ldb: n,
                          beta: 1, da + i * m * k, ldc: k)
                }
                if let db = b.gradIfNeeded {
                    sgemm(transA: true, m: k, n: n, k: m, a.data + i * m * k, lda: k, dy + i * m * n, ldb: n,
                          beta: 1, db + i * k * n, ldc: n)
                }
            }
        }
        return y
    }
}
