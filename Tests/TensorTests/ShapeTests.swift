import Testing
import Tensor
import TestSupport

@Suite struct ShapeTests {
    /// Permutations that keep the last dimensions in place (a channel shuffle) move whole runs:
    /// the same values and gradients as the element-by-element kernels.
    @Test(arguments: [([2, 3, 4, 5, 6], [0, 2, 1, 3, 4]), ([3, 4, 20], [1, 0, 2]), ([2, 3, 2, 8, 2], [2, 0, 1, 3, 4])])
    func permuteByRunsEqualsTheElementKernels(_ shape: [Int], _ perm: [Int]) {
        var rng = RandomGenerator(seed: 73)
        let x = Tensor.randn(shape, using: &rng)
        x.requiresGrad = true
        let y = x.permute(perm)
        let expected = Tensor(uninitialized: y.shape)
        permuteForward(expected.data, x.data, xShape: shape, perm: perm)
        #expect(y.toArray() == expected.toArray())
        let gy = Tensor.randn(y.shape, using: &rng)
        Tape.backward((y * gy).sum())
        let gx = Tensor.zeros(shape)
        permuteBackward(gx.data, gy.data, xShape: shape, perm: perm)
        #expect(x.grad!.toArray() == gx.toArray())
    }

    /// Reshape's gradient is dy, copied by the first use and added by the next, in runs the threads
    /// share above 64 Ki elements: two reshapes of one 360 000-element tensor give exactly a + b.
    @Test func reshapeGradientOfALargeTensorIsExact() {
        var rng = RandomGenerator(seed: 79)
        let x = Tensor.randn([1, 3, 300, 400], using: &rng)
        x.requiresGrad = true
        let a = Tensor.randn([360_000], using: &rng), b = Tensor.randn([600, 600], using: &rng)
        Tape.backward((x.reshape([-1]) * a).sum() + (x.reshape([600, 600]) * b).sum())
        #expect((0..<x.count).allSatisfy { x.grad!.data[$0] == a.data[$0] + b.data[$0] })
    }

    @Test func permuteReordersLikePyTorch() {
        let x = Tensor(shape: [2, 3], values: [0, 1, 2, 3, 4, 5])
        #expect(x.permute([1, 0]).toArray() == [0, 3, 1, 4, 2, 5])
        let y = Tensor(shape: [2, 2, 2], values: [0, 1, 2, 3, 4, 5, 6, 7]).permute([2, 0, 1])
        #expect(y.shape == [2, 2, 2])
        #expect(y.toArray() == [0, 2, 4, 6, 1, 3, 5, 7])
    }

    @Test func concatSliceSplitRoundTrip() {
        let a = Tensor(shape: [2, 1, 2], values: [0, 1, 2, 3])
        let b = Tensor(shape: [2, 2, 2], values: [4, 5, 6, 7, 8, 9, 10, 11])
        let c = Tensor.concat([a, b], dim: 1)
        #expect(c.shape == [2, 3, 2])
        #expect(c.toArray() == [0, 1, 4, 5, 6, 7, 2, 3, 8, 9, 10, 11])
        let parts = c.split([1, 2], dim: 1)
        #expect(parts[0].toArray() == a.toArray())
        #expect(parts[1].toArray() == b.toArray())
    }

    /// Concatenations large enough for the threads to share the copies, including a tensor
    /// concatenated with itself, whose two gradient pieces add into the same memory.
    @Test func largeConcatAndSliceCopyAndAccumulateExactly() {
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.randn([2, 3, 70, 90], using: &rng), z = Tensor.randn([2, 1, 70, 90], using: &rng)
        x.requiresGrad = true; z.requiresGrad = true
        let y = Tensor.concat([x, z, x], dim: 1)
        let plane = 70 * 90
        for b in 0..<2 {
            for c in 0..<7 {
                let src = c < 3 ? x.data + (b * 3 + c) * plane : c == 3 ? z.data + b * plane : x.data + (b * 3 + c - 4) * plane
                #expect((0..<plane).allSatisfy { y.data[(b * 7 + c) * plane + $0] == src[$0] })
            }
        }
        let gy = Tensor.randn(y.shape, using: &rng)
        Tape.backward((y.slice(dim: 1, start: 1, length: 6) * gy.slice(dim: 1, start: 1, length: 6)).sum())
        for b in 0..<2 {
            for c in 0..<3 {
                for i in 0..<plane {
                    // x's channel c appears at 0 + c (outside the slice when c = 0) and at 4 + c.
                    let first: Float = c == 0 ? 0 : gy.data[(b * 7 + c) * plane + i]
                    let want = first + gy.data[(b * 7 + 4 + c) * plane + i]
                    if x.grad!.data[(b * 3 + c) * plane + i] != want { Issue.record("x grad (\(b), \(c), \(i))"); return }
                }
            }
        }
        #expect((0..<2 * plane).allSatisfy { z.grad!.data[$0] == gy.data[($0 / plane * 7 + 3) * plane + $0 % plane] })
    }

