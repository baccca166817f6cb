import Foundation
import Tensor
import NN
import FlowData
import Losses

/// Set by SIGINT/SIGTERM; the trainer checkpoints and stops after the current step.
nonisolated(unsafe) private var stopSignal: Int32 = 0

/// A training run that stopped on request (exit code 130) rather than by finishing.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public let checkpoint: String
    public var description: String { "interrupted; checkpoint written to \(checkpoint) (resume with --resume)" }
}

/// A run that cannot go on (too many non-finite steps, bad data).
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Runs the MDFlow cycle a recipe describes: stages in order, checkpoints, exact resume,
/// validation, progress and metrics.
public final class Trainer {
    public let recipe: Recipe
    public let runDir: URL
    public let teacher: TeacherNet
    public let student: StudentNet
    public private(set) var state = TrainState()
    /// The processes of a data-parallel run (one process: `SingleProcess`); rank 0 alone writes.
    public let communicator: Communicator
    let stages: [StageSpec]
    let train: FlowDataset
    let val: FlowDataset
    let log: (String) -> Void
    /// Rank 0's metrics.jsonl (nil on the other ranks).
    let metricsHandle: FileHandle?
    /// The same scalars for TensorBoard, in RUN/tensorboard/ (rank 0).
    let tensorboard: TensorBoardWriter?
    var groundTruthShown = false
    var optimizer: Adam?
    /// The checkpoint this process resumed from (its optimizer state is read when its stage starts).
    var resumeFolder: URL? = nil
    /// Held from init to the end of `run`: one writer per run directory.
    var lock: RunLock? = nil
    /// Consecutive non-finite steps tolerated before the run stops.
    public var maxNonFinite = 5
    /// For tests: stop (as if signalled: checkpoint, then `TrainingInterrupted`) after this many
    /// steps of this process.
    public var stopAfterSteps: Int? = nil
    /// For tests: die like SIGKILL (no checkpoint) after this many steps of this process.
    public var killAfterSteps: Int? = nil

    /// Prepares a run in `runDir`: a new one, or (with `resume`) the continuation of the run whose
    /// latest checkpoint `resume` names. A different recipe is refused unless `force`. With a
    /// `communicator` of several processes, each trains on its part of every batch; rank 0 alone
    /// writes into `runDir`, the others read its checkpoint when resuming.
    public init(recipe: Recipe, runDir: URL, resume: Bool, force: Bool = false, communicator: Communicator = SingleProcess(),
                log: @escaping (String) -> Void = { print($0) }) throws {
        self.recipe = recipe
        self.runDir = runDir
        self.log = log
        self.communicator = communicator
        self.stages = recipe.expandedStages
        for (k, stage) in stages.enumerated() where stage.batch % communicator.size != 0 {
            throw TrainingError("stages.\(k).batch: \(stage.batch) does not split over \(communicator.size) processes; make each stage's batch a multiple of \(communicator.size) (it is the global batch)")
        }
        StorageMemory.keepLargeBlocks()
        if recipe.threads > 0 { Runtime.setThreads(recipe.threads) }

        let resolved = try recipe.resolvedYAML()
        // Rank 0 checks and prepares the run directory (and generates missing data) before the
        // other ranks read them.
        let prepared = try communicator.rootFirst { () throws -> (TrainState, URL?, RunLock?) in
            if communicator.isRoot {
                return try Trainer.prepareRunDirectory(runDir, resolved: resolved, resume: resume, force: force, log: log)
            }
            var state = TrainState()
            state.recipeHash = Trainer.hash(resolved)
            guard resume && Checkpoint.holdsAnyCheckpoint(runDir) else { return (state, nil, nil) }
            let (folder, saved) = try Checkpoint.resolveForResume(runDir, log: { _ in })
            return (saved, folder, nil)
        }
        (state, resumeFolder, lock) = prepared
        (train, val) = try communicator.rootFirst {
            let train = try DatasetFactory.open(recipe.data.train, log: log)
            do { return (train, try DatasetFactory.open(recipe.data.val, log: log)) }
            catch { throw TrainingError("data.val: \(error) (validation needs labelled pairs; point data.val at them)") }
        }
        teacher = try NetFactory.teacher(recipe.teacher, seed: recipe.seed)
        student = try NetFactory.student(recipe.student, seed: recipe.seed &+ 1)
        if let folder = resumeFolder {
            try teacher.net.load(SafeTensors.read(folder.appendingPathComponent("teacher.safetensors")).tensors, source: folder.path + "/teacher.safetensors")
            try student.module.load(SafeTensors.read(folder.appendingPathComponent("student.safetensors")).tensors, source: folder.path + "/student.safetensors")
            log("resuming \(runDir.path) at stage \(state.stageIndex + 1)/\(stages.count), step \(state.stageStep) (from \(folder.lastPathComponent))")
        }
        guard communicator.isRoot else {
            metricsHandle = nil
            tensorboard = nil
            return
        }
        let metricsURL = runDir.appendingPathComponent("metrics.jsonl")
        if !FileManager.default.fileExists(atPath: metricsURL.path) && !FileManager.default.createFile(atPath: metricsURL.path, contents: nil) {
            throw TrainingError("\(metricsURL.path): cannot create the metrics file (is the disk full or read-only?)")
        }
        guard let h = try? FileHandle(forWritingTo: metricsURL) else { throw TrainingError("\(metricsURL.path): cannot open for appending") }
        h.seekToEndOfFile()
        metricsHandle = h
        tensorboard = try TensorBoardWriter(directory: runDir.appendingPathComponent("tensorboard").path)
    }

