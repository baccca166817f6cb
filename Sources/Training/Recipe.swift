import Foundation
import NN
import FlowNets
import Yams
import FlowData
import Losses

/// A refused recipe: the file, the key path, and what is wrong.
public struct RecipeError: Error, CustomStringConvertible {
    public let file: String, path: String, message: String
    public init(file: String, path: String, _ message: String) { self.file = file; self.path = path; self.message = message }
    public var description: String { path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)" }
}

// MARK: - The recipe model. Every key has a documented default (Recipes/README.md).

/// A dataset: which adapter reads `root`, and which split.
public struct DatasetSpec: DefaultConfig, Equatable, Sendable {
    public var kind = DatasetKind.synthetic
    public var root = "Datasets/synthetic"
    public var split = Split.train
    /// Sintel pass.
    public var pass = Pass.clean
    /// Use at most this many pairs (0: all).
    public var maxPairs = 0
    /// For kind synthetic: generate the dataset into `root` when it is missing.
    public var generate = SyntheticConfig(pairs: 600, height: 192, width: 256, seed: 1)
    /// For kind layered: generate the layered dataset into `root` when it is missing.
    public var layered = LayeredConfig(pairs: 2000, height: 320, width: 448, seed: 1)
    /// For kind video (`root`: a video file or a folder of them): frame step, resize, frame cap.
    public var video = VideoOptions()
    /// For kind frames: a folder of flow files for the pairs (pseudo-labels written by
    /// `mdflow infer --reliable-only`), which makes the frames a labelled dataset; empty: none.
    public var flows = ""
    /// More datasets whose pairs join this one's (each with its own kind, root and maxPairs): a
    /// stage then samples from all of them, in proportion to their pair counts.
    public var include: [DatasetSpec] = []
    public init() {}

    /// Whether its pairs (and those of every included dataset) carry flow labels (what a
    /// supervised stage needs).
    public var hasGroundTruth: Bool {
        (kind.hasGroundTruth || (kind == .frames && !flows.isEmpty)) && include.allSatisfy(\.hasGroundTruth)
    }
}

public struct DataSpec: Codable, Equatable, Sendable {
    public var train = DatasetSpec()
    public var val: DatasetSpec = { var d = DatasetSpec(); d.split = .val; return d }()
    /// Skip (and count) unreadable training files instead of stopping.
    public var skipBadFiles = false
    /// Loader threads (0: all cores).
    public var workers = 0
    public init() {}
}

/// A network and its options.
public struct NetSpec: Codable, Equatable, Sendable {
    public var arch = NetArch.fastflownet
    /// Initial weights (.safetensors or .pth); empty: seeded random initialization.
    public var weights = ""
    /// RAFT refinement iterations in training.
    public var iters = 8
    /// RAFT iterations at evaluation and pseudo-labelling.
    public var evalIters = 12
    /// FastFlowNet only: gain of the correlation-aware init of the decoders' cost-volume inputs
    /// (0: FastFlowNet's plain Kaiming init). See `FastFlowNet.initialize`.
    public var correlationGain: Float = FastFlowNet.defaultCorrelationGain
    /// DEQ students only: the solver, its thresholds and the fixed-point correction
    /// (`iters` and `evalIters` do not apply).
    public var deq = DEQOptions()
    public init() {}
    public init(arch: NetArch) { self.arch = arch }
}

public struct OptimizerSpec: Codable, Equatable, Sendable {
    public var kind = Kind.adam
    public var lr = 1e-4
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-7
    /// Weight decay on weights (Adam: L2; AdamW: decoupled).
    public var weightDecay: Float = 1e-6
    /// Weight decay on biases (ARFlow: 0).
    public var biasDecay: Float = 0
    /// Global gradient-norm clip (0: off).
    public var clip: Float = 0
    public var schedule = Schedule.constant
    /// OneCycle warm-up fraction.
    public var pctStart = 0.05
    /// StepLR period and factor.
    public var stepSize = 1000
    public var gamma = 0.5
    public init() {}
}

