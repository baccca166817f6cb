import Foundation

/// The trained weights that ship with mdflow in Models/ (Recipes/models.yaml made them), which
/// `infer` and `evaluate` use when no weights are given.
public enum ShippedModels {
    /// File names in Models/.
    public static let teacherFile = "fastflownet.safetensors"
    public static let studentFile = "raft-small.safetensors"

    /// The folders searched, in order: $MDFLOW_MODELS, ./Models, and Models/ in the folders above
    /// the executable (a build's .build/release/mdflow finds the checkout's Models/).
    public static func searchFolders() -> [String] {
        var folders: [String] = []
        if let env = ProcessInfo.processInfo.environment["MDFLOW_MODELS"], !env.isEmpty { folders.append(env) }
        folders.append(FileManager.default.currentDirectoryPath + "/Models")
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            folders.append(dir.appendingPathComponent("Models").path)
            dir = dir.deletingLastPathComponent()
        }
        return folders
    }

    /// The path of shipped weights file `name`, or an error that says where it looked.
    public static func path(_ name: String) throws -> String {
        let folders = searchFolders()
        for f in folders where FileManager.default.fileExists(atPath: f + "/" + name) { return f + "/" + name }
        throw TrainingError("no --weights given and no shipped \(name) found (looked in \(folders.joined(separator: ", ")); set MDFLOW_MODELS to the folder holding it)")
    }
}