    /// Checks and prepares the run directory (rank 0): a new run's folder and recipe.yaml, or the
    /// checkpoint to resume from, with its state; takes the run lock.
    static func prepareRunDirectory(_ runDir: URL, resolved: String, resume: Bool, force: Bool,
                                    log: (String) -> Void) throws -> (TrainState, URL?, RunLock) {
        let fm = FileManager.default
        let hash = Trainer.hash(resolved)
        var state = TrainState()
        let lock: RunLock
        var resumeFolder: URL? = nil
        if resume {
            guard fm.fileExists(atPath: runDir.path) else { throw CheckpointError("\(runDir.path): no such run directory") }
            lock = try RunLock(runDir)
            Checkpoint.removeLeftovers(runDir)
            let recipeURL = runDir.appendingPathComponent("recipe.yaml")
            let old = try? String(contentsOf: recipeURL, encoding: .utf8)
            func refuseDifferent() throws {
                let diff = Trainer.differingKeys(old ?? "", resolved)
                throw TrainingError("\(runDir.path): the recipe differs from the one this run was started with (keys: \(diff.isEmpty ? "unknown" : diff.joined(separator: ", "))); pass --force to resume anyway")
            }
            if let old, !Checkpoint.holdsAnyCheckpoint(runDir) {
                // Stopped before its first checkpoint: nothing to resume, so the run starts again.
                if Trainer.hash(old) != hash && !force { try refuseDifferent() }
                log("\(runDir.path): no checkpoint was written yet; starting the run from the beginning")
                try Checkpoint.writeAtomically(Data(resolved.utf8), to: recipeURL)
                state.recipeHash = hash
            } else {
                let (folder, saved) = try Checkpoint.resolveForResume(runDir, log: log)
                if saved.recipeHash != hash && !force { try refuseDifferent() }
                state = saved
                resumeFolder = folder
            }
            // Steps after the checkpoint are run again; their metrics lines would be duplicates.
            try Trainer.pruneMetrics(runDir.appendingPathComponent("metrics.jsonl"), after: state.globalStep)
        } else {
            try fm.createDirectory(at: runDir, withIntermediateDirectories: true)
            lock = try RunLock(runDir)
            if fm.fileExists(atPath: runDir.appendingPathComponent(Checkpoint.latestFile).path) {
                throw TrainingError("\(runDir.path) already holds a run; pass --resume to continue it or choose another --run-dir")
            }
            try Checkpoint.writeAtomically(Data(resolved.utf8), to: runDir.appendingPathComponent("recipe.yaml"))
            state.recipeHash = hash
        }
        return (state, resumeFolder, lock)
    }

