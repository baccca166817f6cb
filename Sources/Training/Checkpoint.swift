import Foundation
import CSupport
import Tensor
import NN
import FlowData

/// Everything besides weights that a resumed run needs to continue bit for bit.
public struct TrainState: Codable, Equatable, Sendable {
    public var version = 1
    /// Index into the recipe's expanded stage list.
    public var stageIndex = 0
    /// Steps completed in that stage.
    public var stageStep = 0
    /// Steps completed in the whole run.
    public var globalStep = 0
    /// Hash of the resolved recipe that made the run.
    public var recipeHash = ""
    /// The stage's random generator (augmentation draws).
    public var rng = RandomGenerator(seed: 0)
    /// The stage's data-order position.
    public var loader: LoaderPosition? = nil
    /// Optimizer step count of the stage's optimizer.
    public var optimizerStep = 0
    /// Non-finite steps skipped so far, and the current run of them.
    public var skippedSteps = 0
    public var nonFiniteStreak = 0
    /// Validation after each finished stage.
    public var history: [StageResult] = []
    public init() {}
}

/// The validation numbers at the end of a stage.
public struct StageResult: Codable, Equatable, Sendable {
    public var stage: Int
    public var name: String
    public var teacherEPE: Double
    public var studentEPE: Double?
    public var seconds: Double
}

/// A checkpoint error names the file that failed.
public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Every file of a checkpoint folder with its size and CRC-32, written with the folder, so that a
/// truncated or corrupted file is found before anything is loaded from it.
struct Manifest: Codable {
    struct Entry: Codable { var bytes: Int; var crc32: String }
    var files: [String: Entry]
}

/// Atomic checkpoint folders. A folder is written under a temporary name, every file fsynced,
/// then renamed into place and the parent fsynced; only then does `latest` (itself written by
/// rename) point at it. A crash at any moment leaves either the old or the new checkpoint, never
/// a half-written one; `manifest.json` catches what happens to the files afterwards.
public enum Checkpoint {
    public static let latestFile = "latest"
    public static let manifestFile = "manifest.json"

    static func crc32(_ data: Data) -> String {
        let c = data.withUnsafeBytes { mdflow_crc32(0, $0.baseAddress, $0.count) }
        return String(format: "%08x", c)
    }

    /// Writes `files` (name → bytes) and their manifest as folder `name` inside `dir`, atomically.
    public static func writeFolder(_ dir: URL, name: String, files: [String: Data]) throws {
        var files = files
        let manifest = Manifest(files: files.mapValues { Manifest.Entry(bytes: $0.count, crc32: crc32($0)) })
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        files[manifestFile] = try enc.encode(manifest)
        let fm = FileManager.default
        let tmp = dir.appendingPathComponent(".\(name).tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        do { try fm.createDirectory(at: tmp, withIntermediateDirectories: true) }
        catch { throw CheckpointError("\(tmp.path): cannot create (\(error.localizedDescription))") }
        do {
            for (file, data) in files.sorted(by: { $0.key < $1.key }) {
                try writeSynced(data, to: tmp.appendingPathComponent(file))
            }
        } catch {
            // A full disk: give back the space of the files already written.
            try? fm.removeItem(at: tmp)
            throw error
        }
        fsyncPath(tmp.path)
        let final = dir.appendingPathComponent(name)
        if fm.fileExists(atPath: final.path) {
            let old = dir.appendingPathComponent(".\(name).old-\(getpid())")
            try? fm.removeItem(at: old)
            try fm.moveItem(at: final, to: old)
            try fm.moveItem(at: tmp, to: final)
            try? fm.removeItem(at: old)
        } else {
            do { try fm.moveItem(at: tmp, to: final) }
            catch { throw CheckpointError("\(final.path): cannot rename into place (\(error.localizedDescription))") }
        }
        fsyncPath(dir.path)
    }

    /// Writes `data` to `url` through a temporary file, fsync and rename.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        try writeSynced(data, to: tmp)
        if rename(tmp.path, url.path) != 0 {
            let err = String(cString: strerror(errno))
            unlink(tmp.path)
            throw CheckpointError("\(url.path): cannot rename into place (\(err))")
        }
        fsyncPath(url.deletingLastPathComponent().path)
    }

