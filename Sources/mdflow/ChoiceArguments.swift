import ArgumentParser
import Training

/// Recipe choices taken as command-line options, spelled as in a recipe.
extension NetArch: ExpressibleByArgument {}
extension DatasetSpec.Split: ExpressibleByArgument {}
extension FlowFormat: ExpressibleByArgument {}
extension TrainedNet: ExpressibleByArgument {}

extension NetArch {
    /// The weights shipped in Models/ for this net.
    func shippedWeights() throws -> String {
        switch self {
        case .fastflownet: return try ShippedModels.path(ShippedModels.teacherFile)
        case .raftSmall: return try ShippedModels.path(ShippedModels.studentFile)
        case .raft: throw ValidationError("no weights are shipped for full RAFT; pass --weights")
        }
    }
}

/// `--scale` of `infer` and `evaluate`: a positive factor up to 8, for the teacher only.
func checkInferenceScale(_ scale: Double, teacher: Bool) throws {
    guard scale > 0 && scale <= 8 else { throw ValidationError("--scale must be in (0, 8], got \(scale)") }
    guard scale == 1 || teacher else { throw ValidationError("--scale applies to the teacher (fastflownet) only") }
}
