import ArgumentParser
import Foundation
import Training

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
                    let f = DateFormatter()
                    f.dateFormat = "yyyyMMdd-HHmmss"
                    dir = URL(fileURLWithPath: "Checkpoints/\(r.name)-\(f.string(from: Date()))")
                }
            }
            let trainer = try Trainer(recipe: r, runDir: dir, resume: resume != nil, force: force) { line in
                print(line)
                fflush(nil)
            }
            try trainer.run()
            print("run directory: \(dir.path)")
        } catch let e as TrainingInterrupted {
            FileHandle.standardError.write("mdflow: \(e)\n".data(using: .utf8)!)
            throw ExitCode(130)
        } catch let e as ValidationError {
            throw e
        } catch {
            FileHandle.standardError.write("mdflow: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode.failure
        }
    }
}
