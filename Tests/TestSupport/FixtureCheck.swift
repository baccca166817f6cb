import Foundation
import Tensor

/// Runs an op on a PyTorch fixture and compares its output and input gradients.
///
/// The fixture holds inputs by name, `y` (output), `gy` (upstream gradient) and `g<input>` for
/// each input. `run` gets the inputs (leaves requiring gradients, in `inputs` order) and the
/// metadata. Returns (label, normalized error) for `y` and for every gradient present.
public func compareWithFixture(_ name: String, inputs: [String], gradients: [String]? = nil,
                               run: ([Tensor], [String: String]) -> Tensor) throws -> [(String, Double)] {
    let (t, meta) = try Fixtures.op(name)
    let xs = inputs.map { key -> Tensor in
        guard let v = t[key] else { fatalError("\(name): fixture has no tensor '\(key)'") }
        let c = v.clone()
        c.requiresGrad = true
        return c
    }
    let y = run(xs, meta)
    var out: [(String, Double)] = [("\(name).y", relativeError(y, t["y"]!))]
    if let gy = t["gy"] {
        Tape.backward(y, seed: gy)
        for (k, key) in inputs.enumerated() where gradients?.contains(key) ?? true {
            guard let expected = t["g" + key] else { continue }
            let got = xs[k].grad ?? Tensor.zeros(xs[k].shape)
            out.append(("\(name).g\(key)", relativeError(got, expected)))
        }
    } else {
        Tape.clear()
    }
    for (label, e) in out {
        WorstError.shared.note(e, label)
        print("FIXTURE \(label) \(e)")
    }
    return out
}

/// Parses an integer (or [a, b] pair) metadata value.
public func metaInts(_ s: String?) -> [Int] {
    guard let s else { return [] }
    return s.trimmingCharacters(in: CharacterSet(charactersIn: "[] \"")).split(separator: ",")
        .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
}
