import Testing
import Foundation
import Training
import FlowData
import TestSupport

@Suite struct RecipeTests {
    func refusal(_ yaml: String, overrides: [String] = []) -> String? {
        do { _ = try Recipe.parse(yaml, file: "bad.yaml", overrides: overrides); return nil }
        catch { return "\(error)" }
    }

    @Test func emptyRecipeTakesEveryDefault() throws {
        let r = try Recipe.parse("name: x\n", file: "x.yaml")
        #expect(r.stages.map(\.kind) == [.unsupervised, .distillToStudent, .distillToTeacher])
        #expect(r.stages[1].optimizer.kind == .adamw && r.stages[1].optimizer.schedule == .onecycle)
        #expect(r.stages[0].loss.robustQ == 0.4 && r.stages[0].loss.occAlpha1 == 0.01)
    }

    /// A DEQ student from the command line, its options partial, and each bad option named.
    @Test func deqStudentKeysDecodeAndBadOnesAreNamed() throws {
        let r = try Recipe.parse("name: x\n", file: "x.yaml",
                                 overrides: ["student.arch=deq-raft-small", "student.deq.thres=8", "student.deq.solver=naive"])
        #expect(r.student.arch == .deqRaftSmall && r.student.deq.thres == 8 && r.student.deq.solver == .naive)
        #expect(r.student.deq.andersonM == 6 && r.student.deq.core == .indexing)   // the rest keeps its defaults
        let tau = refusal("student: {arch: deq-raft, deq: {tau: 1.5}}\n")
        #expect(tau?.contains("student.deq.tau") == true && tau?.contains("(0, 1]") == true, "\(tau ?? "accepted")")
        let states = refusal("student: {arch: deq-raft, deq: {thres: 4, states: 6}}\n")
        #expect(states?.contains("student.deq.states") == true, "\(states ?? "accepted")")
        let solver = refusal("student: {arch: deq-raft, deq: {solver: broyden}}\n")
        #expect(solver?.contains("student.deq.solver") == true && solver?.contains("anderson") == true, "\(solver ?? "accepted")")
        let typo = refusal("student: {arch: deq-raft, deq: {phantomStep: 2}}\n")
        #expect(typo?.contains("student.deq.phantomStep") == true, "\(typo ?? "accepted")")
    }

    @Test func unknownKeyIsRefusedWithItsPath() {
        let e = refusal("stages:\n  - kind: unsupervised\n    stpes: 10\n")
        #expect(e?.contains("bad.yaml") == true && e?.contains("stages.0.stpes") == true && e?.contains("unknown key") == true, "\(e ?? "accepted")")
        let top = refusal("seeed: 3\n")
        #expect(top?.contains("seeed") == true)
        let nested = refusal("stages:\n  - kind: unsupervised\n    selfAugment: {spatial: {zooom: [1, 2, 1, 1]}}\n")
        #expect(nested?.contains("stages.0.selfAugment.spatial.zooom") == true, "\(nested ?? "accepted")")
    }

    @Test func wrongTypeIsRefusedWithItsPath() {
        let e = refusal("stages:\n  - kind: unsupervised\n    steps: many\n")
        #expect(e?.contains("stages.0.steps") == true && e?.contains("wrong type") == true, "\(e ?? "accepted")")
    }

    @Test func missingDatasetIsRefused() {
        let e = refusal("data:\n  train: {kind: chairs, root: /nonexistent/chairs}\n")
        #expect(e?.contains("data.train.root") == true && e?.contains("/nonexistent/chairs") == true, "\(e ?? "accepted")")
    }

