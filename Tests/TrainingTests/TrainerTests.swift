import Testing
import Foundation
import Tensor
import NN
import Training
import TestSupport

/// End-to-end runs of Recipes/smoke.yaml (every stage, a few steps, 64×128).
@Suite(.serialized) struct TrainerTests {
    static let root = Fixtures.packageRoot

    func recipe(_ extra: [String] = []) throws -> Recipe {
        // The smoke dataset lives in a temp folder so tests never touch the user's Datasets/.
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-smoke-data").path
        return try Recipe.load(path: Self.root.appendingPathComponent("Recipes/smoke.yaml").path,
                               overrides: ["data.train.root=\(data)", "data.val.root=\(data)"] + extra)
    }

    func tempRun(_ name: String) -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-test-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: u)
        return u
    }

    func weights(_ t: Trainer) -> [String: [Float]] {
        var d: [String: [Float]] = [:]
        for (k, v) in t.teacher.net.stateDict() { d["teacher." + k] = v.toArray() }
        for (k, v) in t.student.module.stateDict() { d["student." + k] = v.toArray() }
        return d
    }

    @Test func smokeRecipeRunsEveryStageAndWritesTheRunLayout() throws {
        let dir = tempRun("smoke")
        defer { try? FileManager.default.removeItem(at: dir) }
        nonisolated(unsafe) var lines: [String] = []
        let t = try Trainer(recipe: try recipe(), runDir: dir, resume: false, log: { lines.append($0) })
        let history = try t.run()
        #expect(history.count == 3)
        #expect(history.allSatisfy { $0.teacherEPE.isFinite })
        // The closing table names the zero-flow baseline on the same pairs.
        #expect(lines.contains { $0.contains("zero flow (a net that learned nothing) scores EPE") })
        let fm = FileManager.default
        for f in ["recipe.yaml", "metrics.jsonl", "latest", "stages/1/teacher.safetensors", "stages/2/student.safetensors",
                  "stages/3/optimizer.safetensors", "stages/3/state.json"] {
            #expect(fm.fileExists(atPath: dir.appendingPathComponent(f).path), "missing \(f)")
        }
        let latest = try String(contentsOf: dir.appendingPathComponent("latest"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(latest == "step-0000007")
        let steps = try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("step-") }
        #expect(steps.count <= 2)     // checkpoint.keep
        // The teacher's weights are PyTorch-keyed safetensors.
        let saved = try SafeTensors.read(dir.appendingPathComponent("stages/3/teacher.safetensors")).tensors
        #expect(saved["pconv1_1.0.weight"]?.shape == [16, 3, 3, 3])
    }

    /// A validation set that cannot be opened stops the run before training, naming data.val
    /// (it used to mean silently no validation).
    @Test func anUnreadableValidationSetIsAnError() throws {
        let dir = tempRun("bad-val")
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-empty-val-\(getpid())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { for d in [dir, empty] { try? FileManager.default.removeItem(at: d) } }
        var message = ""
        do { _ = try Trainer(recipe: try recipe(["data.val.kind=middlebury", "data.val.root=\(empty.path)"]), runDir: dir, resume: false, log: { _ in }) }
        catch { message = "\(error)" }
        #expect(message.hasPrefix("data.val: ") && message.contains(empty.path), "\(message)")
        #expect(throws: RecipeError.self) { try recipe(["data.val.kind=frames"]) }
    }

    /// `restore:` starts a stage from another run's stage checkpoint: a 0-step stage restored
    /// from run A's stage 1 ends with exactly A's stage-1 nets.
    @Test func aStageRestoresItsNetsFromAnotherRunsStageCheckpoint() throws {
        let a = tempRun("restore-a"), b = tempRun("restore-b")
        defer { for d in [a, b] { try? FileManager.default.removeItem(at: d) } }
        let short = ["stages.0.steps=3", "stages.1.steps=1", "stages.2.steps=1"]
        _ = try Trainer(recipe: try recipe(short), runDir: a, resume: false, log: { _ in }).run()
        let source = a.appendingPathComponent("stages/1").path
        nonisolated(unsafe) var lines: [String] = []
        _ = try Trainer(recipe: try recipe(["stages.0.steps=2", "stages.1.steps=1", "stages.2.steps=0", "stages.2.restore=\(source)", "seed=7"]),
                        runDir: b, resume: false, log: { lines.append($0) }).run()
        #expect(lines.contains { $0.contains("restored the teacher and student from \(source)") }, "\(lines)")
        for net in ["teacher", "student"] {
            let want = try SafeTensors.read(a.appendingPathComponent("stages/1/\(net).safetensors")).tensors
            let got = try SafeTensors.read(b.appendingPathComponent("stages/3/\(net).safetensors")).tensors
            #expect(Set(want.keys) == Set(got.keys))
            for (k, v) in want { #expect(got[k]?.toArray() == v.toArray(), "\(net).\(k)") }
        }
        // B's own stage 1 (another seed) differs, so the restore, not chance, made them equal.
        let own = try SafeTensors.read(b.appendingPathComponent("stages/1/teacher.safetensors")).tensors
        let theirs = try SafeTensors.read(a.appendingPathComponent("stages/1/teacher.safetensors")).tensors
        #expect(own["pconv1_1.0.weight"]?.toArray() != theirs["pconv1_1.0.weight"]?.toArray())
    }

    @Test(arguments: [(stop: 2, kill: false), (stop: 4, kill: false), (stop: 5, kill: true), (stop: 3, kill: true)])
    func resumedRunMatchesAnUninterruptedOneBitForBit(_ c: (stop: Int, kill: Bool)) throws {
        let a = tempRun("whole"), b = tempRun("split")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let whole = try Trainer(recipe: try recipe(), runDir: a, resume: false, log: { _ in })
        try whole.run()

        let first = try Trainer(recipe: try recipe(), runDir: b, resume: false, log: { _ in })
        if c.kill { first.killAfterSteps = c.stop } else { first.stopAfterSteps = c.stop }
        #expect(throws: (any Error).self) { try first.run() }
        let second = try Trainer(recipe: try recipe(), runDir: b, resume: true, log: { _ in })
        try second.run()

        let wa = weights(whole), wb = weights(second)
        #expect(wa.keys.sorted() == wb.keys.sorted())
        var differing: [String] = []
        for (k, v) in wa where v != wb[k] { differing.append(k) }
        #expect(differing.isEmpty, "\(differing.count) tensors differ, e.g. \(differing.sorted().prefix(3))")
        #expect(whole.state.history.map(\.teacherEPE) == second.state.history.map(\.teacherEPE))
    }

    @Test func resumingWithADifferentRecipeIsRefusedUnlessForced() throws {
        let dir = tempRun("force")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Trainer(recipe: try recipe(), runDir: dir, resume: false, log: { _ in })
        t.stopAfterSteps = 1
        #expect(throws: (any Error).self) { try t.run() }
        do {
            _ = try Trainer(recipe: try recipe(["stages.0.steps=4"]), runDir: dir, resume: true, log: { _ in })
            Issue.record("a different recipe was accepted")
        } catch {
            #expect("\(error)".contains("stages") && "\(error)".contains("--force"), "\(error)")
        }
        _ = try Trainer(recipe: try recipe(["stages.0.steps=4"]), runDir: dir, resume: true, force: true, log: { _ in })
    }

    @Test func aNewRunRefusesAnOccupiedRunDirectory() throws {
        let dir = tempRun("occupied")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Trainer(recipe: try recipe(), runDir: dir, resume: false, log: { _ in })
        t.stopAfterSteps = 1
        #expect(throws: (any Error).self) { try t.run() }
        #expect(throws: (any Error).self) { _ = try Trainer(recipe: try recipe(), runDir: dir, resume: false, log: { _ in }) }
    }

    /// A supervised stage on the layered scenes lowers the training end-point error of the
    /// teacher, and one trains RAFT-small to finite weights.
    @Test func supervisedStagesLearnFromGroundTruth() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-layered-test-data").path
        let yaml = """
        name: supervised-test
        seed: 3
        data:
          train: {kind: layered, root: \(data), split: all, layered: {pairs: 8, height: 64, width: 128, seed: 2, maxShift: 0.05}}
          val: {kind: layered, root: \(data), split: all, maxPairs: 2}
        student: {arch: raft-small, iters: 2, evalIters: 2}
        checkpoint: {every: 0, keep: 1}
        logEvery: 1
        stages:
          - {kind: supervised, steps: 40, batch: 2, crop: [64, 128], optimizer: {lr: 1.0e-3, schedule: constant}}
          - {kind: supervised, net: student, steps: 2, batch: 1, crop: [64, 128]}
        """
        let dir = tempRun("supervised")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Trainer(recipe: try Recipe.parse(yaml, file: "supervised.yaml"), runDir: dir, resume: false, log: { _ in })
        try t.run()
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let teacher = records.filter { $0["type"] as? String == "train" && $0["stage"] as? Int == 1 }.compactMap { $0["epe"] as? Double }
        let student = records.filter { $0["type"] as? String == "train" && $0["stage"] as? Int == 2 }.compactMap { $0["epe"] as? Double }
        #expect(teacher.count == 40 && student.count == 2 && student.allSatisfy(\.isFinite))
        let first = teacher.prefix(8).reduce(0, +) / 8, last = teacher.suffix(8).reduce(0, +) / 8
        #expect(last < 0.8 * first, "training EPE \(first) → \(last)")
        #expect(weights(t).values.allSatisfy { $0.allSatisfy(\.isFinite) })
    }
}


