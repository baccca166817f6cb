import Foundation
import Tensor

/// A network piece with explicitly named parameters, buffers and children, spelling out the
/// PyTorch state-dict key tree (`fnet.layer1.0.conv1.weight`). No reflection.
public protocol Module: AnyObject {
    /// This module's own trainable tensors with their local key names.
    var parameters: [(String, Tensor)] { get }
    /// This module's own non-trainable state (BatchNorm running statistics).
    var buffers: [(String, Tensor)] { get }
    /// Sub-modules with their local key names.
    var children: [(String, any Module)] { get }
    /// Switches training behaviour (BatchNorm statistics) for this module and its children.
    func setTraining(_ training: Bool)
}

extension Module {
    public var parameters: [(String, Tensor)] { [] }
    public var buffers: [(String, Tensor)] { [] }
    public var children: [(String, any Module)] { [] }
    public func setTraining(_ training: Bool) { for (_, c) in children { c.setTraining(training) } }

    /// Every trainable tensor with its full dotted key, in definition order.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out = parameters.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedParameters(prefix: prefix + name + ".") }
        return out
    }

    /// Every buffer with its full dotted key.
    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out = buffers.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedBuffers(prefix: prefix + name + ".") }
        return out
    }

    /// Parameters and buffers by key, as PyTorch's `state_dict()`.
    public func stateDict() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (k, t) in namedParameters() + namedBuffers() { d[k] = t }
        return d
    }

    /// Number of trainable scalars.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.count } }

    /// Copies `state` into this module's tensors. A leading `module.` (DataParallel) is stripped.
    /// Keys listed in `ignoring` (e.g. BatchNorm's `num_batches_tracked`) may be present without a
    /// target. Missing, unexpected and mis-shaped keys are one error listing all of them.
    public func load(_ state: [String: Tensor], source: String, ignoring: (String) -> Bool = { $0.hasSuffix("num_batches_tracked") }) throws {
        var incoming: [String: Tensor] = [:]
        for (k, v) in state { incoming[k.hasPrefix("module.") ? String(k.dropFirst(7)) : k] = v }
        let own = namedParameters() + namedBuffers()
        var missing: [String] = [], misshaped: [String] = []
        for (k, t) in own {
            guard let v = incoming[k] else { missing.append(k); continue }
            if v.count != t.count || (v.shape != t.shape && !(v.shape.isEmpty && t.count == 1)) {
                misshaped.append("\(k): file \(describe(v.shape)), model \(describe(t.shape))")
            }
        }
        let ownKeys = Set(own.map(\.0))
        let unexpected = incoming.keys.filter { !ownKeys.contains($0) && !ignoring($0) }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty || !misshaped.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing keys (\(missing.count)): " + missing.joined(separator: ", ")) }
            if !unexpected.isEmpty { parts.append("unexpected keys (\(unexpected.count)): " + unexpected.joined(separator: ", ")) }
            if !misshaped.isEmpty { parts.append("mis-shaped (\(misshaped.count)): " + misshaped.joined(separator: "; ")) }
            throw WeightsError("\(source): weights do not fit the model — " + parts.joined(separator: "; "))
        }
        for (k, t) in own { t.copy(from: incoming[k]!) }
    }

    /// Clears every parameter's gradient buffer.
    public func zeroGrad() { for (_, p) in namedParameters() { p.zeroGrad() } }
}

/// A trainable tensor: a leaf that requires gradients.
public func makeParameter(_ shape: [Int]) -> Tensor { Tensor.zeros(shape, requiresGrad: true) }
