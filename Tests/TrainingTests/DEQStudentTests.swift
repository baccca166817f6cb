import Testing
import Foundation
import Tensor
import NN
import FlowNets
import FlowData
import Training
import TestSupport

/// A DEQ-Flow student (RAFT-small base) in MDFlow's teacher → student distillation.
@Suite struct DEQStudentTests {
    /// The shipped teacher labels translated layered pairs; a DEQ-RAFT-small student learns from
    /// those labels: the stage's loss falls, and so does the student's error against the labels,
    /// with the phantom and with the implicit gradient.
    @Test(arguments: [DEQOptions.Gradient.phantom, .implicit])
    func aDEQStudentLearnsFromTheTeachersPseudoLabels(_ gradient: DEQOptions.Gradient) throws {
        let path = Fixtures.packageRoot.appendingPathComponent("Models/\(ShippedModels.teacherFile)").path
        let teacherNet = FastFlowNet()
        try teacherNet.load(SafeTensors.read(URL(fileURLWithPath: path)).tensors, source: path)
        let teacher = TeacherNet(teacherNet)
        teacherNet.setTraining(false)

        let pairs = [translatedPair(height: 64, width: 128, dx: 3, dy: -2), translatedPair(height: 64, width: 128, dx: -2, dy: 1)]
        let i1 = Tensor(shape: [2, 3, 64, 128], values: pairs.flatMap { $0.0.pixels })
        let i2 = Tensor(shape: [2, 3, 64, 128], values: pairs.flatMap { $0.1.pixels })
        var spec = NetSpec(arch: .deqRaftSmall)
        spec.deq.thres = 6
        spec.deq.solver = .anderson
        spec.deq.gradient = gradient
        let student = try NetFactory.student(spec, seed: 3)
        var stage = StageSpec.defaults(kind: .distillToStudent)
        stage.loss.occAlpha2 = 1_000_000
        stage.loss.tau = 1
        let params = student.module.namedParameters()
        let opt = Adam([.init(params)], lr: 4e-4, decoupled: true)
        let labels = teacher.infer(i1, i2)
        func error() -> Double {
            let f = student.infer(i1, i2)
            student.module.setTraining(true)
            var s = 0.0
            for i in 0..<(f.count / 2) {
                let n = 64 * 128, b = i / n, p = i % n
                let du = Double(f.data[b * 2 * n + p] - labels.data[b * 2 * n + p]), dv = Double(f.data[b * 2 * n + n + p] - labels.data[b * 2 * n + n + p])
                s += (du * du + dv * dv).squareRoot()
            }
            return s / Double(f.count / 2)
        }
        let before = error()
        var losses: [Float] = []
        for step in 0..<16 {
            let l = StageLosses.studentStep(teacher: teacher, student: student, image1: i1, image2: i2, stage: stage,
                                            random: StepRandomness(seed: 1, first: 0, count: 2))
            losses.append(l.total.item)
            #expect(l.terms["deq_residual"] != nil && l.terms["deq_diverged"] == 0, "step \(step): \(l.terms)")
            // The backward solve runs during backward: from the second step on its residual is logged.
            #expect((l.terms["deq_backward_residual"] != nil) == (gradient == .implicit && step > 0), "step \(step): \(l.terms)")
            Tape.backward(l.total)
            opt.update()
            for (_, p) in params { p.freeGrad() }
        }
        let after = error()
        let first = losses[0], last = losses.suffix(3).reduce(0, +) / 3
        #expect(last < 0.85 * first, "\(gradient): losses \(losses)")
        #expect(after < 0.85 * before, "\(gradient): EPE against the labels \(before) → \(after)")
    }
}

/// `infer --warm-start` over a sequence with a DEQ student starts each solve from the previous
/// pair's solution.
@Suite struct DEQFixedPointReuseTests {
    @Test func aWarmStartFromThePreviousSolutionSavesSolverSteps() throws {
        let net = DEQRAFT(DEQRAFTConfig(base: .raftSmall))
        net.initialize(seed: 8)
        // A contraction with a fixed point: the update block's weights scaled down (weight norm's
        // g), so that h' ≈ (h + tanh(b))/2, and no flow update (the flow head's last conv zeroed),
        // as a trained net's Δ vanishes at its solution.
        for (key, t) in net.namedParameters() where key.hasPrefix("update_block.") && key.hasSuffix("weight_g") {
            for i in 0..<t.count { t.data[i] *= key.hasPrefix("update_block.flow_head.conv2") ? 0 : 0.05 }
        }
        for i in 0..<net.updateBlock.flowHead.conv2.bias!.count { net.updateBlock.flowHead.conv2.bias!.data[i] = 0 }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-deq-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try SafeTensors.serialize(net.stateDict()).write(to: URL(fileURLWithPath: file))
        var options = DEQOptions()
        options.tolerance = 1e-3
        let (a, b) = translatedPair(height: 64, width: 96, dx: 2, dy: 1)
        var evaluations: [Bool: [Int]] = [:]
        for reuse in [false, true] {
            let predictor = try FlowPredictor(arch: .deqRaftSmall, weights: file, deq: options)
            predictor.reuseFixedPoint = reuse
            var counts: [Int] = []
            for _ in 0..<3 {
                let before = predictor.solverEvaluations
                _ = try predictor.predict(a, b, names: ("a", "b"))
                counts.append(predictor.solverEvaluations - before)
            }
            evaluations[reuse] = counts
        }
        let cold = evaluations[false]!, warm = evaluations[true]!
        #expect(cold[0] == warm[0] && cold.allSatisfy { $0 == cold[0] }, "\(evaluations)")
        #expect(warm[1] < cold[1] && warm[2] <= warm[1], "\(evaluations)")
    }
}