/// Damaged checkpoints and concurrent writers, on the smoke recipe.
@Suite(.serialized) struct RunIntegrityTests {
    let base = TrainerTests()

    @Test func aDamagedLatestCheckpointIsNamedAndResumeFallsBackLosingNothing() throws {
        let a = base.tempRun("intact"), b = base.tempRun("damaged")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let whole = try Trainer(recipe: try base.recipe(), runDir: a, resume: false, log: { _ in })
        try whole.run()

        let first = try Trainer(recipe: try base.recipe(), runDir: b, resume: false, log: { _ in })
        first.stopAfterSteps = 5
        #expect(throws: (any Error).self) { try first.run() }
        // Truncate the newest checkpoint's teacher (kept: step 3, the end of stage 1, and step 5, the stop).
        let teacher = b.appendingPathComponent("step-0000005/teacher.safetensors")
        let bytes = try Data(contentsOf: teacher)
        try bytes.prefix(bytes.count - 100).write(to: teacher)
        do {
            _ = try Checkpoint.resolve(b.path)
            Issue.record("a truncated checkpoint was accepted")
        } catch {
            #expect("\(error)".contains(teacher.path) && "\(error)".contains("truncated"), "\(error)")
        }
        nonisolated(unsafe) var lines: [String] = []
        let second = try Trainer(recipe: try base.recipe(), runDir: b, resume: true, log: { lines.append($0) })
        #expect(lines.contains { $0.contains("resuming from the newest intact checkpoint, step-0000003") }, "\(lines)")
        try second.run()
        let wa = base.weights(whole), wb = base.weights(second)
        #expect(wa.keys.sorted() == wb.keys.sorted())
        #expect(wa.keys.filter { wa[$0] != wb[$0] }.isEmpty, "weights differ from the uninterrupted run")
        #expect(FileManager.default.fileExists(atPath: b.appendingPathComponent("damaged-step-0000005").path))
    }

