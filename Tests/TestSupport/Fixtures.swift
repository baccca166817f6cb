import Foundation
import Tensor
import NN

/// The fixtures the tests read, all committed in Tests/Fixtures (README there): op fixtures at its
/// top level, network fixtures in nets/, a public checkpoint in checkpoints/.
public enum Fixtures {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let opsDir = packageRoot.appendingPathComponent("Tests/Fixtures")

    /// The mdflow executable of the build the tests run from (`swift build --build-tests` makes
    /// it beside the test bundle), or nil.
    public static let mdflowExecutable: String? = {
        let dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("mdflow").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    /// Loads Tests/Fixtures/<name>.safetensors.
    public static func op(_ name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try SafeTensors.read(opsDir.appendingPathComponent(name + ".safetensors"))
    }

    /// Loads Tests/Fixtures/nets/<name>.safetensors.
    public static func net(_ name: String) throws -> [String: Tensor] {
        try SafeTensors.read(opsDir.appendingPathComponent("nets/\(name).safetensors")).tensors
    }

    /// Tests/Fixtures/checkpoints/<name>.
    public static func checkpoint(_ name: String) -> URL {
        opsDir.appendingPathComponent("checkpoints/\(name)")
    }
}

/// Worst error of `actual` against `expected`, relative to the largest magnitude in `expected`
/// (the normalized max error: max|a−e| / max|e|). Shapes must hold the same element count.
public func relativeError(_ actual: Tensor, _ expected: Tensor) -> Double {
    precondition(actual.count == expected.count, "relativeError: \(actual.shape) vs \(expected.shape)")
    var worst = 0.0, scale = 0.0
    for i in 0..<expected.count {
        worst = max(worst, Double(abs(actual.data[i] - expected.data[i])))
        scale = max(scale, Double(abs(expected.data[i])))
    }
    // A non-finite value on either side is a failure unless both sides agree on it exactly
    // (max() skips NaN, so it must be checked explicitly).
    for i in 0..<expected.count where !expected.data[i].isFinite || !actual.data[i].isFinite {
        let a = actual.data[i], e = expected.data[i]
        if !(a.isNaN && e.isNaN) && a != e { return .infinity }
    }
    return scale > 0 ? worst / scale : worst
}

/// Keeps the worst fixture error seen in this process, for the closing report.
public final class WorstError: @unchecked Sendable {
    public static let shared = WorstError()
    private let lock = NSLock()
    private var worst: (Double, String) = (0, "")
    public func note(_ e: Double, _ label: String) {
        lock.lock(); defer { lock.unlock() }
        if e > worst.0 { worst = (e, label) }
    }
    public var value: (Double, String) { lock.lock(); defer { lock.unlock() }; return worst }
}
