import Foundation

/// An implicit layer: y = body(z) whose backward pass replaces the gradient that reaches y before
/// it flows into what body used. Implicit differentiation of a fixed point z* = f(z*) records
/// y = f(z*) this way and replaces the upstream gradient v by the solution w of w = wJ + v
/// (J = ∂f/∂z at z*), found by repeated vector–Jacobian products through the recorded f.
extension Tape {
    /// Computes the gradient to push through body: `vjp(u)` is uᵀ ∂y/∂z (u shaped like y, the
    /// result like z; no other gradient is touched), `upstream` the gradient that reached y. The
    /// result is shaped like y. For a fixed point z and y have one shape.
    public typealias Adjoint = (_ vjp: (Tensor) -> Tensor, _ upstream: Tensor) -> Tensor

    /// y = body(z) with its backward replaced: the gradient v that reaches y becomes
    /// `adjoint(vjp, v)`, which then flows through body into its parameters and other inputs. z
    /// enters detached (it receives no gradient). body's records are kept on a scoped tape of their
    /// own, replayed once per `vjp` call; with recording off this is body(z).  z, y: any shapes.
    public static func implicitLayer(_ z: Tensor, _ body: (Tensor) -> Tensor, adjoint: @escaping Adjoint) -> Tensor {
        let tape = current
        guard tape.gradEnabled else { return body(z) }
        let leaf = z.detached()
        leaf.requiresGrad = true
        let start = tape.records.count
        let wasCapturing = tape.capturing
        tape.capturing = true
        let y = body(leaf)
        tape.capturing = wasCapturing
        let segment = ScopedTape(records: Array(tape.records[start...]), input: leaf, output: y)
        tape.records.removeSubrange(start...)
        guard y.requiresGrad else { return y }
        let out = y.clone()
        record(out, inputs: segment.external) { dy in
            let v = Tensor(shape: out.shape, values: Array(UnsafeBufferPointer(start: dy, count: out.count)))
            let w = adjoint({ segment.pullback($0, intoExternal: false) }, v)
            require(w.shape == out.shape, "implicitLayer", "adjoint returned \(describe(w.shape)) for an output \(describe(out.shape))")
            segment.pullback(w, intoExternal: true)
        }
        return out
    }
}

/// A recorded body y = body(z) that can be differentiated many times.
struct ScopedTape {
    let records: [Tape.Record]
    let input: Tensor, output: Tensor
    /// Tensors body read but did not make (parameters, other activations), each once.
    let external: [Tensor]

    init(records: [Tape.Record], input: Tensor, output: Tensor) {
        self.records = records; self.input = input; self.output = output
        var inside = Set(records.map { ObjectIdentifier($0.output) })
        inside.insert(ObjectIdentifier(input))
        var external: [Tensor] = []
        for r in records {
            for t in r.inputs where inside.insert(ObjectIdentifier(t)).inserted { external.append(t) }
        }
        self.external = external
    }

    /// Backpropagates `seed` (shaped like the output) through the body and returns the input's
    /// gradient. intoExternal: also accumulate into the external tensors' gradients (the final
    /// pass); otherwise they are switched off for the replay, so only the input's is computed.
    @discardableResult
    func pullback(_ seed: Tensor, intoExternal: Bool) -> Tensor {
        require(seed.count == output.count, "implicitLayer", "gradient \(describe(seed.shape)) for an output \(describe(output.shape))")
        var switchedOff: [Tensor] = []
        if !intoExternal {
            for t in external where t.requiresGrad { t.requiresGrad = false; switchedOff.append(t) }
        }
        defer { for t in switchedOff { t.requiresGrad = true } }
        let g = output.gradPointer()
        for i in 0..<output.count { g[i] += seed.data[i] }
        for r in records.reversed() {
            if let gs = r.output.gradStorage { r.backward(gs.pointer) }
            r.output.freeGrad()
        }
        let result = input.grad?.clone() ?? Tensor.zeros(input.shape)
        input.freeGrad()
        output.freeGrad()
        return result
    }
}
