import FlowData
import FlowNets
import NN

/// What a stage trains and how (Recipes/README.md, "Stages").
public enum StageKind: String, RecipeChoice {
    case supervised, unsupervised
    case distillToStudent = "distill-to-student"
    case distillToTeacher = "distill-to-teacher"

    /// The distillation kinds, repeated `rounds` times after the other stages.
    public var isDistillation: Bool { self == .distillToStudent || self == .distillToTeacher }
}

/// A network architecture: the teacher is FastFlowNet, the student RAFT or RAFT-small, or
/// DEQ-Flow's fixed-point form of either.
public enum NetArch: String, RecipeChoice {
    case fastflownet, raft
    case raftSmall = "raft-small"
    case deqRaft = "deq-raft"
    case deqRaftSmall = "deq-raft-small"

    public var isDEQ: Bool { self == .deqRaft || self == .deqRaftSmall }
}


/// The adapter that reads a dataset's `root`.
public enum DatasetKind: String, RecipeChoice {
    case synthetic, layered, chairs, sintel, kitti2015, kitti2012
    case kittiMultiview = "kitti-multiview"
    case middlebury, frames, video

    /// Whether its pairs carry ground-truth flow (what a supervised stage needs).
    public var hasGroundTruth: Bool {
        switch self {
        case .kittiMultiview, .frames, .video: return false
        default: return true
        }
    }
}

extension DatasetSpec {
    /// Which pairs of a dataset: its training or validation split, or all of them.
    public enum Split: String, RecipeChoice {
        case train, val, all

        /// The dataset adapters' name for it.
        public var datasetSplit: DatasetSplit {
            switch self {
            case .train: return .train
            case .val: return .validation
            case .all: return .all
            }
        }
    }

    /// Sintel's rendering pass.
    public enum Pass: String, RecipeChoice {
        case clean, final

        public var sintelPass: Sintel.Pass { self == .final ? .final : .clean }
    }
}

extension OptimizerSpec {
    /// Adam with L2 weight decay, or AdamW with decoupled decay.
    public enum Kind: String, RecipeChoice {
        case adam, adamw
    }

    /// Learning-rate schedule: constant, StepLR, or OneCycle.
    public enum Schedule: String, RecipeChoice {
        case constant, step, onecycle
    }
}

extension LossSpec {
    /// How occluded pixels are found: forward–backward check, or the range map of the backward flow.
    public enum OcclusionModel: String, RecipeChoice {
        case fb, range
    }

    /// Reliable-mask rule for teacher → student: a fixed census threshold τ, or a quantile.
    public enum Confidence: String, RecipeChoice {
        case threshold, quantile
    }

    /// Where the student's flow supervises the teacher (see `StageLosses.distillationMask`).
    public enum DistillMask: String, RecipeChoice {
        case occlusion, better, all
    }
}