    /// Frames become labelled data with a flows folder; datasets combine through `include`, each
    /// checked under its own key.
    @Test func flowsAndIncludedDatasetsAreCheckedUnderTheirKeys() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-recipe-flows-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/frames", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/flows", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stage = "stages:\n  - {kind: supervised, net: teacher, steps: 1}\n"
        let unlabelled = refusal("data:\n  train: {kind: frames, root: \(dir)/frames}\n" + stage)
        #expect(unlabelled?.contains("data.train.kind") == true && unlabelled?.contains("frames with a flows folder") == true, "\(unlabelled ?? "accepted")")
        let labelled = try Recipe.parse("data:\n  train: {kind: frames, root: \(dir)/frames, flows: \(dir)/flows}\n" + stage, file: "ok.yaml")
        #expect(labelled.data.train.hasGroundTruth)
        let wrongKind = refusal("data:\n  train: {kind: middlebury, root: \(dir)/frames, flows: \(dir)/flows}\n")
        #expect(wrongKind?.contains("data.train.flows") == true, "\(wrongKind ?? "accepted")")
        let noFolder = refusal("data:\n  train: {kind: frames, root: \(dir)/frames, flows: \(dir)/nowhere}\n")
        #expect(noFolder?.contains("data.train.flows") == true && noFolder?.contains("nowhere") == true, "\(noFolder ?? "accepted")")
        let mixed = "data:\n  train:\n    {kind: frames, root: \(dir)/frames, flows: \(dir)/flows,\n     include: [{kind: frames, root: \(dir)/frames, maxPairs: MAX}]}\n"
        let nested = refusal(mixed.replacingOccurrences(of: "MAX", with: "-1"))
        #expect(nested?.contains("data.train.include.0.maxPairs") == true, "\(nested ?? "accepted")")
        // An included unlabelled dataset makes the whole unlabelled.
        let half = refusal(mixed.replacingOccurrences(of: "MAX", with: "3") + stage)
        #expect(half?.contains("needs ground truth") == true, "\(half ?? "accepted")")
        let typo = refusal(mixed.replacingOccurrences(of: "maxPairs: MAX", with: "maxPiars: 3"))
        #expect(typo?.contains("data.train.include.0.maxPiars") == true, "\(typo ?? "accepted")")
    }

    /// `stageDefaults` lies under every stage: a stage's own keys win, nested mappings merge.
    @Test func stageDefaultsApplyToEveryStageUnlessTheStageSetsTheKey() throws {
        let yaml = """
        stageDefaults: {crop: [256, 320], batch: 2, optimizer: {lr: 1.0e-4, clip: 5}}
        stages:
          - {kind: unsupervised, steps: 10}
          - {kind: distill-to-student, steps: 10, batch: 1, optimizer: {lr: 3.0e-5}}
        """
        let r = try Recipe.parse(yaml, file: "d.yaml")
        #expect(r.stages.map(\.crop) == [[256, 320], [256, 320]])
        #expect(r.stages.map(\.batch) == [2, 1])
        #expect(r.stages.map(\.optimizer.lr) == [1e-4, 3e-5])
        #expect(r.stages.map(\.optimizer.clip) == [5, 5])
        // The student stage keeps its kind's other defaults (AdamW) under the shared keys.
        #expect(r.stages[1].optimizer.kind == .adamw)
        // Without a stage list, the default cycle's stages take them.
        let cycle = try Recipe.parse("stageDefaults: {batch: 3}\n", file: "d.yaml")
        #expect(cycle.stages.count == 3 && cycle.stages.allSatisfy { $0.batch == 3 })
        #expect(try Recipe.parse("stageDefaults: {batch: 3}\n", file: "d.yaml", overrides: ["stageDefaults.batch=5"]).stages[0].batch == 5)
        #expect(refusal("stageDefaults: {crp: [64, 64]}\n")?.contains("stageDefaults.crp") == true)
        #expect(refusal("stageDefaults: {kind: supervised}\n")?.contains("stageDefaults.kind") == true)
        #expect(refusal("stageDefaults: 3\n")?.contains("must be a mapping") == true)
        #expect(refusal("stageDefaults: {batch: 2}\nstages: 3\n")?.contains("must be a list") == true)
    }

    @Test func aRestoreFolderWithoutNetsIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-restore-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = refusal("stages:\n  - {kind: unsupervised, restore: \(dir)}\n")
        #expect(e?.contains("stages.0.restore") == true && e?.contains("neither teacher.safetensors") == true, "\(e ?? "accepted")")
    }

    @Test func impossibleValuesAreRefused() {
        #expect(refusal("stages:\n  - {kind: unsupervised, crop: [100, 192]}\n")?.contains("multiples of 64") == true)
        #expect(refusal("stages:\n  - {kind: unsupervised, batch: 0}\n")?.contains("stages.0.batch") == true)
        #expect(refusal("stages:\n  - {kind: distill-sideways}\n")?.contains("unknown stage kind") == true)
        #expect(refusal("teacher: {arch: raft}\n")?.contains("teacher.arch") == true)
    }

    @Test func unknownChoiceIsRefusedWithItsPathAndTheAllowedValues() {
        let schedule = refusal("stages:\n  - {kind: unsupervised, optimizer: {schedule: cosine}}\n")
        #expect(schedule == "bad.yaml: stages.0.optimizer.schedule: unknown value 'cosine'; expected one of constant, step, onecycle",
                "\(schedule ?? "accepted")")
        let kind = refusal("data:\n  train: {kind: flyingthings, root: /tmp}\n")
        #expect(kind == "bad.yaml: data.train.kind: unknown value 'flyingthings'; expected one of "
                + "synthetic, layered, chairs, sintel, kitti2015, kitti2012, kitti-multiview, middlebury, frames, video",
                "\(kind ?? "accepted")")
        let arch = refusal("student: {arch: pwcnet}\n")
        #expect(arch?.contains("student.arch: unknown value 'pwcnet'; expected one of fastflownet, raft, raft-small") == true, "\(arch ?? "accepted")")
        let occlusion = refusal("name: x\n", overrides: ["stages.0.loss.occlusion=maybe"])
        #expect(occlusion?.contains("stages.0.loss.occlusion: unknown value 'maybe'; expected one of fb, range") == true, "\(occlusion ?? "accepted")")
    }

    @Test func choiceOverridesTakeEffect() throws {
        let r = try Recipe.parse("name: x\n", file: "x.yaml", overrides: ["stages.0.loss.occlusion=range", "stages.2.loss.distillMask=better",
                                                                         "data.val.split=all", "stages.1.optimizer.schedule=step"])
        #expect(r.stages[0].loss.occlusion == .range && r.stages[2].loss.distillMask == .better)
        #expect(r.data.val.split == .all && r.stages[1].optimizer.schedule == .step)
        #expect(try r.resolvedYAML().contains("occlusion: range"))
    }

    @Test func overridesSetNestedKeysAndAreCheckedToo() throws {
        let r = try Recipe.parse("name: x\n", file: "x.yaml", overrides: ["stages.1.steps=7", "rounds=2", "stages.0.loss.tau=0.5"])
        #expect(r.stages[1].steps == 7 && r.rounds == 2 && r.stages[0].loss.tau == 0.5)
        #expect(r.expandedStages.count == 5)
        #expect(refusal("name: x\n", overrides: ["stages.0.nope=1"])?.contains("stages.0.nope") == true)
    }

    @Test func everyShippedRecipeParses() throws {
        let dir = TestSupport.Fixtures.packageRoot.appendingPathComponent("Recipes")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 6)
        for f in files { _ = try Recipe.load(path: dir.appendingPathComponent(f).path, checkPaths: false) }
    }

    @Test func resolvedRecipeRoundTrips() throws {
        let r = try Recipe.parse("name: rt\nrounds: 2\n", file: "rt.yaml")
        let again = try Recipe.parse(try r.resolvedYAML(), file: "resolved.yaml")
        #expect(again == r)
    }

    @Test func supervisedStagesNeedGroundTruthAndTakeTheirOwnData() throws {
        let yaml = """
        data: {train: {kind: frames, root: /tmp}}
        stages:
          - {kind: supervised, net: student, steps: 5, train: {kind: layered, root: /tmp/l, layered: {pairs: 7}}}
          - {kind: unsupervised, steps: 3}
        """
        let r = try Recipe.parse(yaml, file: "s.yaml", checkPaths: false)
        #expect(r.stages[0].trains == .student && r.stages[1].trains == .teacher)
        // A partial dataset spec takes the defaults for every key it does not name.
        #expect(r.stages[0].train?.layered.pairs == 7 && r.stages[0].train?.layered.width == LayeredConfig().width)
        #expect(r.stages[0].optimizer.schedule == .onecycle && r.stages[1].train == nil)
        let again = try Recipe.parse(try r.resolvedYAML(), file: "resolved.yaml", checkPaths: false)
        #expect(again == r)
        let e = refusal("data: {train: {kind: frames, root: /tmp}}\nstages:\n  - {kind: supervised}\n")
        #expect(e?.contains("data.train.kind") == true && e?.contains("ground truth") == true, "\(e ?? "accepted")")
        #expect(refusal("stages:\n  - {kind: supervised, net: both}\n")?.contains("stages.0.net") == true)
        #expect(refusal("stages:\n  - {kind: supervised, train: {kind: layered, layered: {maxShift: -1}}}\n")?.contains("stages.0.train.layered") == true)
        #expect(refusal("data: {train: {kind: video, root: /tmp, video: {step: 0}}}\n")?.contains("data.train.video") == true)
    }
}