/// The "A" operator: a random spatial transform applied jointly to images, flows and masks, then
/// photometric jitter on the images.
public struct SelfAugmentSpec: Codable, Equatable, Sendable {
    public var spatial = SpatialTransformConfig.sintel
    public var photometric = PhotometricConfig.arflowSintel
    public init() {}
}

/// Loss terms. Defaults: ARFlow's Sintel configuration where it has one.
public struct LossSpec: Codable, Equatable, Sendable {
    /// Photometric weights (ARFlow stage B: census only).
    public var photometric = Photometric.Weights(l1: 0, ssim: 0, census: 1)
    /// Warm-up steps with L1+SSIM and the range-map occlusion (ARFlow stage A; 0: none).
    public var warmupSteps = 0
    public var warmupPhotometric = Photometric.Weights(l1: 0.15, ssim: 0.85, census: 0)
    /// Weights over FastFlowNet's outputs: [full resolution (20·upsampled flow2), flow3, flow4, flow5, flow6].
    public var scaleWeights: [Float] = [1, 1, 1, 1, 0]
    /// 1 or 2.
    public var smoothOrder = 1
    /// Smoothness weight on the finest flow (divided by min(h, w)). ARFlow Sintel: 50 in its code's
    /// first-order form, which carries one more ½ than ours: 25 here.
    public var smoothWeight: Float = 25
    public var smoothAlpha: Float = 10
    /// Forward–backward occlusion constants.
    public var occAlpha1: Float = 0.01
    public var occAlpha2: Float = 0.5
    /// Self-supervision (augmentation as regularization) weight; 0: off.
    public var selfSupWeight: Float = 0.01
    /// Robust supervised form (|x| + ε)^q used by self-supervision and distillation.
    public var robustEps: Float = 0.01
    public var robustQ: Float = 0.4
    /// Distillation weight (student → teacher multi-target; teacher → student uses 1).
    public var distillWeight: Float = 1
    /// Student → teacher mask: occlusion (the teacher's non-occlusion mask, MDFlow's figure) |
    /// better (also only where the student's flow is more census-consistent than the teacher's own) |
    /// all (every pixel).
    public var distillMask = DistillMask.occlusion
    /// RAFT sequence-loss decay.
    public var sequenceGamma: Float = 0.8
    /// Also distil the backward direction.
    public var bidirectional = false
    /// Occlusion model of the stage (after any warm-up), used by the photometric mask and by the
    /// reliable mask: fb (forward–backward check, ARFlow/MDFlow) | range (range map of the backward
    /// flow, as in the warm-up; for short runs whose teacher is not yet forward–backward consistent).
    public var occlusion = OcclusionModel.fb
    /// Reliable-mask rule for teacher → student: threshold | quantile.
    public var confidence = Confidence.threshold
    /// Census-distance threshold τ (soft Hamming in [0, 1)).
    public var tau: Float = 0.25
    /// Quantile rule: keep this fraction of the non-occluded pixels with the lowest distance.
    public var quantile: Float = 0.8
    public init() {}
}

/// Which of the two nets a stage trains (for kinds that can train either).
public enum TrainedNet: String, Codable, Sendable {
    case teacher, student
}

/// One stage of the MDFlow cycle, or a supervised stage on data with ground truth.
public struct StageSpec: Codable, Equatable, Sendable {
    public var kind = StageKind.unsupervised
    public var name = ""
    /// supervised: the net it trains.
    public var net = TrainedNet.teacher
    /// This stage's training data (nil: the recipe's data.train); a supervised stage needs
    /// ground truth (synthetic, layered, chairs, sintel, kitti…).
    public var train: DatasetSpec? = nil
    public var steps = 1000
    public var batch = 4
    /// Crop [height, width] taken by the loader (FastFlowNet: multiples of 64).
    public var crop: [Int] = [128, 192]
    /// Pair-level loader augmentation (flips, frame swap; the crop above wins).
    public var pairAugment = PairAugmentConfig()
    public var selfAugment = SelfAugmentSpec()
    public var optimizer = OptimizerSpec()
    public var loss = LossSpec()
    /// A stage checkpoint folder of another run (`RUN/stages/N`, or any folder holding
    /// teacher.safetensors and/or student.safetensors): the nets found there replace the current
    /// ones when this stage starts. Empty: continue from the previous stage.
    public var restore = ""
    public init() {}

