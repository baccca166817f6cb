import Foundation
import Testing
import Tensor
import NN
import TestSupport

/// Σ_k sum(outputs[k] ⊙ seeds[k]) as one scalar on the tape: the fixtures' loss.
func weightedSum(_ outputs: [Tensor], _ seeds: [Tensor]) -> Tensor {
    var loss: Tensor? = nil
    for (o, s) in zip(outputs, seeds) {
        let term = (o * s).sum()
        loss = loss.map { $0 + term } ?? term
    }
    return loss!
}

/// Compares every parameter gradient with the fixture's `grad.<key>`; returns the worst
/// (error, key) and checks each is within `tolerance`.
func checkParameterGradients(_ model: any Module, _ io: [String: Tensor], tolerance: Double,
                             sourceLocation: SourceLocation = #_sourceLocation) -> (Double, String) {
    var worst: (Double, String) = (0, "")
    var checked = 0
    for (key, p) in model.namedParameters() {
        guard let expected = io["grad." + key] else { continue }
        checked += 1
        let got = p.grad ?? Tensor.zeros(p.shape)
        let e = relativeError(got, expected)
        WorstError.shared.note(e, "grad.\(key)")
        #expect(e <= tolerance, "grad.\(key): relative error \(e)", sourceLocation: sourceLocation)
        if ProcessInfo.processInfo.environment["PARITY_VERBOSE"] != nil { print("  grad.\(key) \(e)") }
        if e > worst.0 { worst = (e, key) }
    }
    #expect(checked == model.namedParameters().count, "fixture has gradients for \(checked) of \(model.namedParameters().count) parameters",
            sourceLocation: sourceLocation)
    return worst
}
