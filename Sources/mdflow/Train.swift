import ArgumentParser
import Foundation
import Training
import DataParallel
import Tensor

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a teacher (FastFlowNet) and a student (RAFT) by MDFlow from a recipe.",
        discussion: """
        Runs the recipe's stages in order: unsupervised teacher, then `rounds` × (teacher → student \
        distillation with confidence masks, student → teacher multi-target distillation). Writes \
        checkpoints, metrics.jsonl and the resolved recipe into the run directory.

        Examples:
          mdflow train Recipes/quickstart.yaml
          mdflow train Recipes/smoke.yaml --set stages.0.steps=20 \\
                       --run-dir Checkpoints/try
          mdflow train --resume Checkpoints/try   (continues exactly where it stopped)
        Ctrl-C writes a checkpoint and exits; --resume continues bit for bit.

        On several processes or machines (data-parallel, same recipe, same result):
          mpirun -np 4 mdflow train RECIPE --run-dir DIR
          srun --ntasks 4 mdflow train RECIPE --run-dir DIR
        Each rank trains on its share of every batch (a stage's `batch` is the global batch) and the \
        gradients are summed over the ranks; rank 0 alone writes DIR. See docs/distributed.md.
        """)

    @Argument(help: "Recipe file (YAML). Optional with --resume (the run's own recipe is used).")
    var recipe: String?

    @Option(name: .long, help: ArgumentHelp("Run directory (default: Checkpoints/<recipe name>-<date>).", valueName: "DIR"))
    var runDir: String?

    @Option(name: .long, help: ArgumentHelp("Continue the run in DIR from its latest checkpoint (default: none; a new run).", valueName: "DIR"))
    var resume: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a recipe key, e.g. --set stages.0.steps=100 (repeatable; default: none).", valueName: "key.path=value"))
    var overrides: [String] = []

    @Flag(help: "Resume even if the recipe differs from the run's.")
    var force = false

    func run() throws {
        // Under an MPI launcher every rank runs this; rank 0 alone prints and writes.
        var mpi: MPICommunicator? = nil
        if MPICommunicator.launched() {
            do { mpi = try MPICommunicator() } catch { FileHandle.standardError.write("mdflow: error: \(error)\n".data(using: .utf8)!); throw ExitCode.failure }
        }
        let communicator: Communicator = mpi ?? SingleProcess()
        func fail(_ message: String, code: Int32) -> ExitCode {
            let who = communicator.size > 1 ? " (rank \(communicator.rank) of \(communicator.size))" : ""
            FileHandle.standardError.write("mdflow\(who): \(message)\n".data(using: .utf8)!)
            if let mpi, code != 130 { mpi.abort(code: code) }   // the other ranks would wait forever
            mpi?.finalize()
            return ExitCode(code)
        }
        do {
            let dir: URL
            let r: Recipe
            if let resume {
                dir = URL(fileURLWithPath: resume)
                let path = recipe ?? dir.appendingPathComponent("recipe.yaml").path
                r = try Recipe.load(path: path, overrides: overrides)
            } else {
                guard let recipe else { throw ValidationError("give a recipe file, or --resume DIR") }
                r = try Recipe.load(path: recipe, overrides: overrides)
                if let runDir { dir = URL(fileURLWithPath: runDir) } else {
                    // Rank 0's clock names the run on every rank.
                    let now = communicator.broadcast([Date().timeIntervalSince1970.rounded(.down)])[0]
                    let f = DateFormatter()
                    f.dateFormat = "yyyyMMdd-HHmmss"
                    dir = URL(fileURLWithPath: "Checkpoints/\(r.name)-\(f.string(from: Date(timeIntervalSince1970: now)))")
                }
            }
            if let mpi, r.threads == 0 { Runtime.setThreads(mpi.defaultThreads) }
            let trainer = try Trainer(recipe: r, runDir: dir, resume: resume != nil, force: force, communicator: communicator) { line in
                guard communicator.isRoot else { return }
                print(line)
                fflush(nil)
            }
            try trainer.run()
            if communicator.isRoot { print("run directory: \(dir.path)") }
            mpi?.finalize()
        } catch let e as TrainingInterrupted {
            throw fail("\(e)", code: 130)
        } catch let e as ValidationError {
            if communicator.size == 1 { throw e }
            throw fail("error: \(e)", code: 64)
        } catch {
            throw fail("error: \(error)", code: 1)
        }
    }
}