    /// Defaults per kind: RAFT's optimizer for the student (AdamW, OneCycle, clip 1).
    public static func defaults(kind: StageKind) -> StageSpec {
        var s = StageSpec()
        s.kind = kind
        if kind == .distillToStudent {
            s.optimizer.kind = .adamw; s.optimizer.lr = 4e-4; s.optimizer.eps = 1e-8
            s.optimizer.weightDecay = 1e-4; s.optimizer.biasDecay = 1e-4; s.optimizer.clip = 1
            s.optimizer.schedule = .onecycle
        }
        if kind == .supervised {
            // Mean end-point error per scale, in full-resolution pixels: the upsampled flow2 leads,
            // the coarser levels get enough direct signal to learn early.
            s.loss.scaleWeights = [1, 0.25, 0.1, 0.05, 0.02]
            s.optimizer.lr = 4e-4
            s.optimizer.schedule = .onecycle
            s.optimizer.weightDecay = 1e-5
        }
        return s
    }

    /// The net this stage updates.
    public var trains: TrainedNet {
        switch kind {
        case .supervised: return net
        case .distillToStudent: return .student
        case .unsupervised, .distillToTeacher: return .teacher
        }
    }

    /// The kinds the default recipe runs (the MDFlow cycle).
    static let cycleKinds = StageKind.allCases.filter { $0 != .supervised }
}

extension StageSpec: DefaultsFromUser {
    /// A stage a user writes starts from the defaults of its `kind` (unsupervised when absent).
    static func defaults(under user: Node, path: [String], file: String) throws -> Any {
        guard user.mapping != nil else { throw RecipeError(file: file, path: path.joined(separator: "."), "a stage must be a mapping") }
        let name = user.mapping?["kind"]?.string ?? StageKind.unsupervised.rawValue
        guard let kind = StageKind(rawValue: name) else {
            let allowed = StageKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw RecipeError(file: file, path: (path + ["kind"]).joined(separator: "."), "unknown stage kind '\(name)'; expected one of \(allowed)")
        }
        return defaults(kind: kind)
    }
}

public struct CheckpointSpec: Codable, Equatable, Sendable {
    /// Save every N steps (0: only at stage ends and on interruption).
    public var every = 200
    /// Step folders kept (stage snapshots are always kept).
    public var keep = 3
    public init() {}
}

public struct ValidationSpec: Codable, Equatable, Sendable {
    /// Validate every N steps (0: only at stage ends).
    public var every = 0
    /// At most this many validation pairs (0: all).
    public var maxPairs = 0
    /// Also validate the student.
    public var student = true
    public init() {}
}

public struct Recipe: Codable, Equatable, Sendable {
    public var name = "mdflow"
    public var seed: UInt64 = 1
    /// Threads for kernels and BLAS (0: all cores).
    public var threads = 0
    public var data = DataSpec()
    public var teacher = NetSpec(arch: .fastflownet)
    public var student = NetSpec(arch: .raftSmall)
    /// Stages in order; distillation stages are repeated `rounds` times after the others.
    public var stages: [StageSpec] = StageSpec.cycleKinds.map(StageSpec.defaults(kind:))
    public var rounds = 1
    public var checkpoint = CheckpointSpec()
    public var validation = ValidationSpec()
    /// Progress line every N steps.
    public var logEvery = 10
    public init() {}

