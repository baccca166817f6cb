import Foundation
import Tensor
import NN
import FlowNets

/// The teacher and student as the trainer sees them: images are (B, 3, H, W) RGB in [0, 1].
public protocol TrainableFlowNet: AnyObject {
    var module: any Module { get }
    /// Training forward. FastFlowNet: [full-resolution flow (20 × upsampled flow2), flow3 … flow6 in
    /// pixels of their own resolution]; RAFT: the full-resolution flow after every iteration.
    func trainForward(_ image1: Tensor, _ image2: Tensor) -> [Tensor]
    /// Inference without gradients: full-resolution flow in pixels (any image size).
    func infer(_ image1: Tensor, _ image2: Tensor) -> Tensor
}

/// FastFlowNet with MDFlow's input convention (RGB/255 minus the per-sample scalar mean).
public final class TeacherNet: TrainableFlowNet {
    public let net: FastFlowNet
    public var module: any Module { net }
    /// The size inference runs at (`FastFlowNet.predict`); 1× in training and validation.
    public var inferenceScale = InferenceScale.fixed(1)
    public init(_ net: FastFlowNet) { self.net = net }

    public func trainForward(_ image1: Tensor, _ image2: Tensor) -> [Tensor] {
        let h = image1.shape[2], w = image1.shape[3]
        // The mean is data, not a function of the weights: centralize without recording.
        let input = Tape.noGrad { FastFlowNet.preprocess(image1.detached(), image2.detached(), convention: .mdflow) }
        let outs = net(input)                                            // flow2 … flow6, px/20
        var flows = [outs[0].resizeBilinear(height: h, width: w, alignCorners: false) * FastFlowNet.flowScale]
        for (i, f) in outs.dropFirst().enumerated() {
            flows.append(f * (FastFlowNet.flowScale / Float(1 << (i + 3))))   // level l = i + 3
        }
        return flows
    }

    public func infer(_ image1: Tensor, _ image2: Tensor) -> Tensor {
        net.setTraining(false)
        return net.predict(image1, image2, convention: .mdflow, scale: inferenceScale)
    }
}

/// The student: RAFT or RAFT-small, or DEQ-Flow on either (inputs scaled to 0..255 as the nets
/// expect).
public final class StudentNet: TrainableFlowNet {
    public enum Model {
        case raft(RAFT)
        case deq(DEQRAFT, DEQOptions)
    }
    public let model: Model
    public var trainIters: Int, evalIters: Int
    /// The last DEQ solve (training or inference), for its residuals and steps.
    public private(set) var lastSolve: SolverResult? = nil

    public var module: any Module {
        switch model {
        case .raft(let n): return n
        case .deq(let n, _): return n
        }
    }
    public var raft: RAFT? { if case .raft(let n) = model { return n }; return nil }

    public init(_ net: RAFT, trainIters: Int, evalIters: Int) { model = .raft(net); self.trainIters = trainIters; self.evalIters = evalIters }
    public init(_ net: DEQRAFT, options: DEQOptions) { model = .deq(net, options); trainIters = options.thres; evalIters = options.thres }

    /// RAFT: the flow after every iteration; DEQ: the decoded supervised states.
    public func trainForward(_ image1: Tensor, _ image2: Tensor) -> [Tensor] {
        let (a, b) = Tape.noGrad { (image1.detached() * 255, image2.detached() * 255) }
        switch model {
        case .raft(let net): return net(a, b, iters: trainIters).predictions
        case .deq(let net, let options):
            let out = net.trainForward(a, b, options: options)
            lastSolve = out.solve
            return out.predictions
        }
    }

    /// Inference in eval mode: full RAFT's BatchNorm uses its running statistics and does not
    /// update them (a validation pass must not change the model). The trainer switches back.
    public func infer(_ image1: Tensor, _ image2: Tensor) -> Tensor {
        module.setTraining(false)
        switch model {
        case .raft(let net):
            return Tape.noGrad { net.predict(image1.detached() * 255, image2.detached() * 255, iters: evalIters) }
        case .deq:
            return inferDEQ(image1, image2, flowInit: nil, hidden: nil)!.flow
        }
    }