    @Test func aRunKilledBeforeItsFirstCheckpointStartsAgainOnResume() throws {
        let a = base.tempRun("whole-early"), b = base.tempRun("early")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let whole = try Trainer(recipe: try base.recipe(), runDir: a, resume: false, log: { _ in })
        try whole.run()
        // What a kill in the first step leaves: the recipe, a metrics line, half a checkpoint write.
        _ = try Trainer(recipe: try base.recipe(), runDir: b, resume: false, log: { _ in })
        let metrics = b.appendingPathComponent("metrics.jsonl")
        try Data("{\"global_step\":1,\"type\":\"train\"}\n".utf8).write(to: metrics)
        let cut = b.appendingPathComponent(".step-0000002.tmp-99999")
        try FileManager.default.createDirectory(at: cut, withIntermediateDirectories: true)
        nonisolated(unsafe) var lines: [String] = []
        let second = try Trainer(recipe: try base.recipe(), runDir: b, resume: true, log: { lines.append($0) })
        #expect(lines.contains { $0.contains("no checkpoint was written yet; starting the run from the beginning") }, "\(lines)")
        #expect(!FileManager.default.fileExists(atPath: cut.path))
        try second.run()
        let wa = base.weights(whole), wb = base.weights(second)
        #expect(wa.keys.filter { wa[$0] != wb[$0] }.isEmpty, "weights differ from the uninterrupted run")
        #expect(try trainSteps(metrics) == trainSteps(a.appendingPathComponent("metrics.jsonl")))
    }

    @Test func resumedMetricsHoldEveryStepOnce() throws {
        let a = base.tempRun("whole-metrics"), b = base.tempRun("metrics")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let whole = try Trainer(recipe: try base.recipe(), runDir: a, resume: false, log: { _ in })
        try whole.run()
        let first = try Trainer(recipe: try base.recipe(), runDir: b, resume: false, log: { _ in })
        first.killAfterSteps = 5   // steps 4 and 5 were logged; the last checkpoint is at step 4
        #expect(throws: (any Error).self) { try first.run() }
        try Trainer(recipe: try base.recipe(), runDir: b, resume: true, log: { _ in }).run()
        let steps = try trainSteps(b.appendingPathComponent("metrics.jsonl"))
        #expect(steps == Array(1...7))
        #expect(steps == (try trainSteps(a.appendingPathComponent("metrics.jsonl"))))
    }

