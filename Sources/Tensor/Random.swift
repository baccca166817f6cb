import Foundation

/// Seeded generator (xoshiro256**, seeded through splitmix64). Its whole state is four words,
/// saved and restored exactly with `state`, so a resumed run draws the same numbers.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    public var state: [UInt64]

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        state = [splitmix(), splitmix(), splitmix(), splitmix()]
    }

    /// Restores a generator from `state` (four words).
    public init(state: [UInt64]) {
        require(state.count == 4, "RandomGenerator", "state needs 4 words, got \(state.count)")
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]; state[3] ^= state[1]; state[1] ^= state[2]; state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Double = 0, _ hi: Double = 1) -> Double { lo + (hi - lo) * uniformDouble() }

    /// Uniform Float in [lo, hi).
    public mutating func uniformFloat(_ lo: Float = 0, _ hi: Float = 1) -> Float { Float(uniform(Double(lo), Double(hi))) }

    /// Standard normal (Box–Muller; no cached second value, so the state stays four words).
    public mutating func normal() -> Double {
        let u1 = max(uniformDouble(), 1e-300), u2 = uniformDouble()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Uniform integer in 0..<n.
    public mutating func int(below n: Int) -> Int { Int(next(upperBound: UInt64(n))) }

    /// Bernoulli draw with probability p.
    public mutating func chance(_ p: Double) -> Bool { uniformDouble() < p }

    /// A random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var a = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1)) } }
        return a
    }
}

extension Tensor {
    /// Tensor of N(mean, std²) draws.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = mean + std * Float(rng.normal()) }
        return t
    }

    /// Tensor of U(lo, hi) draws.
    public static func rand(_ shape: [Int], _ lo: Float = 0, _ hi: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = rng.uniformFloat(lo, hi) }
        return t
    }
}
