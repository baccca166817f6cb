import Foundation
import CMPI
import Training

/// The processes of an MPI job (`mpirun -np N mdflow train …`, `srun mdflow train …`) as a
/// `Communicator`. Sums use MPI_Allreduce on MPI_COMM_WORLD; MPI's default error handler ends the
/// whole job on a communication failure, and a rank that dies ends the job through its launcher.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    /// Ranks on this machine.
    public let localSize: Int

    /// Whether this process was started by an MPI launcher (Open MPI's mpirun, or a PMI/PMIx
    /// launcher such as Slurm's srun); without one mdflow does not initialise MPI at all.
    public static func launched(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"].contains { environment[$0] != nil }
    }

    /// Initialises MPI (once per process).
    public init() throws {
        if mdflow_mpi_initialized() == 0 {
            guard mdflow_mpi_init() == MPI_SUCCESS else { throw TrainingError("MPI_Init failed (is this process started by mpirun or srun?)") }
        }
        rank = Int(mdflow_mpi_rank())
        size = Int(mdflow_mpi_size())
        localSize = Int(mdflow_mpi_local_size())
    }

    public func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Float>) {
        var offset = 0
        while offset < buffer.count {   // MPI counts are 32-bit
            let n = min(buffer.count - offset, Int(Int32.max))
            _ = mdflow_mpi_sum_floats(buffer.baseAddress! + offset, Int32(n))
            offset += n
        }
    }

    public func sum(_ values: [Double]) -> [Double] {
        var out = values
        out.withUnsafeMutableBufferPointer { _ = mdflow_mpi_sum_doubles($0.baseAddress, Int32($0.count)) }
        return out
    }

    /// Kernel threads for each rank when the recipe leaves `threads` at 0: the cores the launcher
    /// bound this rank to, or else the machine's cores shared among its ranks.
    public var defaultThreads: Int {
        let bound = ProcessInfo.processInfo.activeProcessorCount, all = ProcessInfo.processInfo.processorCount
        return bound < all ? max(1, bound) : max(1, all / max(1, localSize))
    }

    /// Ends every rank of the job at once (after an error on this one).
    public func abort(code: Int32) -> Never {
        mdflow_mpi_abort(code)
        exit(code)
    }

    /// Leaves MPI at the end of a successful run.
    public func finalize() { _ = mdflow_mpi_finalize() }
}