    deinit { try? metricsHandle?.close() }

    /// Drops the lines of a metrics file whose `global_step` is past `step` (rewritten atomically;
    /// a missing file is left alone, lines that do not parse are kept).
    static func pruneMetrics(_ url: URL, after step: Int) throws {
        guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else { return }
        var kept: [Substring] = []
        var dropped = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
               let g = object["global_step"] as? Int, g > step {
                dropped += 1
                continue
            }
            kept.append(line)
        }
        guard dropped > 0 else { return }
        try Checkpoint.writeAtomically(Data(kept.map { $0 + "\n" }.joined().utf8), to: url)
    }

    static func hash(_ s: String) -> String { fnv1aHex(s) }

    /// Dotted key paths whose lines differ between two resolved recipes.
    static func differingKeys(_ a: String, _ b: String) -> [String] {
        func flatten(_ text: String) -> [String: String] {
            var out: [String: String] = [:], stack: [(Int, String)] = []
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let indent = line.prefix(while: { $0 == " " || $0 == "-" }).count
                let body = line.dropFirst(indent)
                guard let colon = body.firstIndex(of: ":") else { continue }
                let key = String(body[..<colon]), value = String(body[body.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                while let last = stack.last, last.0 >= indent { stack.removeLast() }
                let path = (stack.map(\.1) + [key]).joined(separator: ".")
                if value.isEmpty { stack.append((indent, key)) } else { out[path, default: ""] += value + ";" }
            }
            return out
        }
        let fa = flatten(a), fb = flatten(b)
        return Set(fa.keys).union(fb.keys).filter { fa[$0] != fb[$0] }.sorted()
    }

    // MARK: - Running

    /// Runs (or continues) every stage; returns the validation history.
    @discardableResult
    public func run() throws -> [StageResult] {
        signal(SIGINT) { _ in stopSignal = 1 }
        signal(SIGTERM) { _ in stopSignal = 1 }
        defer { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL); lock = nil }
        var stepsThisProcess = 0
        log("run \(runDir.path): \(stages.count) stage(s); teacher \(recipe.teacher.arch.rawValue) (\(teacher.net.parameterCount) parameters), student \(recipe.student.arch.rawValue) (\(student.module.parameterCount) parameters); \(train.name): \(train.pairs.count) training pairs; \(Runtime.threads) thread(s)")
        while state.stageIndex < stages.count {
            let k = state.stageIndex
            let stage = stages[k]
            let finished = state.history.contains(where: { $0.stage == k })
            if state.stageStep == 0 && !finished && !stage.restore.isEmpty { try restoreNets(from: stage.restore) }
            if state.stageStep < stage.steps {
                try runStage(k, stage, stepsThisProcess: &stepsThisProcess)
            }
            if !finished { try finishStage(k, stage) }
            state.stageIndex += 1
            state.stageStep = 0
            state.loader = nil
            state.optimizerStep = 0
            optimizer = nil
        }
        printSummary()
        return state.history
    }

    func trainedNet(_ stage: StageSpec) -> TrainableFlowNet { stage.trains == .student ? student : teacher }

    func makeOptimizer(_ stage: StageSpec) -> Adam {
        let o = stage.optimizer
        let params = trainedNet(stage).module.namedParameters()
        let weights = params.filter { !$0.0.hasSuffix(".bias") }, biases = params.filter { $0.0.hasSuffix(".bias") }
        return Adam([.init(weights, weightDecay: o.weightDecay), .init(biases, weightDecay: o.biasDecay)],
                    lr: o.lr, betas: (o.beta1, o.beta2), eps: o.eps, decoupled: o.kind == .adamw)
    }

    func schedule(_ stage: StageSpec) -> LRSchedule {
        let o = stage.optimizer
        switch o.schedule {
        case .onecycle: return OneCycleLR(maxLR: o.lr, totalSteps: stage.steps + 100, pctStart: o.pctStart)
        case .step: return StepLR(base: o.lr, stepSize: o.stepSize, gamma: o.gamma)
        case .constant: return ConstantLR(o.lr)
        }
    }

    func stageSeed(_ k: Int) -> UInt64 { recipe.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(k + 1) &* 1_000_003 }

    /// What one stage's steps share: its optimizer, schedule, loader, the net it trains and the
    /// clock behind pairs/s and the ETA.
    final class StageRun {
        let index: Int
        let spec: StageSpec
        let title: String
        let optimizer: Adam
        let schedule: LRSchedule
        let loader: DataLoader
        let net: TrainableFlowNet
        let params: [Tensor]
        /// Start of the timed steps (validation time is added back to keep it out of the rate).
        var t0 = Timing.now()
        var lastLog: Double
        let startStep: Int
        init(index: Int, spec: StageSpec, title: String, optimizer: Adam, schedule: LRSchedule, loader: DataLoader,
             net: TrainableFlowNet, startStep: Int) {
            self.index = index; self.spec = spec; self.title = title; self.optimizer = optimizer; self.schedule = schedule
            self.loader = loader; self.net = net; self.startStep = startStep
            params = net.module.namedParameters().map(\.1)
            lastLog = t0
        }
    }

    /// Runs (or continues) stage `k` to its last step.
    func runStage(_ k: Int, _ stage: StageSpec, stepsThisProcess: inout Int) throws {
        let run = try startStage(k, stage)
        defer { run.loader.stop() }
        while state.stageStep < stage.steps {
            let result = try step(run)
            stepsThisProcess += 1
            try record(run, result)
            if let kill = killAfterSteps, stepsThisProcess >= kill { throw TrainingError("killed (test hook) after \(kill) steps") }
            let interrupted = result.stop || (stopAfterSteps.map { stepsThisProcess >= $0 } ?? false)
            try checkpointOrValidate(run, interrupted: interrupted)
        }
    }

    /// The stage's optimizer (resumed from the checkpoint when the stage is under way), data
    /// loader and net, with the stage's opening log line.
    func startStage(_ k: Int, _ stage: StageSpec) throws -> StageRun {
        let opt = makeOptimizer(stage)
        if state.stageStep > 0 {
            guard let folder = resumeFolder else { throw TrainingError("\(runDir.path): stage \(k + 1) is under way but no checkpoint was resumed") }
            let (t, meta) = try SafeTensors.read(folder.appendingPathComponent("optimizer.safetensors"))
            try opt.load(t, step: Int(meta["step"] ?? "0") ?? 0, source: folder.path + "/optimizer.safetensors")
        } else {
            state.rng = RandomGenerator(seed: stageSeed(k))
        }
        optimizer = opt
        var pair = stage.pairAugment
        pair.crop = stage.crop
        var data = try communicator.rootFirst { try stage.train.map { try DatasetFactory.open($0, log: log) } } ?? train
        if stage.kind == .supervised { data = ForwardFlowOnly(data) }
        let loader = try DataLoader(dataset: data, config: loaderConfig(stage), augmentation: AugmentationConfig(pair: pair),
                                    seed: stageSeed(k) ^ 0x5A5A, resumeFrom: state.loader,
                                    shard: DataShard(rank: communicator.rank, count: communicator.size))
        teacher.net.setTraining(true)
        student.module.setTraining(stage.trains == .student)
        let title = "stage \(k + 1)/\(stages.count) \(stage.name)"
        log("\(title): \(data.name), \(data.pairs.count) pairs; \(stage.steps) steps, batch \(stage.batch), crop \(stage.crop[0])×\(stage.crop[1]), \(stage.optimizer.kind.rawValue) lr \(stage.optimizer.lr) (\(stage.optimizer.schedule.rawValue))")
        return StageRun(index: k, spec: stage, title: title, optimizer: opt, schedule: schedule(stage), loader: loader,
                        net: trainedNet(stage), startStep: state.stageStep)
    }

    /// What one step reports: the loss and its terms over the whole batch, the gradient norm before
    /// clipping, and whether any process was asked to stop (SIGINT/SIGTERM).
    struct StepResult {
        var loss: Float
        var terms: [String: Float]
        var gradNorm: Float
        var stop: Bool
        /// Seconds this process spent adding gradients up over processes.
        var allreduceSeconds: Double
    }

    /// One optimizer step: the stage's loss on the next batch, its gradient (clipped), the update —
    /// or, when the loss or gradient is not finite, no update and a count towards `maxNonFinite`.
    /// Over several processes each computes its share of the batch's loss; the loss, its terms and
    /// then the gradients are added up over processes before any decision, so every process
    /// takes the same one. Advances the run state.
    func step(_ run: StageRun) throws -> StepResult {
        let stage = run.spec, opt = run.optimizer
        let step = state.stageStep
        let batch = try run.loader.next()
        for s in batch.skipped { log("skipped \(s)") }
        opt.lr = run.schedule.lr(at: step)
        var rng = state.rng
        let local = communicator.size == 1 ? stage.batch : stage.batch / communicator.size
        let random = StepRandomness(seed: rng.next(), first: communicator.rank * local, count: local)
        let share = communicator.batchShare
        let loss = computeLoss(stage, step: step, batch: batch, random: random, share: share)
        let keys = loss.terms.keys.sorted()
        let totals = communicator.sum([Double(loss.total.item)] + keys.map { Double(loss.terms[$0]!) } + [stopSignal != 0 ? 1 : 0])
        var result = StepResult(loss: Float(totals[0]), terms: [:], gradNorm: 0, stop: totals[totals.count - 1] > 0, allreduceSeconds: 0)
        for (i, key) in keys.enumerated() { result.terms[key] = Float(totals[i + 1]) }
        var finite = result.loss.isFinite
        var gradNorm: Float = 0
        if finite {
            Tape.backward(loss.total)
            let t0 = Timing.now()
            communicator.sumGradients(run.params)
            result.allreduceSeconds = Timing.now() - t0
            gradNorm = clipGradNorm(run.params, maxNorm: stage.optimizer.clip > 0 ? stage.optimizer.clip : .infinity)
            finite = gradNorm.isFinite
            if !finite {
                // Name where it went wrong: the parameters whose gradients hold NaN or ±inf.
                let bad = run.net.module.namedParameters().compactMap { name, t -> String? in
                    guard let g = t.gradStorage else { return nil }
                    let n = (0..<t.count).reduce(0) { $0 + (g.pointer[$1].isFinite ? 0 : 1) }
                    return n > 0 ? "\(name) (\(n)/\(t.count))" : nil
                }
                log("\(run.title): step \(step + 1): " + (bad.isEmpty ? "the gradient norm overflowed"
                    : "non-finite gradients in " + bad.prefix(4).joined(separator: ", ")
                      + (bad.count > 4 ? " and \(bad.count - 4) more parameters" : "")))
            }
        } else {
            Tape.clear()
        }
        if finite {
            opt.update()
            state.nonFiniteStreak = 0
        } else {
            state.skippedSteps += 1
            state.nonFiniteStreak += 1
            log("\(run.title): step \(step + 1): non-finite \(result.loss.isFinite ? "gradient" : "loss"); step skipped, weights untouched (\(state.nonFiniteStreak) in a row)")
        }
        for p in run.params { p.freeGrad() }
        if state.nonFiniteStreak >= maxNonFinite {
            throw TrainingError("\(run.title): \(state.nonFiniteStreak) non-finite steps in a row at step \(step + 1); stopping (the latest checkpoint in \(runDir.path) is intact)")
        }
        state.rng = rng
        state.loader = batch.end
        state.stageStep += 1
        state.globalStep += 1
        state.optimizerStep = opt.step
        result.gradNorm = gradNorm
        return result
    }

    /// The step's metrics line, and every `logEvery` steps (or 30 s) a progress line with the ETA.
    func record(_ run: StageRun, _ result: StepResult) throws {
        let stage = run.spec
        let now = Timing.now()
        let done = state.stageStep - run.startStep
        let rate = Double(done * stage.batch) / max(now - run.t0, 1e-9)
        var record: [String: Any] = ["type": "train", "stage": run.index + 1, "stage_name": stage.name, "step": state.stageStep,
                                     "global_step": state.globalStep, "loss": Double(result.loss), "lr": run.optimizer.lr,
                                     "grad_norm": Double(result.gradNorm), "pairs_per_s": rate, "rss_mb": Timing.residentMB(),
                                     "heap_mb": Double(StorageMemory.heapInUse) / 1_048_576,
                                     "tensors_mb": Double(StorageMemory.usage.live) / 1_048_576]
        for (key, v) in result.terms { record[key] = Double(v) }
        if communicator.size > 1 { record["allreduce_ms"] = result.allreduceSeconds * 1000 }
        try writeMetrics(record)
        if state.stageStep % recipe.logEvery == 0 || state.stageStep == stage.steps || now - run.lastLog > 30 {
            run.lastLog = now
            let eta = Double(stage.steps - state.stageStep) * (now - run.t0) / Double(max(done, 1))
            let terms = result.terms.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4g", $0.value))" }.joined(separator: " ")
            log("\(run.title) step \(state.stageStep)/\(stage.steps)  loss \(String(format: "%.4f", result.loss))  \(terms)  lr \(String(format: "%.2e", run.optimizer.lr))  \(String(format: "%.1f", rate)) pairs/s  ETA \(Trainer.duration(eta))")
            // After this step's rss_mb was recorded: the record shows what the steps since the last trim regrew.
            StorageMemory.releaseFreePages()
        }
    }

    /// A step checkpoint every `checkpoint.every` steps (and at once when interrupted, which then
    /// stops the run), and a mid-stage validation every `validation.every` steps.
    func checkpointOrValidate(_ run: StageRun, interrupted: Bool) throws {
        let stage = run.spec
        if interrupted || (recipe.checkpoint.every > 0 && state.stageStep % recipe.checkpoint.every == 0 && state.stageStep < stage.steps) {
            let name = try save()
            if interrupted { throw TrainingInterrupted(checkpoint: runDir.appendingPathComponent(name).path) }
        }
        if recipe.validation.every > 0 && state.stageStep % recipe.validation.every == 0 && state.stageStep < stage.steps {
            let v0 = Timing.now()
            _ = try validate(run.index, stage, final: false)
            run.t0 += Timing.now() - v0          // keep validation out of pairs/s and the ETA
        }
    }

    /// Loads the teacher and/or student weights a stage's `restore` folder holds (each checked
    /// against the folder's manifest, if it has one).
    func restoreNets(from folder: String) throws {
        var restored: [String] = []
        for (name, module) in [("teacher", teacher.module), ("student", student.module)] {
            let path = folder + "/\(name).safetensors"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            try NetFactory.load(path, into: module)
            restored.append(name)
        }
        guard !restored.isEmpty else { throw TrainingError("\(folder): holds neither teacher.safetensors nor student.safetensors (restore)") }
        log("restored the \(restored.joined(separator: " and ")) from \(folder)")
    }

    func loaderConfig(_ stage: StageSpec) -> LoaderConfig {
        var c = LoaderConfig(batchSize: stage.batch)
        c.skipBadFiles = recipe.data.skipBadFiles
        c.workers = recipe.data.workers
        c.loadGroundTruth = stage.kind == .supervised
        return c
    }

    func computeLoss(_ stage: StageSpec, step: Int, batch: Batch, random: StepRandomness, share: BatchShare) -> StepLoss {
        switch stage.kind {
        case .supervised:
            return StageLosses.supervisedStep(net: trainedNet(stage), image1: batch.image1, image2: batch.image2,
                                              flow: batch.flow!, valid: batch.valid!, stage: stage, random: random, share: share)
        case .distillToStudent:
            return StageLosses.studentStep(teacher: teacher, student: student, image1: batch.image1, image2: batch.image2, stage: stage,
                                           random: random, share: share)
        case .distillToTeacher:
            let fs = student.infer(batch.image1, batch.image2)
            teacher.net.setTraining(true)
            return StageLosses.teacherStep(teacher: teacher, image1: batch.image1, image2: batch.image2, stage: stage, step: step,
                                           studentFlow: fs, random: random, share: share)
        case .unsupervised:
            return StageLosses.teacherStep(teacher: teacher, image1: batch.image1, image2: batch.image2, stage: stage, step: step,
                                           studentFlow: nil, random: random, share: share)
        }
    }

    /// Writes a step checkpoint and moves `latest` (rank 0); returns its folder name. Over several
    /// processes, first checks that every process holds the same weights.
    @discardableResult
    func save(extraFolder: String? = nil) throws -> String {
        let name = String(format: "step-%07d", state.globalStep)
        guard communicator.sameEverywhere(teacher.module.namedParameters().map(\.1) + student.module.namedParameters().map(\.1)) else {
            throw TrainingError("step \(state.globalStep): the processes' weights differ (the runs have diverged); the latest checkpoint in \(runDir.path) is intact")
        }
        guard communicator.isRoot else { return name }
        let files = try Checkpoint.files(teacher: teacher.net, student: student.module, optimizer: optimizer, state: state)
        try Checkpoint.writeFolder(runDir, name: name, files: files)
        if let extraFolder {
            let stagesDir = runDir.appendingPathComponent("stages")
            try FileManager.default.createDirectory(at: stagesDir, withIntermediateDirectories: true)
            try Checkpoint.writeFolder(stagesDir, name: extraFolder, files: files)
        }
        try Checkpoint.writeAtomically(Data((name + "\n").utf8), to: runDir.appendingPathComponent(Checkpoint.latestFile))
        Checkpoint.prune(runDir, keep: recipe.checkpoint.keep)
        return name
    }

    /// Validates at a stage end, records the result, and writes the stage snapshot.
    func finishStage(_ k: Int, _ stage: StageSpec) throws {
        let t0 = Timing.now()
        let (te, se) = try validate(k, stage, final: true)
        state.history.append(StageResult(stage: k, name: stage.name, teacherEPE: te, studentEPE: se, seconds: Timing.now() - t0))
        optimizer = nil
        try save(extraFolder: String(k + 1))
    }

    /// Validates the teacher (and the student, once it matters); over several processes each
    /// evaluates every size-th pair and the metrics' sums are added up, so all get the whole
    /// split's numbers. Rank 0 records them.
    func validate(_ k: Int, _ stage: StageSpec, final: Bool) throws -> (Double, Double?) {
        let part = DataShard(rank: communicator.rank, count: communicator.size)
        func measure(_ net: TrainableFlowNet) throws -> FlowMetrics {
            let m = try Evaluation.run(net, on: val, maxPairs: recipe.validation.maxPairs, shard: part)
            return communicator.size == 1 ? m : FlowMetrics(sums: communicator.sum(m.sums))
        }
        let mt = try measure(teacher)
        var ms: FlowMetrics? = nil
        // The student is worth validating once a stage has trained it or learned from it.
        let studentTrained = state.history.contains { stages[$0.stage].trains == .student } || stage.trains == .student
        if recipe.validation.student && studentTrained { ms = try measure(student) }
        if communicator.isRoot { try addFlowImages(studentToo: ms != nil) }
        teacher.net.setTraining(true)
        student.module.setTraining(stage.trains == .student)
        var record: [String: Any] = ["type": "val", "stage": k + 1, "stage_name": stage.name, "global_step": state.globalStep,
                                     "final": final, "teacher": mt.summary]
        if let ms { record["student"] = ms.summary }
        try writeMetrics(record)
        log("validation after \(stage.name) (\(val.name), \(mt.images) pairs): teacher EPE \(String(format: "%.3f", mt.epe))" +
            (ms.map { ", student EPE \(String(format: "%.3f", $0.epe))" } ?? ""))
        return (mt.epe, ms?.epe)
    }

    /// Flow colour maps of the first validation pair for TensorBoard: val/teacher_flow, and
    /// val/student_flow once the student is validated; val/ground_truth at the first validation.
    /// Leaves both nets in inference mode, as validation does.
    func addFlowImages(studentToo: Bool) throws {
        guard let tensorboard, let pair = val.pairs.first else { return }
        let sample = try pair.load()
        let (h, w) = (sample.height, sample.width)
        let a = Tensor(shape: [1, 3, h, w], values: sample.image1.pixels), b = Tensor(shape: [1, 3, h, w], values: sample.image2.pixels)
        let scale = sample.flow.map { FlowViz.maxMagnitude($0) }
        func colours(_ flow: Tensor) -> RGBImage {
            FlowViz.colorize(FlowField(width: w, height: h, uv: flow.toArray(), valid: [Float](repeating: 1, count: h * w)), maxMagnitude: scale)
        }
        try tensorboard.add(step: state.globalStep, tag: "val/teacher_flow", image: colours(Tape.noGrad { teacher.infer(a, b) }))
        if studentToo {
            try tensorboard.add(step: state.globalStep, tag: "val/student_flow", image: colours(Tape.noGrad { student.infer(a, b) }))
        }
        if let gt = sample.flow, !groundTruthShown {
            groundTruthShown = true
            try tensorboard.add(step: state.globalStep, tag: "val/ground_truth", image: FlowViz.colorize(gt, maxMagnitude: scale))
        }
    }

    /// Appends one JSON line to metrics.jsonl; a failed write (a full disk) stops the run with the
    /// file's name rather than trapping in Foundation.
    func writeMetrics(_ record: [String: Any]) throws {
        guard let metricsHandle, let tensorboard else { return }
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        do { try metricsHandle.write(contentsOf: data + Data("\n".utf8)) }
        catch { throw TrainingError("\(runDir.appendingPathComponent("metrics.jsonl").path): cannot append (\(error.localizedDescription))") }
        if let step = record["global_step"] as? Int, let type = record["type"] as? String {
            try tensorboard.add(step: step, scalars: Trainer.scalars(record, prefix: type + "/"))
        }
    }

    /// The numeric entries of a metrics record as TensorBoard tags ("train/loss",
    /// "val/teacher/epe"), without the counters that place it.
    static func scalars(_ record: [String: Any], prefix: String) -> [(String, Double)] {
        var out: [(String, Double)] = []
        for (key, value) in record.sorted(by: { $0.key < $1.key }) where !["type", "stage", "step", "global_step", "final"].contains(key) {
            switch value {
            case let v as Double: out.append((prefix + key, v))
            case let v as Float: out.append((prefix + key, Double(v)))
            case let v as Int: out.append((prefix + key, Double(v)))
            case let d as [String: Any]: out += scalars(d, prefix: prefix + key + "/")
            default: break
            }
        }
        return out
    }

    func printSummary() {
        guard communicator.isRoot else { return }
        var s = "\nteacher validation EPE after each stage (\(val.name)):\n"
        s += "| # | stage | teacher EPE | student EPE |\n|---|---|---|---|\n"
        for r in state.history {
            s += "| \(r.stage + 1) | \(r.name) | \(String(format: "%.3f", r.teacherEPE)) | \(r.studentEPE.map { String(format: "%.3f", $0) } ?? "–") |\n"
        }
        if let zero = try? Evaluation.zeroFlow(on: val, maxPairs: recipe.validation.maxPairs) {
            s += "zero flow (a net that learned nothing) scores EPE \(String(format: "%.3f", zero.epe)) on the same pairs\n"
        }
        log(s)
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
