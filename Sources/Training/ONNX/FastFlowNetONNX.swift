// FastFlowNet's inference (FastFlowNet.predict with the .mdflow convention) as an ONNX graph of
// standard operators, for runtimes other than mdflow. Every step follows our kernels' conventions:
//   preprocess   x/255 (ImageFile divides by 255), minus the mean over both frames and channels
//                (summed in stages, see `build`); Resize linear half_pixel (PyTorch's align_corners
//                false: src = (dst + 0.5)·in/out − 0.5, clamped to the image) to the next multiples
//                of 64, only when the size is not one.
//   encoder      Conv + LeakyRelu(0.1), AveragePool 2×2 stride 2 for levels 4–6; both frames as one
//                batch of two, as FastFlowNet.callAsFunction runs them.
//   correlation  the 53 center-dense dilated displacements (cddcDisplacements) in increasing channel
//                order: f2 zero-padded by 4 (Pad), one Slice per displacement, Mul by f1, ReduceSum
//                over channels, Concat, Mul by 1/C: Σ_c f1·f2 / C, zero outside f2 (correlation.c).
//   warp         GridSample bilinear, padding zeros, align_corners 1 at pixel + flow normalized by
//                2/(W−1), 2/(H−1): each out-of-image corner reads 0 (warp.c, WarpPadding.zeros).
//   decoders     Conv (+ LeakyRelu), channel shuffle as Reshape/Transpose/Reshape, ConvTranspose
//                4×4 stride 2 pad 1 for up3…up6.
//   output       flow2 Resize'd to the padded size, × 20, then Resize'd to H×W with u × W/W', v × H/H'
//                (FastFlowNet.resizeFlow), skipped when no resize happened.
import Foundation
import Tensor
import NN
import FlowNets

/// Export of FastFlowNet to ONNX.
public enum FastFlowNetONNX {
    /// The default input size: FastFlowNet's published speed size (Sintel, 1024×448), a multiple
    /// of 64, so the graph resizes nothing but flow2.
    public static let defaultHeight = 448, defaultWidth = 1024
    /// Opset 17: every op used is available (GridSample came in 16), and runtimes from 2022 on load it.
    public static let defaultOpset = 17
    /// Opsets the graph is written for: GridSample needs 16; its mode is spelled "linear" from 20.
    public static let opsets = 16...22
    /// Largest height or width accepted.
    public static let maxSide = 8192
    /// Every op type the graph uses (all of the default ai.onnx domain).
    public static let opTypes: Set<String> = [
        "Add", "AveragePool", "Concat", "Conv", "ConvTranspose", "Div", "GridSample", "LeakyRelu", "Mul",
        "Pad", "ReduceSum", "Reshape", "Resize", "Slice", "Sub", "Transpose",
    ]

    /// The graph of `net` (weights as initializers under their PyTorch keys) for one pair of RGB
    /// frames of height × width in [0, 255]: inputs `image1`, `image2` (1, 3, H, W) float32, output
    /// `flow` (1, 2, H, W) float32 in pixels, u then v. `source` names the weights in the metadata.
    public static func model(_ net: FastFlowNet, height: Int, width: Int, opset: Int = defaultOpset,
                             source: String = "") throws -> ONNXModel {
        guard opsets.contains(opset) else {
            throw TrainingError("opset \(opset) is not supported: FastFlowNet's graph is written for opsets \(opsets.lowerBound)–\(opsets.upperBound)")
        }
        guard (1...maxSide).contains(height) && (1...maxSide).contains(width) else {
            throw TrainingError("size \(height)x\(width): height and width must be 1 to \(maxSide)")
        }
        var e = Emitter(net: net, opset: opset)
        e.build(height: height, width: width)
        let unused = e.weights.keys.filter { !e.usedWeights.contains($0) }.sorted()
        guard unused.isEmpty else { throw TrainingError("FastFlowNet ONNX export: weights not used by the graph: \(unused.joined(separator: ", "))") }

        var model = ONNXModel(irVersion: ONNXModel.irVersion(forOpset: opset), opset: opset, graph: e.b.graph)
        model.docString = """
            FastFlowNet, the mdflow teacher: optical flow from image1 to image2. Inputs: RGB, float32 \
            in [0, 255], 1×3×\(height)×\(width). Output: flow in pixels, 1×2×\(height)×\(width) (u, v): \
            what `mdflow infer` writes for the same pair.
            """
        model.metadata = [("mdflow.net", "fastflownet"), ("mdflow.size", "\(height)x\(width)"),
                          ("mdflow.convention", FastFlowNetInputConvention.mdflow.rawValue)]
        if !source.isEmpty { model.metadata.append(("mdflow.weights", source)) }
        return model
    }

