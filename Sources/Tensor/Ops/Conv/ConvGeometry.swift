// The geometry of a 2-D convolution (kernel, stride, asymmetric padding, dilation, groups) and its
// output sizes, plain and transposed.

/// Geometry of a 2-D convolution: kernel, stride, (asymmetric) padding, dilation, groups.
public struct ConvGeometry: Sendable, Equatable, CustomStringConvertible {
    public var kh, kw: Int
    public var sh, sw: Int
    public var padTop, padBottom, padLeft, padRight: Int
    public var dh, dw: Int
    public var groups: Int

    public init(kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: (top: Int, bottom: Int, left: Int, right: Int) = (0, 0, 0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        (kh, kw) = kernel; (sh, sw) = stride
        (padTop, padBottom, padLeft, padRight) = padding
        (dh, dw) = dilation
        self.groups = groups
    }

    /// Square kernel with symmetric padding (PyTorch's common form).
    public init(kernel k: Int, stride s: Int = 1, padding p: Int = 0, dilation d: Int = 1, groups: Int = 1) {
        self.init(kernel: (k, k), stride: (s, s), padding: (p, p, p, p), dilation: (d, d), groups: groups)
    }

    /// Output size of a convolution over an h×w input.
    public func outputSize(h: Int, w: Int) -> (Int, Int) {
        ((h + padTop + padBottom - dh * (kh - 1) - 1) / sh + 1, (w + padLeft + padRight - dw * (kw - 1) - 1) / sw + 1)
    }

    /// Output size of the transposed convolution over an h×w input.
    public func transposedOutputSize(h: Int, w: Int, outputPadding: Int = 0) -> (Int, Int) {
        ((h - 1) * sh - padTop - padBottom + dh * (kh - 1) + 1 + outputPadding,
         (w - 1) * sw - padLeft - padRight + dw * (kw - 1) + 1 + outputPadding)
    }

    public var description: String {
        "kernel \(kh)×\(kw), stride \(sh)×\(sw), padding [t\(padTop) b\(padBottom) l\(padLeft) r\(padRight)], dilation \(dh)×\(dw), groups \(groups)"
    }
}