    @Test func padZerosAndReplicate() {
        let x = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        #expect(x.pad(left: 1, right: 0, top: 0, bottom: 1).toArray() == [0, 1, 2, 0, 3, 4, 0, 0, 0])
        #expect(x.pad(left: 1, right: 1, top: 1, bottom: 0, mode: .replicate).toArray()
                == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4])
    }

    @Test func channelShuffleMovesGroupsLikeShuffleNet() {
        // 6 channels, 3 groups of 2: output channel k·3 + g takes input channel g·2 + k.
        let x = Tensor(shape: [1, 6, 1, 1], values: [0, 1, 2, 3, 4, 5])
        #expect(x.channelShuffle(groups: 3).toArray() == [0, 2, 4, 1, 3, 5])
    }

    @Test func shapeOpsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.randn([2, 3, 4, 5], using: &rng)
        let y = Tensor.randn([2, 2, 4, 5], using: &rng)
        let ops: [(String, ([Tensor]) -> Tensor)] = [
            ("reshape", { $0[0].reshape([6, -1]) * $0[0].reshape([6, 20]) }),
            ("permute", { $0[0].permute([3, 1, 0, 2]) }),
            ("concat", { Tensor.concat([$0[0], $0[1]], dim: 1) }),
            ("slice", { $0[0].slice(dim: 3, start: 1, length: 3) }),
            ("pad zeros", { $0[0].pad(left: 1, right: 2, top: 0, bottom: 1) }),
            ("pad replicate", { $0[0].pad(left: 2, right: 1, top: 1, bottom: 2, mode: .replicate) }),
            ("shuffle", { $0[0].channelShuffle(groups: 3) }),
            ("split", { let p = $0[0].split([1, 2], dim: 1); return p[1] * 2 }),
        ]
        for (name, f) in ops {
            let r = GradCheck.check([x, y], elementwiseLimit: 200, f)
            #expect(r.worst < 1e-2, "\(name): \(r)")
        }
    }
}

@Suite struct ReduceTests {
    @Test func sumsAndMeansAreExact() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(x.sum().item == 21)
        #expect(x.mean().item == 3.5)
        #expect(x.sum(dims: [0]).toArray() == [5, 7, 9])
        #expect(x.sum(dims: [1], keepDims: true).shape == [2, 1])
        #expect(x.mean(dims: [-1]).toArray() == [2, 5])
        #expect(x.maxValue() == 6 && x.minValue() == 1)
        #expect(x.meanValue() == 3.5 && Tensor.zeros([0]).meanValue() == 0)
    }

    @Test func reductionsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 6)
        let x = Tensor.randn([2, 3, 4], using: &rng)
        for dims in [[0], [1], [2], [0, 2], [1, 2]] {
            let r = GradCheck.check([x]) { $0[0].sum(dims: dims) * 1.5 + $0[0].mean(dims: dims).square() }
            #expect(r.worst < 1e-2, "dims \(dims): \(r)")
        }
        let r = GradCheck.check([x]) { $0[0].sum() + $0[0].mean() }
        #expect(r.worst < 1e-2, "all: \(r)")
    }
}

@Suite struct MatmulTests {
    @Test func matmulIsExactOnSmallIntegers() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], values: [1, 0, 0, 1, 1, 1])
        #expect(a.matmul(b).toArray() == [4, 5, 10, 11])
    }

    @Test func matmulMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 8)
        let a = Tensor.randn([2, 3, 4], using: &rng), b = Tensor.randn([2, 4, 5], using: &rng)
        let r = GradCheck.check([a, b]) { $0[0].matmul($0[1]) }
        #expect(r.worst < 1e-2, "\(r)")
    }
}

@Suite struct RandomTests {
    @Test func generatorStateRestoresExactly() {
        var g = RandomGenerator(seed: 42)
        _ = (0..<10).map { _ in g.next() }
        let saved = g.state
        let a = (0..<5).map { _ in g.normal() }
        var h = RandomGenerator(state: saved)
        let b = (0..<5).map { _ in h.normal() }
        #expect(a == b)
        #expect(RandomGenerator(seed: 1).state != RandomGenerator(seed: 2).state)
    }

    @Test func uniformAndNormalHaveTheRightMoments() {
        var g = RandomGenerator(seed: 9)
        let n = 20000
        var su = 0.0, sn = 0.0, sn2 = 0.0
        for _ in 0..<n { su += g.uniformDouble(); let z = g.normal(); sn += z; sn2 += z * z }
        #expect(abs(su / Double(n) - 0.5) < 0.01)
        #expect(abs(sn / Double(n)) < 0.03)
        #expect(abs(sn2 / Double(n) - 1) < 0.05)
    }
}
