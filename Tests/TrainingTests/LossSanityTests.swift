import Testing
import Foundation
import Tensor
import FlowData
import Losses
import Training
import NN
import FlowNets

/// The unsupervised losses must prefer the true flow: on synthetic pairs with exact ground truth,
/// the photometric loss of the ground-truth flow is far below that of zero flow.
@Suite struct LossSanityTests {
    func pair(_ index: Int, h: Int = 64, w: Int = 96) -> (Tensor, Tensor, Tensor, Tensor) {
        var c = SyntheticConfig(pairs: 4, height: h, width: w, seed: 11)
        c.maxDisplacement = 5
        let p = SyntheticDataset.renderPair(c, index: index)
        let i1 = Tensor(shape: [1, 3, h, w], values: p.rgbImage1().pixels)
        let i2 = Tensor(shape: [1, 3, h, w], values: p.rgbImage2().pixels)
        let f = Tensor(shape: [1, 2, h, w], values: p.forward)
        let occ = Tensor(shape: [1, 1, h, w], values: p.occlusion.map { $0 > 127 ? 0 : 1 })
        return (i1, i2, f, occ)
    }

    @Test(arguments: [Photometric.Weights(l1: 1, ssim: 0, census: 0), Photometric.Weights(l1: 0, ssim: 1, census: 0),
                      Photometric.Weights(l1: 0, ssim: 0, census: 1)])
    func photometricLossPrefersTheTrueFlow(_ w: Photometric.Weights) {
        for k in 0..<3 {
            let (i1, i2, f, visible) = pair(k)
            let good = Photometric.loss(i1, warp(i2, by: f, padding: .border), mask: visible, weights: w).item
            let zero = Photometric.loss(i1, warp(i2, by: Tensor.zeros(f.shape), padding: .border), mask: visible, weights: w).item
            #expect(good < (w.census > 0 ? 0.8 : 0.5) * zero, "pair \(k) \(w): true flow \(good), zero flow \(zero)")
        }
    }

    /// distillMask: better keeps the visible pixels where the student's flow is the more
    /// census-consistent one: most of them when the student has the true flow and the teacher
    /// zero flow, few the other way round, none outside the visible mask.
    @Test func studentIsBetterMaskFollowsCensusConsistency() {
        for k in 0..<2 {
            let (i1, i2, f, visible) = pair(k)
            let zero = Tensor.zeros(f.shape)
            let (right, fr) = ReliableMask.studentIsBetter(image1: i1, image2: i2, student: f, teacher: zero, visible: visible)
            let (wrong, fw) = ReliableMask.studentIsBetter(image1: i1, image2: i2, student: zero, teacher: f, visible: visible)
            let vis = Float(visible.meanValue())
            #expect(fr > 0.6 * vis && fw < 0.25 * vis, "pair \(k): kept \(fr) with the true student, \(fw) with the zero student (visible \(vis))")
            for i in 0..<visible.count where visible.data[i] == 0 { #expect(right.data[i] == 0 && wrong.data[i] == 0) }
        }
    }

    /// The three student → teacher masks: the visible pixels, every pixel, and the census-better
    /// visible ones (a subset of the visible).
    @Test func distillationMasksKeepWhatTheirNamesSay() {
        let (i1, i2, f, visible) = pair(0)
        let zero = Tensor.zeros(f.shape)
        let (occ, none) = StageLosses.distillationMask(.occlusion, image1: i1, image2: i2, student: f, teacher: zero, visible: visible)
        #expect(occ.toArray() == visible.toArray() && none == nil)
        let (all, _) = StageLosses.distillationMask(.all, image1: i1, image2: i2, student: f, teacher: zero, visible: visible)
        #expect(all.shape == visible.shape && all.toArray().allSatisfy { $0 == 1 })
        #expect(visible.toArray().contains(0), "the test pair should have occluded pixels")
        let (better, fraction) = StageLosses.distillationMask(.better, image1: i1, image2: i2, student: f, teacher: zero, visible: visible)
        #expect(fraction != nil)
        for i in 0..<visible.count where visible.data[i] == 0 { #expect(better.data[i] == 0) }
    }

    @Test func forwardBackwardCheckKeepsTheVisiblePixelsOfTheTrueFlow() {
        var c = SyntheticConfig(pairs: 2, height: 64, width: 96, seed: 11)
        c.maxDisplacement = 5
        let p = SyntheticDataset.renderPair(c, index: 0)
        let f = Tensor(shape: [1, 2, 64, 96], values: p.forward), b = Tensor(shape: [1, 2, 64, 96], values: p.backward)
        let vis = Occlusion.forwardBackward(f, b)
        var agree = 0
        for i in 0..<vis.count where (vis.data[i] > 0.5) == (p.occlusion[i] < 128) { agree += 1 }
        #expect(Double(agree) / Double(vis.count) > 0.9, "agreement \(agree) of \(vis.count)")
    }
}

/// Optimization works end to end: the teacher's unsupervised loss falls on one fixed tiny batch.
@Suite struct TinyBatchTests {
    @Test func teacherLossFallsOnATinyBatch() throws {
        var c = SyntheticConfig(pairs: 2, height: 64, width: 64, seed: 21)
        c.maxDisplacement = 3
        let p = SyntheticDataset.renderPair(c, index: 0)
        let i1 = Tensor(shape: [1, 3, 64, 64], values: p.rgbImage1().pixels)
        let i2 = Tensor(shape: [1, 3, 64, 64], values: p.rgbImage2().pixels)
        let net = FlowNets.FastFlowNet()
        net.initialize(seed: 1)
        let teacher = TeacherNet(net)
        var stage = StageSpec.defaults(kind: .unsupervised)
        stage.loss.warmupSteps = 1000
        stage.loss.warmupPhotometric = Photometric.Weights(l1: 0, ssim: 0, census: 1)
        stage.loss.selfSupWeight = 0
        let params = net.namedParameters()
        let opt = Adam([.init(params)], lr: 1e-3)
        var losses: [Float] = []
        for step in 0..<12 {
            let random = StepRandomness(seed: UInt64(step), first: 0, count: 1)
            let l = StageLosses.teacherStep(teacher: teacher, image1: i1, image2: i2, stage: stage, step: step, studentFlow: nil, random: random)
            losses.append(l.total.item)
            Tape.backward(l.total)
            opt.update()
            for (_, p) in params { p.freeGrad() }
        }
        let first = losses[0], last = losses.suffix(3).reduce(0, +) / 3
        #expect(last < 0.8 * first, "losses \(losses)")
    }
}

/// Validating the student (full RAFT, whose context encoder has BatchNorm) must not change it: the
/// running statistics stay as they were, whatever mode training left the net in.
@Test func studentInferenceLeavesBatchNormStatisticsUnchanged() {
    let raft = RAFT(small: false)
    raft.initialize(seed: 3)
    raft.setTraining(true)
    let student = StudentNet(raft, trainIters: 1, evalIters: 1)
    let buffers = { raft.namedBuffers().filter { $0.0.contains("running_") }.flatMap { Array(UnsafeBufferPointer(start: $0.1.data, count: $0.1.count)) } }
    let before = buffers()
    #expect(!before.isEmpty)
    var rng = RandomGenerator(seed: 4)
    _ = student.infer(Tensor.rand([1, 3, 64, 64], using: &rng), Tensor.rand([1, 3, 64, 64], using: &rng))
    let unchanged = buffers() == before
    #expect(unchanged, "validation changed the BatchNorm running statistics")
}
