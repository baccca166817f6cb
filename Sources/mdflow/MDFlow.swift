import ArgumentParser

@main
struct MDFlow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mdflow",
        abstract: "Unsupervised optical flow by reliable mutual knowledge distillation (MDFlow), on the CPU.",
        subcommands: [Train.self, Evaluate.self, Infer.self, Export.self, GenerateDataset.self, ImportTorch.self, Bench.self])
}
