import ArgumentParser
import Training
import FlowNets

/// Recipe choices taken as command-line options, spelled as in a recipe.
extension NetArch: ExpressibleByArgument {}
extension DatasetSpec.Split: ExpressibleByArgument {}
extension FlowFormat: ExpressibleByArgument {}
extension TrainedNet: ExpressibleByArgument {}
extension DEQOptions.Gradient: ExpressibleByArgument {}

extension NetArch {
    /// The weights shipped in Models/ for this net.
    func shippedWeights() throws -> String {
        switch self {
        case .fastflownet: return try ShippedModels.path(ShippedModels.teacherFile)
        case .raftSmall: return try ShippedModels.path(ShippedModels.studentFile)
        case .raft: throw ValidationError("no weights are shipped for full RAFT; pass --weights")
        case .deqRaft, .deqRaftSmall: throw ValidationError("no weights are shipped for \(rawValue); pass --weights")
        }
    }
}

extension InferenceScale: ExpressibleByArgument {}

/// The help of `--scale` (`infer` and `evaluate`).
let inferenceScaleHelp = ArgumentHelp(
    "FastFlowNet: auto (estimate at 1×, then where the motion is small again at 2× or 1.5×, the largest that keeps "
        + "95% of the enlarged motion under \(Int(InferenceScale.motionLimit)) px), or a factor in (0, 8] to resize the "
        + "frames by; the flow comes back at their size (default: auto; docs/accuracy.md).",
    valueName: "auto|S")

/// `--scale` of `infer` and `evaluate`: for the teacher only; the teacher's default is auto.
func inferenceScale(_ scale: InferenceScale?, teacher: Bool) throws -> InferenceScale {
    guard teacher else {
        if scale != nil { throw ValidationError("--scale applies to the teacher (fastflownet) only") }
        return .fixed(1)
    }
    return scale ?? .auto
}