    /// DEQ inference from a warm start: flowInit (1/8 of the padded size) and the hidden state of
    /// a previous solution (nil: from zero flow). Images (N, 3, h, w) in [0, 1].
    public func inferDEQ(_ image1: Tensor, _ image2: Tensor, flowInit: Tensor?, hidden: Tensor?) -> DEQOutput? {
        guard case .deq(let net, let options) = model else { return nil }
        net.setTraining(false)
        let padder = InputPadder(height: image1.shape[2], width: image1.shape[3])
        var out = net.infer(padder.pad(image1.detached() * 255), padder.pad(image2.detached() * 255), options: options,
                            flowInit: flowInit, hidden: hidden)
        lastSolve = out.solve
        out.predictions = [padder.unpad(out.flow)]
        return out
    }

    /// The last DEQ solve's mean relative residual and mean step of its returned states, and with
    /// the implicit gradient the mean relative residual of the latest backward solve (the previous
    /// step's: it runs during backward). Empty for RAFT.
    public var diagnostics: [String: Float] {
        guard let s = lastSolve, !s.relativeResidual.isEmpty else { return [:] }
        let n = Float(s.relativeResidual.count)
        var terms = ["deq_residual": Float(s.meanRelativeResidual),
                     "deq_steps": Float(s.bestStep.reduce(0, +)) / n,
                     "deq_diverged": Float(s.diverged.filter { $0 }.count)]
        if case .deq(let net, _) = model, let b = net.lastBackwardSolve, !b.relativeResidual.isEmpty {
            terms["deq_backward_residual"] = Float(b.meanRelativeResidual)
        }
        return terms
    }
}

/// Where every command gets its nets: the trainer, `evaluate`, `infer` and `export`.
public enum NetFactory {
    /// The teacher, seeded or loaded from `spec.weights`.
    public static func teacher(_ spec: NetSpec, seed: UInt64) throws -> TeacherNet {
        let net = FastFlowNet()
        net.initialize(seed: seed, correlationGain: spec.correlationGain)
        if !spec.weights.isEmpty { try load(spec.weights, into: net) }
        return TeacherNet(net)
    }

    /// The student (RAFT, RAFT-small, or DEQ-Flow on either), seeded or loaded.
    public static func student(_ spec: NetSpec, seed: UInt64) throws -> StudentNet {
        switch spec.arch {
        case .deqRaft, .deqRaftSmall:
            let net = DEQRAFT(DEQRAFTConfig(base: spec.arch == .deqRaft ? .raft : .raftSmall,
                                            hiddenInit: spec.deq.hiddenInit, weightNorm: spec.deq.weightNorm))
            net.initialize(seed: seed)
            if !spec.weights.isEmpty { try load(spec.weights, into: net) }
            return StudentNet(net, options: spec.deq)
        default:
            let net = RAFT(small: spec.arch == .raftSmall)
            net.initialize(seed: seed)
            if !spec.weights.isEmpty { try load(spec.weights, into: net) }
            return StudentNet(net, trainIters: spec.iters, evalIters: spec.evalIters)
        }
    }

    /// The net of `arch` with the weights of `file`, for inference (eval mode).
    public static func trained(_ arch: NetArch, weights file: String, iters: Int = 12, deq: DEQOptions = DEQOptions()) throws -> TrainableFlowNet {
        var spec = NetSpec(arch: arch)
        spec.weights = file
        spec.evalIters = iters
        spec.deq = deq
        let net: TrainableFlowNet = arch == .fastflownet ? try teacher(spec, seed: 0) : try student(spec, seed: 0)
        net.module.setTraining(false)
        return net
    }

    /// Loads a weights file (.safetensors, or a PyTorch .pth in zip or legacy format) strictly into
    /// `module`, first checking it against a checkpoint manifest beside it, if there is one.
    public static func load(_ file: String, into module: any Module) throws {
        try Checkpoint.verifyFile(file)
        try module.load(try NN.WeightsFile.read(URL(fileURLWithPath: file)), source: file)
    }
}
