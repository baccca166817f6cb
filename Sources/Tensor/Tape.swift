import Foundation

/// Reverse-mode autograd on whole tensors.
///
/// Each op that has an input requiring gradients appends a record: its output and a closure that
/// runs the op's backward kernel. `Tape.backward(loss)` seeds the loss gradient and replays the
/// closures in reverse creation order (a valid topological order). **Backward kernels accumulate**
/// (`+=`) into input gradients, so a tensor used twice gets both contributions. The tape is
/// per thread: graphs are built and differentiated on the thread that builds them.
public final class Tape {
    struct Record {
        let output: Tensor
        /// The op's inputs, kept only while an implicit layer records its body (`capturing`).
        let inputs: [Tensor]
        let backward: (UnsafeMutablePointer<Float>) -> Void
    }

    var records: [Record] = []
    var gradEnabled = true
    /// Records keep their inputs (an implicit layer's body is being recorded).
    var capturing = false

    /// The calling thread's tape.
    public static var current: Tape {
        if let p = pthread_getspecific(tapeKey) { return Unmanaged<Tape>.fromOpaque(p).takeUnretainedValue() }
        let t = Tape()
        pthread_setspecific(tapeKey, Unmanaged.passRetained(t).toOpaque())
        return t
    }

    /// Whether ops record on this thread right now.
    public static var isRecording: Bool { current.gradEnabled }

    /// Number of records waiting for backward (tests, leak checks).
    public static var recordCount: Int { current.records.count }

    /// Elements of the outputs those records keep alive until backward (this thread's tape).
    public static var recordedElements: Int { current.records.reduce(0) { $0 + $1.output.count } }

    /// Records `backward` for output `y` if gradients are on and any input requires them. The
    /// closure receives `dy`, the output's gradient (y.count floats), and must accumulate into
    /// each input's `gradIfNeeded`.
    public static func record(_ y: Tensor, inputs: [Tensor], _ backward: @escaping (UnsafeMutablePointer<Float>) -> Void) {
        let tape = current
        guard tape.gradEnabled, inputs.contains(where: { $0.requiresGrad }) else { return }
        y.requiresGrad = true
        tape.records.append(Record(output: y, inputs: tape.capturing ? inputs : [], backward: backward))
    }

    /// Runs `body` with recording off (inference, pseudo-labels, metrics).
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        let tape = current
        let saved = tape.gradEnabled
        tape.gradEnabled = false
        defer { tape.gradEnabled = saved }
        return try body()
    }

    /// Backpropagates from `loss`. With `seed` nil the loss must have one element and its gradient
    /// is 1; otherwise `seed` (same shape) is the upstream gradient. Memory is released as it goes,
    /// as PyTorch does: each record is dropped right after its backward ran (freeing the
    /// activations only it captured), and so is its output's gradient, since every consumer of an
    /// interior result runs before it. Leaf gradients (parameters, inputs) are kept;
    /// `keepInteriorGradients` keeps the others too (tests that inspect them).
    public static func backward(_ loss: Tensor, seed: Tensor? = nil, keepInteriorGradients: Bool = false) {
        let tape = current
        if let seed {
            require(seed.count == loss.count, "backward", "seed \(describe(seed.shape)) for output \(describe(loss.shape))")
            let g = loss.gradPointer()
            for i in 0..<loss.count { g[i] += seed.data[i] }
        } else {
            require(loss.count == 1, "backward", "loss of shape \(describe(loss.shape)) is not a scalar; pass a seed")
            loss.gradPointer()[0] += 1
        }
        var records = tape.records
        tape.records = []
        while let r = records.popLast() {
            if let g = r.output.gradStorage {
                r.backward(g.pointer)
                if !keepInteriorGradients { r.output.freeGrad() }
            }
        }
    }

    /// Forgets every record (after a step without backward, e.g. a skipped NaN step).
    public static func clear() { current.records = [] }
}

private let tapeKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in
        if let p { Unmanaged<Tape>.fromOpaque(p).release() }
    }
    return key
}()
