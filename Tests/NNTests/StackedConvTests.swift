import Testing
@testable import NN
import Tensor
import TestSupport

/// Stacked convolutions (RAFT's GRU gates) equal the separate ones: the forward output bit for bit,
/// and each convolution's weight and bias gradients and the input's gradient to rounding; a loss on
/// the second part alone leaves the first convolution's gradients at zero.
@Suite struct StackedConvTests {
    @Test(arguments: [(3, 3, 1, 1), (1, 5, 0, 2), (5, 1, 2, 0)])
    func stackedEqualsSeparateConvolutions(_ kh: Int, _ kw: Int, _ ph: Int, _ pw: Int) {
        var rng = RandomGenerator(seed: 17)
        // 40 input and 36 + 36 output channels: the Winograd paths; 6 channels: the direct one.
        for (cin, cout) in [(40, 36), (6, 5)] {
            let a = Conv2d(cin, cout, kernel: (kh, kw), padding: (ph, pw)), b = Conv2d(cin, cout, kernel: (kh, kw), padding: (ph, pw))
            for p in [a.weight, a.bias!, b.weight, b.bias!] { p.copy(from: Tensor.randn(p.shape, using: &rng)) }
            let stack = StackedConv2d([a, b])
            let x = Tensor.randn([2, cin, 9, 11], using: &rng)
            x.requiresGrad = true
            let gy = Tensor.randn([2, 2 * cout, 9, 11], using: &rng)

            let y = stack(x)
            #expect(y.shape == [2, 2 * cout, 9, 11])
            Tape.backward((y * gy).sum())
            let grads = [a.weight, a.bias!, b.weight, b.bias!, x].map { $0.grad!.clone() }
            for p in [a.weight, a.bias!, b.weight, b.bias!, x] { p.zeroGrad() }

            let ya = a(x), yb = b(x)
            #expect(relativeError(y.slice(dim: 1, start: 0, length: cout), ya) == 0)
            #expect(relativeError(y.slice(dim: 1, start: cout, length: cout), yb) == 0)
            Tape.backward((ya * gy.slice(dim: 1, start: 0, length: cout)).sum() + (yb * gy.slice(dim: 1, start: cout, length: cout)).sum())
            for (g, p) in zip(grads, [a.weight, a.bias!, b.weight, b.bias!, x]) { #expect(relativeError(g, p.grad!) < 1e-5) }

            for p in [a.weight, a.bias!, b.weight, b.bias!, x] { p.zeroGrad() }
            Tape.backward(stack(x).slice(dim: 1, start: cout, length: cout).sum())
            let largest = { (t: Tensor) in t.grad!.toArray().map { abs($0) }.max()! }
            #expect(largest(a.weight) == 0 && largest(a.bias!) == 0)
            #expect(largest(b.weight) > 0 && largest(b.bias!) > 0)
        }
    }
}
