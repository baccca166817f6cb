import Tensor

/// Convolutions of one input with one geometry, run as a single convolution whose output channels
/// are theirs in order (RAFT's GRU gates z and r both read [h, x]). The input is transformed (or
/// phase-copied) once instead of once per convolution, and in the backward pass the input gradient
/// is written once. The convolutions keep their own parameters (and checkpoint keys): each call
/// copies their weights into buffers this object owns, and the graph node of that copy hands each
/// convolution its part of the gradient. The buffers stay the same from call to call, so the packed
/// forms DerivedWeights keeps for them last as long as the weights do.
/// Each output channel is the same sum as in its own convolution, so the forward result is
/// bitwise the one of the separate convolutions; the input gradient sums their parts in one pass.
public final class StackedConv2d {
    public let convs: [Conv2d]
    private let weight: Storage
    private let bias: Storage?
    private let weightShape: [Int]

    /// convs: at least one, all with the same geometry, input channels and kernel, all with a bias or
    /// none.
    public init(_ convs: [Conv2d]) {
        require(!convs.isEmpty, "StackedConv2d", "no convolutions")
        let first = convs[0]
        for c in convs {
            require(c.geometry == first.geometry && Array(c.weight.shape.dropFirst()) == Array(first.weight.shape.dropFirst())
                    && (c.bias == nil) == (first.bias == nil), "StackedConv2d",
                    "weight \(describe(c.weight.shape)) with \(c.geometry) does not stack on \(describe(first.weight.shape)) with \(first.geometry)")
        }
        self.convs = convs
        let out = convs.reduce(0) { $0 + $1.weight.shape[0] }
        weightShape = [out] + Array(first.weight.shape.dropFirst())
        weight = Storage(count: weightShape.reduce(1, *))
        bias = first.bias == nil ? nil : Storage(count: out)
    }

    /// x: (N, in, H, W) → (N, Σ out, H', W'), the convolutions' outputs one after another.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let w = stacked(convs.map(\.weight), into: weight, shape: weightShape)
        let b = bias.map { stacked(convs.map { $0.bias! }, into: $0, shape: [weightShape[0]]) }
        return x.conv2d(w, b, convs[0].geometry)
    }

    /// parts copied one after another into `storage`, as a tensor whose gradient flows back to them.
    private func stacked(_ parts: [Tensor], into storage: Storage, shape: [Int]) -> Tensor {
        var offset = 0
        for p in parts {
            (storage.pointer + offset).update(from: p.data, count: p.count)
            offset += p.count
        }
        let t = Tensor(shape: shape, storage: storage)
        Tape.record(t, inputs: parts) { dy in
            var offset = 0
            for p in parts {
                if let g = p.gradIfNeeded { for i in 0..<p.count { g[i] += dy[offset + i] } }
                offset += p.count
            }
        }
        return t
    }
}
