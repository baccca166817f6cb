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

/// Compares every parameter gradient with the fixture's `grad.<key>` (with `everyParameter: false`,
/// those the fixture holds); returns the worst (error, key) and checks each is within `tolerance`
/// of its tensor's largest value. A gradient that is zero by construction (a conv bias feeding an
/// instance norm) is stored as float32 rounding noise, so a tensor whose largest value is under
/// 1e-5 of the fixture's largest gradient is measured against that largest gradient instead.
func checkParameterGradients(_ model: any Module, _ io: [String: Tensor], tolerance: Double, everyParameter: Bool = true,
                             sourceLocation: SourceLocation = #_sourceLocation) -> (Double, String) {
    func maxAbs(_ t: Tensor) -> Double { (0..<t.count).reduce(0) { max($0, Double(abs(t.data[$1]))) } }
    let largest = io.filter { $0.key.hasPrefix("grad.") }.map { maxAbs($0.value) }.max() ?? 0
    var worst: (Double, String) = (0, "")
    var checked = 0
    for (key, p) in model.namedParameters() {
        guard let expected = io["grad." + key] else { continue }
        checked += 1
        let got = p.grad ?? Tensor.zeros(p.shape)
        var e = relativeError(got, expected)
        if maxAbs(expected) < 1e-5 * largest {
            e = (0..<got.count).reduce(0) { max($0, Double(abs(got.data[$1] - expected.data[$1]))) } / largest
        }
        WorstError.shared.note(e, "grad.\(key)")
        #expect(e <= tolerance, "grad.\(key): relative error \(e)", sourceLocation: sourceLocation)
        if ProcessInfo.processInfo.environment["PARITY_VERBOSE"] != nil { print("  grad.\(key) \(e)") }
        if e > worst.0 { worst = (e, key) }
    }
    if everyParameter {
        #expect(checked == model.namedParameters().count, "fixture has gradients for \(checked) of \(model.namedParameters().count) parameters",
                sourceLocation: sourceLocation)
    } else {
        #expect(checked == io.keys.filter { $0.hasPrefix("grad.") }.count, "a fixture gradient names no parameter",
                sourceLocation: sourceLocation)
    }
    return worst
}
