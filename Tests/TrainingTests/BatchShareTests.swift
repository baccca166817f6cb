import Testing
import Foundation
import Tensor
import NN
import FlowNets
import Losses
import Training
import TestSupport

/// The losses of a batch split over processes add up to the loss of the whole batch: each part
/// computes its share, the masks' means are summed over the parts, and so are the gradients.
/// Checked in one process by replaying the sums: a first pass records what each part would send,
/// a second pass answers every call with the total.
@Suite struct BatchShareTests {
    /// Loss and parameter gradients of `loss` over `parts` equal parts of a batch, as the ranks of
    /// a data-parallel run would compute them.
    func overParts(_ parts: Int, params: [Tensor], _ loss: (Int, BatchShare) -> Tensor) -> (Float, [[Float]]) {
        nonisolated(unsafe) var sent = [[[Double]]](repeating: [], count: parts)
        for r in 0..<parts {
            _ = loss(r, BatchShare(fraction: 1 / Float(parts), sum: { sent[r].append($0); return $0 }))
            Tape.clear()
        }
        var total: Float = 0
        var grads = params.map { [Float](repeating: 0, count: $0.count) }
        for r in 0..<parts {
            nonisolated(unsafe) var call = 0
            let share = BatchShare(fraction: 1 / Float(parts), sum: { values in
                defer { call += 1 }
                return values.indices.map { i in sent.reduce(0) { $0 + $1[call][i] } }
            })
            let l = loss(r, share)
            total += l.item
            Tape.backward(l)
            for (k, p) in params.enumerated() {
                let g = p.grad?.toArray() ?? []
                for i in g.indices { grads[k][i] += g[i] }
                p.freeGrad()
            }
        }
        return (total, grads)
    }

    @Test func teacherLossSharesAddUpToTheWholeBatch() throws {
        let n = 4, h = 64, w = 64
        var rng = RandomGenerator(seed: 3)
        let i1 = Tensor(shape: [n, 3, h, w], values: (0..<(n * 3 * h * w)).map { _ in Float.random(in: 0...1, using: &rng) })
        let i2 = Tensor(shape: [n, 3, h, w], values: i1.toArray().enumerated().map { $0.element * 0.9 + Float($0.offset % 7) * 0.01 })
        let net = FlowNets.FastFlowNet()
        net.initialize(seed: 5)
        let teacher = TeacherNet(net)
        var stage = StageSpec.defaults(kind: .distillToTeacher)
        stage.loss.selfSupWeight = 0.3
        stage.loss.distillWeight = 1
        stage.loss.occAlpha2 = 1_000_000
        let student = Tensor(shape: [n, 2, h, w], values: (0..<(n * 2 * h * w)).map { Float($0 % 13) * 0.1 - 0.6 })
        let params = net.namedParameters().map(\.1)
        let seed: UInt64 = 99

        func loss(_ first: Int, _ count: Int, _ share: BatchShare) -> Tensor {
            func part(_ t: Tensor) -> Tensor { t.slice(dim: 0, start: first, length: count).clone() }
            return StageLosses.teacherStep(teacher: teacher, image1: part(i1), image2: part(i2), stage: stage, step: 10_000,
                                           studentFlow: part(student), random: StepRandomness(seed: seed, first: first, count: count),
                                           share: share).total
        }
        let whole = loss(0, n, .whole)
        Tape.backward(whole)
        let expected = params.map { $0.grad!.toArray() }
        for p in params { p.freeGrad() }

        let (total, grads) = overParts(2, params: params) { r, share in loss(r * 2, 2, share) }
        #expect(abs(total - whole.item) <= 1e-5 * abs(whole.item), "loss \(total) over two parts, \(whole.item) whole")
        let scale = expected.flatMap { $0 }.reduce(0) { max($0, abs($1)) }
        let worst = zip(expected, grads).flatMap { zip($0, $1).map { abs($0 - $1) } }.max()!
        #expect(scale > 0 && worst <= 1e-4 * scale, "gradients differ by \(worst) (largest \(scale))")
    }
}