    /// The run order with rounds expanded: other stages first (in their listed order), then `rounds` copies of
    /// the distillation stages in their listed order.
    public var expandedStages: [StageSpec] {
        let first = stages.filter { !$0.kind.isDistillation }
        let distill = stages.filter { $0.kind.isDistillation }
        var out = first
        for r in 0..<max(rounds, 0) {
            for var s in distill {
                if s.name.isEmpty { s.name = "\(s.kind.rawValue) r\(r + 1)" } else if rounds > 1 { s.name += " r\(r + 1)" }
                out.append(s)
            }
        }
        return out.map { s in var s = s; if s.name.isEmpty { s.name = s.kind.rawValue }; return s }
    }
}

// MARK: - Strict loading

extension Recipe {
    /// Reads a recipe file, applies `--set` overrides, fills defaults and checks every value.
    public static func load(path: String, overrides: [String] = [], checkPaths: Bool = true) throws -> Recipe {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RecipeError(file: path, path: "", "cannot read the recipe file")
        }
        return try parse(text, file: path, overrides: overrides, checkPaths: checkPaths)
    }

    /// Parses recipe YAML (see `load`).
    public static func parse(_ text: String, file: String, overrides: [String] = [], checkPaths: Bool = true) throws -> Recipe {
        var user: Node
        do { user = try Yams.compose(yaml: text) ?? Node.mapping([:]) }
        catch { throw RecipeError(file: file, path: "", "not valid YAML: \(error)") }
        guard user.mapping != nil else { throw RecipeError(file: file, path: "", "the top level must be a mapping of keys") }
        for o in overrides { user = try applyOverride(o, to: user, file: file) }
        user = try applyStageDefaults(user, file: file)

        let merged = try ConfigDecoding.overlay(user, on: Recipe(), path: [], file: file)
        let recipe: Recipe
        do { recipe = try YAMLDecoder().decode(Recipe.self, from: merged) }
        catch let e as DecodingError { throw RecipeError(file: file, path: keyPath(of: e), describe(e)) }
        // Strictness: every key the user wrote must be a property of the decoded recipe.
        try ConfigDecoding.checkKnown(user, against: recipe, path: [], file: file)
        try recipe.validate(file: file, checkPaths: checkPaths)
        return recipe
    }

    /// The recipe with defaults filled in, as YAML (written next to the checkpoints).
    public func resolvedYAML() throws -> String { try YAMLEncoder().encode(self) }

    /// `stageDefaults` (stage keys: crop, batch, optimizer, …) laid under every stage the user
    /// lists (or the default cycle's stages): a stage's own keys win, nested mappings merge key by
    /// key. Returns the tree without `stageDefaults`.
    static func applyStageDefaults(_ user: Node, file: String) throws -> Node {
        guard var top = user.mapping, let shared = top["stageDefaults"] else { return user }
        guard let sm = shared.mapping else { throw RecipeError(file: file, path: "stageDefaults", "must be a mapping of stage keys") }
        for key in ["kind", "name"] where sm[key] != nil {
            throw RecipeError(file: file, path: "stageDefaults.\(key)", "is set per stage, not for every stage")
        }
        var template = StageSpec()
        template.train = DatasetSpec()
        try ConfigDecoding.checkKnown(shared, against: template, path: ["stageDefaults"], file: file)
        if let given = top["stages"], given.sequence == nil { throw RecipeError(file: file, path: "stages", "must be a list of stages") }
        let listed = top["stages"]?.sequence.map(Array.init)
            ?? StageSpec.cycleKinds.map { Node.mapping([Node("kind"): Node($0.rawValue)]) }
        var stages: [Node] = []
        for (i, stage) in listed.enumerated() {
            guard stage.mapping != nil else { throw RecipeError(file: file, path: "stages.\(i)", "a stage must be a mapping") }
            stages.append(ConfigDecoding.merge(stage, over: shared))
        }
        top["stageDefaults"] = nil
        top["stages"] = Node.sequence(Node.Sequence(stages))
        return Node.mapping(top)
    }

    /// `a.b.0.c=value`: sets that key in the user's tree (creating mappings on the way).
    static func applyOverride(_ o: String, to root: Node, file: String) throws -> Node {
        guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
            throw RecipeError(file: file, path: "", "--set expects key.path=value, got '\(o)'")
        }
        let keys = o[..<eq].split(separator: ".").map(String.init)
        let valueText = String(o[o.index(after: eq)...])
        let value = (try? Yams.compose(yaml: valueText)) ?? nil ?? Node(valueText)
        func set(_ node: Node, _ rest: ArraySlice<String>) throws -> Node {
            guard let k = rest.first else { return value }
            if var seq = node.sequence {
                guard let i = Int(k), i >= 0, i < seq.count else {
                    throw RecipeError(file: file, path: keys.joined(separator: "."), "--set: '\(k)' is not an index of a list of \(seq.count)")
                }
                seq[i] = try set(seq[i], rest.dropFirst())
                return Node.sequence(seq)
            }
            if Int(k) != nil && keys.first == "stages" && rest.count == keys.count - 1 {
                // stages.N.… on a recipe that lists no stages: index into the default stages.
                let defaults = try ConfigDecoding.encodeNode(Recipe())
                if let seq = defaults.mapping?["stages"] { return try set(seq, rest) }
            }
            var m = node.mapping ?? Node.Mapping([])
            m[k] = try set(m[k] ?? Node.mapping([:]), rest.dropFirst())
            return Node.mapping(m)
        }
        return try set(root, keys[...])
    }

    static func keyPath(of e: DecodingError) -> String {
        let ctx: DecodingError.Context
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): ctx = c
        case .keyNotFound(let k, let c): return (c.codingPath + [k]).map(pathComponent).joined(separator: ".")
        @unknown default: return ""
        }
        return ctx.codingPath.map(pathComponent).joined(separator: ".")
    }

    static func pathComponent(_ k: CodingKey) -> String { k.intValue.map(String.init) ?? k.stringValue }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .typeMismatch(let t, _): return "wrong type (expected \(t))"
        case .valueNotFound(let t, _): return "missing value (expected \(t))"
        case .keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
        case .dataCorrupted(let c):
            if let unknown = c.underlyingError as? UnknownChoice { return unknown.description }
            return "invalid value: \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}