    /// The global steps of a metrics file's training lines, in file order.
    func trainSteps(_ url: URL) throws -> [Int] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["type"] as? String == "train" else { return nil }
            return o["global_step"] as? Int
        }
    }

    /// Scripts/kill_anywhere.sh at a small scale: SIGKILL at random moments, resume each time,
    /// final files byte-identical to an uninterrupted run.
    @Test(.enabled(if: Fixtures.mdflowExecutable != nil, "the mdflow executable was not built beside the tests"))
    func killedAnywhereAndResumedTheRunEndsBitIdentical() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Fixtures.packageRoot.appendingPathComponent("Scripts/kill_anywhere.sh").path, "--kills", "3",
                       "--mdflow", Fixtures.mdflowExecutable!, "--set", "stages.0.steps=4",
                       "--set", "data.train.root=" + FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-kill-data").path,
                       "--set", "data.val.root=" + FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-kill-data").path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("identical:"), "\(text)")
    }

    /// Mounts a small tmpfs at `dir` (root only); false when it cannot be mounted here.
    static func mountTmpfs(_ dir: URL, megabytes: Int) -> Bool {
        guard getuid() == 0 else { return false }
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return command("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", dir.path]) == 0
    }

    static func command(_ path: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    static let canMountTmpfs: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-tmpfs-probe-\(getpid())")
        defer { try? FileManager.default.removeItem(at: probe) }
        guard mountTmpfs(probe, megabytes: 1) else { return false }
        return command("/bin/umount", [probe.path]) == 0
    }()

    /// A checkpoint write that meets a full disk (ENOSPC on a 96 MB tmpfs) stops the run with the
    /// file named, leaves `latest` on the previous intact checkpoint and nothing half-written; once
    /// there is space again the run resumes and ends as an uninterrupted one.
    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs"))
    func aFullDiskStopsTheRunWithTheFileNamedAndLosesNothing() throws {
        let fm = FileManager.default
        let a = base.tempRun("whole-full"), disk = base.tempRun("disk")
        let b = disk.appendingPathComponent("run")
        #expect(Self.mountTmpfs(disk, megabytes: 96))
        defer {
            try? fm.removeItem(at: a)
            _ = Self.command("/bin/umount", [disk.path])
            try? fm.removeItem(at: disk)
        }
        let whole = try Trainer(recipe: try base.recipe(), runDir: a, resume: false, log: { _ in })
        try whole.run()

        let first = try Trainer(recipe: try base.recipe(), runDir: b, resume: false, log: { _ in })
        first.stopAfterSteps = 2
        #expect(throws: (any Error).self) { try first.run() }
        // Fill the disk but for 2 MB: the next checkpoint (about 9 MB) cannot be written.
        var st = statvfs()
        #expect(statvfs(disk.path, &st) == 0)
        let free = Int(st.f_bavail) * Int(st.f_frsize)
        let filler = disk.appendingPathComponent("filler")
        #expect(fm.createFile(atPath: filler.path, contents: Data(count: free - 2 << 20)))
        do {
            try Trainer(recipe: try base.recipe(), runDir: b, resume: true, log: { _ in }).run()
            Issue.record("the run went on with a full disk")
        } catch {
            #expect("\(error)".contains(b.path) && "\(error)".contains("No space left on device"), "\(error)")
        }
        #expect(try String(contentsOf: b.appendingPathComponent("latest"), encoding: .utf8) == "step-0000002\n")
        try Checkpoint.verify(b.appendingPathComponent("step-0000002"))
        let names = try fm.contentsOfDirectory(atPath: b.path) + ((try? fm.contentsOfDirectory(atPath: b.appendingPathComponent("stages").path)) ?? [])
        #expect(!names.contains { $0.contains(".tmp-") }, "\(names)")

        try fm.removeItem(at: filler)
        let last = try Trainer(recipe: try base.recipe(), runDir: b, resume: true, log: { _ in })
        try last.run()
        let wa = base.weights(whole), wb = base.weights(last)
        #expect(wa.keys.filter { wa[$0] != wb[$0] }.isEmpty, "weights differ from the uninterrupted run")
    }

    @Test func aSecondWriterIsRefusedWhileTheFirstHoldsTheRunDirectory() throws {
        let dir = base.tempRun("locked")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try Trainer(recipe: try base.recipe(), runDir: dir, resume: false, log: { _ in })
        first.stopAfterSteps = 2
        do {
            _ = try Trainer(recipe: try base.recipe(), runDir: dir, resume: false, log: { _ in })
            Issue.record("a second writer was accepted")
        } catch {
            #expect("\(error)".contains("in use by another training process (pid \(getpid()))"), "\(error)")
        }
        #expect(throws: (any Error).self) { try first.run() }
        // The first writer is done (its lock is released): the run resumes.
        let second = try Trainer(recipe: try base.recipe(), runDir: dir, resume: true, log: { _ in })
        try second.run()
        #expect(second.state.history.count == 3)
    }
}