    /// write(2) everything and fsync, reporting ENOSPC and friends with the file's name.
    static func writeSynced(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CheckpointError("\(url.path): cannot open for writing (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        try data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    let err = String(cString: strerror(errno))
                    unlink(url.path)
                    throw CheckpointError("\(url.path): write failed (\(err))")
                }
                off += n
            }
        }
        if fsync(fd) != 0 {
            let err = String(cString: strerror(errno))
            unlink(url.path)
            throw CheckpointError("\(url.path): fsync failed (\(err))")
        }
    }

    static func fsyncPath(_ path: String) {
        let fd = open(path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// The files of one checkpoint folder.
    public static func files(teacher: any Module, student: any Module, optimizer: Adam?, state: TrainState) throws -> [String: Data] {
        var opt: [String: Tensor] = [:]
        if let optimizer { opt = optimizer.stateDict().tensors }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return [
            "teacher.safetensors": SafeTensors.serialize(teacher.stateDict(), metadata: ["format": "pt"]),
            "student.safetensors": SafeTensors.serialize(student.stateDict(), metadata: ["format": "pt"]),
            "optimizer.safetensors": SafeTensors.serialize(opt, metadata: ["step": String(optimizer?.step ?? 0)]),
            "state.json": try enc.encode(state),
        ]
    }

    /// Checks every file `manifest.json` lists against its size and CRC-32; throws naming the first
    /// file that is missing, truncated or corrupted. A folder without a manifest passes.
    public static func verify(_ folder: URL) throws {
        let url = folder.appendingPathComponent(manifestFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        guard let data = try? Data(contentsOf: url), let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
            throw CheckpointError("\(url.path): unreadable checksum manifest; the checkpoint folder is damaged")
        }
        for (name, entry) in manifest.files.sorted(by: { $0.key < $1.key }) {
            // Names are the folder's own files: never a path out of it (`../`, `/dev/zero`).
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw CheckpointError("\(url.path): lists '\(name)', which is not a file name; the checkpoint folder is damaged")
            }
            try verify(folder.appendingPathComponent(name), against: entry)
        }
    }

    static func verify(_ file: URL, against entry: Manifest.Entry) throws {
        guard let bytes = try? Data(contentsOf: file) else { throw CheckpointError("\(file.path): missing or unreadable (listed in \(manifestFile))") }
        if bytes.count != entry.bytes {
            throw CheckpointError("\(file.path): \(bytes.count) bytes where \(entry.bytes) were written; the file is truncated or damaged")
        }
        if crc32(bytes) != entry.crc32 { throw CheckpointError("\(file.path): checksum mismatch; the file is corrupted") }
    }

    /// Checks one weights file against the manifest of the checkpoint folder it sits in, if any
    /// (`infer` and `evaluate` given a checkpoint's file directly).
    public static func verifyFile(_ path: String) throws {
        let file = URL(fileURLWithPath: path)
        let url = file.deletingLastPathComponent().appendingPathComponent(manifestFile)
        guard let data = try? Data(contentsOf: url), let manifest = try? JSONDecoder().decode(Manifest.self, from: data),
              let entry = manifest.files[file.lastPathComponent] else { return }
        try verify(file, against: entry)
    }

    /// Removes what a process killed inside a write leaves in run directory `dir` and its
    /// `stages/`: the hidden `.NAME.tmp-PID` files and folders the writers rename into place.
    /// Call only under the run's lock.
    public static func removeLeftovers(_ dir: URL) {
        let fm = FileManager.default
        for folder in [dir, dir.appendingPathComponent("stages")] {
            for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
                try? fm.removeItem(at: folder.appendingPathComponent(name))
            }
        }
    }

    /// Whether run directory `dir` has a `latest` pointer or any step folder (intact or not).
    public static func holdsAnyCheckpoint(_ dir: URL) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.contains { $0 == latestFile || $0.hasPrefix("step-") }
    }

    /// The checkpoint to resume `dir` from, and its state: the one `latest` names if it is
    /// intact, else the newest intact step folder (saying so through `log`).
    public static func resolveForResume(_ dir: URL, log: (String) -> Void) throws -> (URL, TrainState) {
        do {
            let folder = try resolve(dir.path)
            return (folder, try readState(folder))
        } catch let latestError as CheckpointError {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix("step-") }.sorted(by: >)
            var damaged: [String] = []
            for name in names {
                let folder = dir.appendingPathComponent(name)
                guard (try? verify(folder)) != nil, let state = try? readState(folder) else { damaged.append(name); continue }
                // Newer damaged folders move aside, so that pruning never keeps them in place of good ones.
                for bad in damaged { try? FileManager.default.moveItem(at: dir.appendingPathComponent(bad), to: dir.appendingPathComponent("damaged-" + bad)) }
                let moved = damaged.isEmpty ? "" : " (moved aside: " + damaged.map { "damaged-" + $0 }.joined(separator: ", ") + ")"
                log("\(latestError); resuming from the newest intact checkpoint, \(name)\(moved)")
                return (folder, state)
            }
            if names.isEmpty { throw latestError }
            throw CheckpointError("\(latestError); no other step folder in \(dir.path) is intact either")
        }
    }

    /// Resolves a run directory (through `latest`) or a step folder to the folder holding
    /// state.json, after checking its files against their manifest.
    public static func resolve(_ path: String) throws -> URL {
        let folder = try locate(path)
        try verify(folder)
        return folder
    }

    static func locate(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("state.json").path) { return url }
        let latest = url.appendingPathComponent(latestFile)
        guard let name = try? String(contentsOf: latest, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !name.isEmpty else {
            throw CheckpointError("\(path): no state.json and no '\(latestFile)' pointer; not a run directory or checkpoint folder")
        }
        let step = url.appendingPathComponent(name)
        guard fm.fileExists(atPath: step.appendingPathComponent("state.json").path) else {
            throw CheckpointError("\(latest.path) points at '\(name)', which has no state.json")
        }
        return step
    }

    /// Reads state.json of a checkpoint folder.
    public static func readState(_ folder: URL) throws -> TrainState {
        let url = folder.appendingPathComponent("state.json")
        guard let data = try? Data(contentsOf: url) else { throw CheckpointError("\(url.path): cannot read") }
        do { return try JSONDecoder().decode(TrainState.self, from: data) }
        catch { throw CheckpointError("\(url.path): not a valid training state (\(error))") }
    }

    /// Deletes all but the newest `keep` step folders.
    public static func prune(_ dir: URL, keep: Int) {
        let fm = FileManager.default
        guard let items = try? fm.contentsOfDirectory(atPath: dir.path) else { return }
        let steps = items.filter { $0.hasPrefix("step-") }.sorted()
        for name in steps.dropLast(keep) { try? fm.removeItem(at: dir.appendingPathComponent(name)) }
        for name in items where name.hasPrefix(".step-") { try? fm.removeItem(at: dir.appendingPathComponent(name)) }
    }
}