    /// Writes `model` to `path` through a temporary file, fsync and rename: a failure leaves no
    /// partial file, and its error names `path`.
    public static func write(_ model: ONNXModel, to path: String) throws {
        let data = model.serialized()
        do { try Checkpoint.writeAtomically(data, to: URL(fileURLWithPath: path)) }
        catch { throw TrainingError("\(path): cannot write the ONNX model (\(error))") }
    }
}

/// Emits FastFlowNet's nodes into a builder.
private struct Emitter {
    let net: FastFlowNet
    let opset: Int
    var b = ONNXGraphBuilder(name: "fastflownet")
    /// The state dict, every tensor an initializer under its key.
    var weights: [String: Tensor] = [:]
    var usedWeights: Set<String> = []

    init(net: FastFlowNet, opset: Int) {
        self.net = net
        self.opset = opset
        for (key, t) in net.namedParameters() + net.namedBuffers() {
            weights[key] = t
            b.initializer(t.onnx(name: key))
        }
    }

    mutating func build(height h: Int, width w: Int) {
        let d = FastFlowNet.sizeDivisor
        let hh = (h + d - 1) / d * d, ww = (w + d - 1) / d * d
        let image1 = b.input("image1", shape: [1, 3, h, w], doc: "first frame, RGB, float32 in [0, 255]")
        let image2 = b.input("image2", shape: [1, 3, h, w], doc: "second frame, RGB, float32 in [0, 255]")
        b.output("flow", shape: [1, 2, h, w], doc: "flow from image1 to image2 in pixels: channel 0 u (x), 1 v (y)")

        // Preprocess: [0, 1], minus the scalar mean over both frames, then the padded size.
        let k255 = b.floats([255], dims: [1])
        let x1 = b.node("Div", [image1, k255], name: "pre/image1_01")
        let x2 = b.node("Div", [image2, k255], name: "pre/image2_01")
        let both = b.node("Concat", [x1, x2], [("axis", .int(0))], name: "pre/frames")     // (2, 3, h, w)
        // Summed row by row, then over rows, then over frames and channels: one float32 ReduceSum
        // over all 2·3·448·1024 values was off by 4e-4 relatively in onnxruntime (mdflow sums in
        // Double), which moved the flow by up to 0.16 px.
        let rows = b.node("ReduceSum", [both, b.int64s([3])], [("keepdims", .int(1))], name: "pre/row_sums")   // (2, 3, h, 1)
        let planes = b.node("ReduceSum", [rows, b.int64s([2])], [("keepdims", .int(1))], name: "pre/plane_sums") // (2, 3, 1, 1)
        let sum = b.node("ReduceSum", [planes, b.int64s([0, 1])], [("keepdims", .int(1))], name: "pre/sum")     // (1, 1, 1, 1)
        let mean = b.node("Mul", [sum, b.floats([1 / Float(6 * h * w)], dims: [1])], name: "pre/mean")
        var frames = b.node("Sub", [both, mean], name: "pre/centered")
        if hh != h || ww != w { frames = resize(frames, to: [2, 3, hh, ww], name: "pre/resized") }

        // Encoder, both frames as a batch of two.
        let enc = net.encoder
        var x = frames
        for (key, layer) in [("pconv1_1", enc.pconv1_1), ("pconv1_2", enc.pconv1_2), ("pconv2_1", enc.pconv2_1),
                             ("pconv2_2", enc.pconv2_2), ("pconv2_3", enc.pconv2_3)] {
            x = conv(x, layer, key: key)
        }
        var feats = [x]                                                         // level 2
        for (key, layer) in [("pconv3_1", enc.pconv3_1), ("pconv3_2", enc.pconv3_2), ("pconv3_3", enc.pconv3_3)] {
            x = conv(x, layer, key: key)
        }
        feats.append(x)                                                         // level 3
        for level in 4...6 {
            x = b.node("AveragePool", [x], [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))], name: "enc/pool\(level)")
            feats.append(x)
        }
        let f1 = feats.enumerated().map { b.node("Slice", [$0.element, b.int64s([0]), b.int64s([1]), b.int64s([0])], name: "l\($0.offset + 2)/f1") }
        let f2 = feats.enumerated().map { b.node("Slice", [$0.element, b.int64s([1]), b.int64s([2]), b.int64s([0])], name: "l\($0.offset + 2)/f2") }
        let channels = net.rconvs.map { $0.conv.weight.shape[1] }             // feature channels per level
        func size(_ level: Int) -> (Int, Int) { (hh >> level, ww >> level) }

        // Level 6: no previous flow.
        let (h6, w6) = size(6)
        let zero = b.floats([Float](repeating: 0, count: 2 * h6 * w6), dims: [1, 2, h6, w6])
        let cv6 = correlation(f1[4], f2[4], shape: [channels[4], h6, w6], level: 6)
        var flow = decoder(concatenated: [cv6, conv(f1[4], net.rconvs[4], key: "rconv6"), zero], index: 4, height: h6, width: w6)
        for level in stride(from: 5, through: 2, by: -1) {
            let i = level - 2
            let (lh, lw) = size(level)
            let up = convTranspose(flow, net.ups[i], key: "up\(level + 1)")
            let pixels = b.node("Mul", [up, b.floats([FastFlowNet.flowScale / Float(1 << level)], dims: [1])], name: "l\(level)/up_pixels")
            let warped = warp(f2[i], by: pixels, height: lh, width: lw, level: level)
            let cv = correlation(f1[i], warped, shape: [channels[i], lh, lw], level: level)
            let out = decoder(concatenated: [cv, conv(f1[i], net.rconvs[i], key: "rconv\(level)"), up], index: i, height: lh, width: lw)
            flow = b.node("Add", [out, up], name: "l\(level)/flow")
        }

        // Full resolution, in pixels; back to h × w with u and v rescaled.
        let full = resize(flow, to: [1, 2, hh, ww], name: "out/flow2_up")
        let padded = hh != h || ww != w
        let scaled = b.node("Mul", [full, b.floats([FastFlowNet.flowScale], dims: [1])], name: "out/pixels", output: padded ? nil : "flow")
        if padded {
            let r = resize(scaled, to: [1, 2, h, w], name: "out/resized")
            b.node("Mul", [r, b.floats([Float(w) / Float(ww), Float(h) / Float(hh)], dims: [1, 2, 1, 1])], name: "out/flow", output: "flow")
        }
    }

    /// Bilinear resize to `sizes`, PyTorch's align_corners false (ONNX half_pixel).
    mutating func resize(_ x: String, to sizes: [Int], name: String) -> String {
        b.node("Resize", [x, "", "", b.int64s(sizes)],
               [("mode", .string("linear")), ("coordinate_transformation_mode", .string("half_pixel"))], name: name)
    }

    /// The state-dict key of `tensor`, checked to be that very tensor.
    mutating func weight(_ key: String, _ tensor: Tensor) -> String {
        precondition(weights[key] === tensor, "FastFlowNet ONNX export: \(key) is not the module's tensor")
        usedWeights.insert(key)
        return key
    }

    /// Conv with the module's geometry, then its LeakyRelu. key: the module's key ("pconv1_1").
    mutating func conv(_ x: String, _ layer: ConvLeakyReLU, key: String) -> String {
        let y = conv(x, layer.conv, key: key + ".0")
        return b.node("LeakyRelu", [y], [("alpha", .float(layer.slope))], name: key + "/act")
    }

    mutating func conv(_ x: String, _ c: Conv2d, key: String) -> String {
        convNode("Conv", x, weight: c.weight, bias: c.bias, geometry: c.geometry, key: key)
    }

    mutating func convTranspose(_ x: String, _ c: ConvTranspose2d, key: String) -> String {
        convNode("ConvTranspose", x, weight: c.weight, bias: c.bias, geometry: c.geometry, key: key)
    }

    /// A Conv or ConvTranspose node with the layer's weights as initializers under `key`.
    mutating func convNode(_ op: String, _ x: String, weight w: Tensor, bias: Tensor?, geometry g: ConvGeometry, key: String) -> String {
        var inputs = [x, weight(key + ".weight", w)]
        if let bias { inputs.append(weight(key + ".bias", bias)) }
        return b.node(op, inputs, [("kernel_shape", .ints([g.kh, g.kw])), ("strides", .ints([g.sh, g.sw])),
                                   ("pads", .ints([g.padTop, g.padLeft, g.padBottom, g.padRight])),
                                   ("dilations", .ints([g.dh, g.dw])), ("group", .int(g.groups))], name: key)
    }

    /// The shuffle-block decoder on the concatenated cost volume, features and flow.
    mutating func decoder(concatenated parts: [String], index i: Int, height h: Int, width w: Int) -> String {
        let dec = net.decoders[i], key = "decoder\(i + 2)"
        var x = b.node("Concat", parts, [("axis", .int(1))], name: key + "/input")
        x = conv(x, dec.conv1, key: key + ".conv1")
        for (k, layer) in [("conv2", dec.conv2), ("conv3", dec.conv3), ("conv4", dec.conv4)] {
            x = channelShuffle(conv(x, layer, key: key + "." + k), groups: dec.groups, shape: [layer.conv.weight.shape[0], h, w],
                               key: key + "." + k)
        }
        x = conv(x, dec.conv5, key: key + ".conv5")
        x = conv(x, dec.conv6, key: key + ".conv6")
        return conv(x, dec.conv7, key: key + ".conv7")
    }

    /// (1, g·p, h, w) → (1, g, p, h·w) → (1, p, g, h·w) → (1, g·p, h, w), as Tensor.channelShuffle.
    /// shape: [g·p, h, w]
    mutating func channelShuffle(_ x: String, groups g: Int, shape: [Int], key: String) -> String {
        if g == 1 { return x }
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let split = b.node("Reshape", [x, b.int64s([1, g, c / g, h * w])], name: key + "/shuffle_split")
        let swapped = b.node("Transpose", [split], [("perm", .ints([0, 2, 1, 3]))], name: key + "/shuffle_swap")
        return b.node("Reshape", [swapped, b.int64s([1, c, h, w])], name: key + "/shuffle")
    }

    /// The center-dense dilated local correlation: Σ_c f1 · f2(· + (dx, dy)) / C, zero outside f2.
    /// f1, f2: (1, c, h, w) → (1, 53, h, w)
    mutating func correlation(_ f1: String, _ f2: String, shape: [Int], level: Int) -> String {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let d = 4, side = 2 * d + 1
        let padded = b.node("Pad", [f2, b.int64s([0, 0, d, d, 0, 0, d, d])], name: "l\(level)/corr_pad")   // (1, c, h+2d, w+2d)
        let displacements = net.displacements.sorted { ($0.dy + d) * side + ($0.dx + d) < ($1.dy + d) * side + ($1.dx + d) }
        var planes: [String] = []
        for p in displacements {
            // f2 at (y + dy, x + dx) is padded f2 at (y + d + dy, x + d + dx).
            let name = "l\(level)/corr_dy\(p.dy)_dx\(p.dx)"
            let shifted = b.node("Slice", [padded, b.int64s([d + p.dy, d + p.dx]), b.int64s([d + p.dy + h, d + p.dx + w]), b.int64s([2, 3])],
                                 name: name + "/f2")
            let product = b.node("Mul", [f1, shifted], name: name + "/product")
            planes.append(b.node("ReduceSum", [product, b.int64s([1])], [("keepdims", .int(1))], name: name))
        }
        let volume = b.node("Concat", planes, [("axis", .int(1))], name: "l\(level)/corr_sum")
        return b.node("Mul", [volume, b.floats([1 / Float(c)], dims: [1])], name: "l\(level)/corr")
    }

    /// f2 sampled bilinearly at pixel + flow, zeros outside (GridSample, align_corners 1).
    mutating func warp(_ f2: String, by flow: String, height h: Int, width w: Int, level: Int) -> String {
        var grid = [Float](repeating: 0, count: 2 * h * w)
        for y in 0..<h { for x in 0..<w { grid[y * w + x] = Float(x); grid[h * w + y * w + x] = Float(y) } }
        let base = b.initializer(ONNXTensor(name: "const_grid_l\(level)", dims: [1, 2, h, w], floats: grid))
        let coords = b.node("Add", [base, flow], name: "l\(level)/warp_coords")
        let scale = b.floats([2 / Float(w - 1), 2 / Float(h - 1)], dims: [1, 2, 1, 1])
        let normalized = b.node("Sub", [b.node("Mul", [coords, scale], name: "l\(level)/warp_scaled"), b.floats([1], dims: [1])],
                                name: "l\(level)/warp_normalized")
        let nhwc = b.node("Transpose", [normalized], [("perm", .ints([0, 2, 3, 1]))], name: "l\(level)/warp_grid")
        return b.node("GridSample", [f2, nhwc], [("align_corners", .int(1)), ("mode", .string(opset >= 20 ? "linear" : "bilinear")),
                                                 ("padding_mode", .string("zeros"))], name: "l\(level)/warp")
    }
}

extension Tensor {
    /// This tensor as a float32 ONNX initializer.
    func onnx(name: String) -> ONNXTensor {
        ONNXTensor(name: name, dims: shape, floats: UnsafeBufferPointer(start: data, count: count))
    }
}
