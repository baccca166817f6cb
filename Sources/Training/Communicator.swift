import Foundation
import Tensor
import CSupport
import Losses

/// The processes of a data-parallel run and the collective calls training needs; every process
/// makes the same calls in the same order. `SingleProcess` is a run of one process; the MPI
/// implementation is in the `Distributed` target, so Training links no MPI.
public protocol Communicator: AnyObject {
    /// This process's index, 0..<size; rank 0 alone writes files.
    var rank: Int { get }
    var size: Int { get }
    /// Adds `buffer` element-wise over all processes, in place; every process gets the same sums.
    func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Adds scalars element-wise over all processes.
    func sum(_ values: [Double]) -> [Double]
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Waits until every process has reached this call.
    public func barrier() { _ = sum([0]) }

    /// Runs `body` on rank 0, then on the other ranks once it has finished: for work that writes
    /// shared files (preparing the run directory, generating a dataset) before others read them.
    public func rootFirst<T>(_ body: () throws -> T) rethrows -> T {
        guard size > 1 else { return try body() }
        if isRoot {
            let value = try body()
            barrier()
            return value
        }
        barrier()
        return try body()
    }

    /// Rank 0's values on every process.
    public func broadcast(_ values: [Double]) -> [Double] { sum(isRoot ? values : values.map { _ in 0 }) }

    /// This process's share of a data-parallel batch's losses (batches split equally).
    public var batchShare: BatchShare {
        size == 1 ? .whole : BatchShare(fraction: 1 / Float(size), sum: { [unowned self] in self.sum($0) })
    }

    /// Adds the gradients of `params` over all processes (one fused buffer); a parameter without a
    /// gradient counts as zeros.
    public func sumGradients(_ params: [Tensor]) {
        guard size > 1 else { return }
        let total = params.reduce(0) { $0 + $1.count }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
        defer { buffer.deallocate() }
        var offset = 0
        for p in params {
            (buffer.baseAddress! + offset).update(from: p.gradPointer(), count: p.count)
            offset += p.count
        }
        sumInPlace(buffer)
        offset = 0
        for p in params {
            p.gradPointer().update(from: buffer.baseAddress! + offset, count: p.count)
            offset += p.count
        }
    }

    /// Whether every process holds the same bytes in `tensors` (a CRC-32 compared through a sum).
    public func sameEverywhere(_ tensors: [Tensor]) -> Bool {
        guard size > 1 else { return true }
        var crc: UInt32 = 0
        for t in tensors { crc = mdflow_crc32(crc, t.data, t.count * MemoryLayout<Float>.size) }
        let total = sum([Double(crc)])[0]
        return total == Double(crc) * Double(size)
    }
}

/// A run of one process: every collective call returns its input.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sumInPlace(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func sum(_ values: [Double]) -> [Double] { values }
}