// MARK: - Validation

extension Recipe {
    /// Refuses impossible values, naming the key. (Values outside a `RecipeChoice` are refused
    /// while decoding.)
    public func validate(file: String, checkPaths: Bool = true) throws {
        func fail(_ path: String, _ msg: String) -> RecipeError { RecipeError(file: file, path: path, msg) }
        if threads < 0 { throw fail("threads", "must be ≥ 0") }
        if rounds < 0 { throw fail("rounds", "must be ≥ 0") }
        if logEvery < 1 { throw fail("logEvery", "must be ≥ 1") }
        if checkpoint.every < 0 { throw fail("checkpoint.every", "must be ≥ 0") }
        if checkpoint.keep < 1 { throw fail("checkpoint.keep", "must be ≥ 1") }
        var datasets = [("data.train", data.train), ("data.val", data.val)]
        for (i, s) in stages.enumerated() { if let d = s.train { datasets.append(("stages.\(i).train", d)) } }
        var next = 0
        while next < datasets.count {
            let (key, d) = datasets[next]
            datasets += d.include.enumerated().map { ("\(key).include.\($0.offset)", $0.element) }
            next += 1
        }
        for (key, d) in datasets {
            if d.maxPairs < 0 { throw fail("\(key).maxPairs", "must be ≥ 0") }
            if !d.flows.isEmpty && d.kind != .frames { throw fail("\(key).flows", "only kind frames reads a flows folder, not '\(d.kind.rawValue)'") }
            if checkPaths && !d.flows.isEmpty && !FileManager.default.fileExists(atPath: d.flows) { throw fail("\(key).flows", "folder '\(d.flows)' does not exist") }
            if d.kind == .synthetic {
                if let p = d.generate.problems().first { throw fail("\(key).generate", p) }
            } else if d.kind == .layered {
                if let p = d.layered.problems().first { throw fail("\(key).layered", p) }
            } else if d.kind == .video, let p = d.video.problems().first {
                throw fail("\(key).video", p)
            } else if checkPaths && !FileManager.default.fileExists(atPath: d.root) {
                throw fail("\(key).root", "dataset folder '\(d.root)' does not exist")
            }
        }
        for (key, n) in [("teacher", teacher), ("student", student)] {
            if n.iters < 1 || n.evalIters < 1 { throw fail("\(key).iters", "iterations must be ≥ 1") }
            if !(n.correlationGain >= 0 && n.correlationGain.isFinite) { throw fail("\(key).correlationGain", "must be a finite number ≥ 0, got \(n.correlationGain)") }
            if checkPaths && !n.weights.isEmpty && !FileManager.default.fileExists(atPath: n.weights) { throw fail("\(key).weights", "weights file '\(n.weights)' does not exist") }
        }
        if !data.val.hasGroundTruth {
            throw fail("data.val.kind", "validation needs ground truth; '\(data.val.kind.rawValue)' has none")
        }
        if teacher.arch != .fastflownet { throw fail("teacher.arch", "the teacher (the deployed net) must be fastflownet") }
        if student.arch == .fastflownet { throw fail("student.arch", "the student must be raft, raft-small, deq-raft or deq-raft-small") }
        if let p = student.deq.problems.first { throw fail("student.deq." + p.prefix(while: { $0 != ":" }), String(p.drop(while: { $0 != ":" }).dropFirst(2))) }
        if stages.isEmpty { throw fail("stages", "at least one stage is needed") }
        for (i, s) in stages.enumerated() {
            let p = "stages.\(i)"
            if s.steps < 0 { throw fail("\(p).steps", "must be ≥ 0") }
            if s.batch < 1 { throw fail("\(p).batch", "must be ≥ 1") }
            if s.crop.count != 2 || s.crop.contains(where: { $0 < 1 }) { throw fail("\(p).crop", "must be [height, width] with positive values") }
            if s.kind == .supervised {
                let d = s.train ?? data.train
                if !d.hasGroundTruth {
                    let labelled = DatasetKind.allCases.filter(\.hasGroundTruth).map(\.rawValue)
                    throw fail(s.train == nil ? "data.train.kind" : "\(p).train.kind",
                               "a supervised stage needs ground truth; '\(d.kind.rawValue)' has none (use \(labelled.joined(separator: ", ")), or frames with a flows folder)")
                }
            }
            let trains = s.trains == .student ? student.arch : teacher.arch
            let multiple = trains == .fastflownet ? 64 : 8
            // Every stage feeds the teacher (pseudo-labels or training), so FastFlowNet's rule always holds.
            if s.crop[0] % 64 != 0 || s.crop[1] % 64 != 0 { throw fail("\(p).crop", "FastFlowNet needs sizes that are multiples of 64, got \(s.crop)") }
            if s.crop[0] % multiple != 0 || s.crop[1] % multiple != 0 { throw fail("\(p).crop", "\(trains.rawValue) needs multiples of \(multiple), got \(s.crop)") }
            if !(s.optimizer.lr > 0) { throw fail("\(p).optimizer.lr", "must be > 0") }
            if checkPaths && !s.restore.isEmpty
                && !["teacher", "student"].contains(where: { FileManager.default.fileExists(atPath: s.restore + "/\($0).safetensors") }) {
                throw fail("\(p).restore", "'\(s.restore)' holds neither teacher.safetensors nor student.safetensors")
            }
            if s.loss.scaleWeights.count != 5 { throw fail("\(p).loss.scaleWeights", "needs 5 weights (full, flow3, flow4, flow5, flow6), got \(s.loss.scaleWeights.count)") }
            if ![1, 2].contains(s.loss.smoothOrder) { throw fail("\(p).loss.smoothOrder", "must be 1 or 2") }
            if !(s.loss.quantile > 0 && s.loss.quantile <= 1) { throw fail("\(p).loss.quantile", "must be in (0, 1]") }
            if let prob = s.selfAugment.spatial.problems().first { throw fail("\(p).selfAugment.spatial", prob) }
        }
    }
}
