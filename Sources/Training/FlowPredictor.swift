// One trained network, loaded once, estimating the flow of image pairs: what `mdflow infer` runs
// on two frames, on a folder of frames or on a video.
import Foundation
import Tensor
import NN
import FlowNets
import FlowData
import Losses

/// A network with its weights, in inference mode.
public final class FlowPredictor {
    public let arch: NetArch
    public let weights: String
    let fastFlowNet: FastFlowNet?
    let student: StudentNet?
    let iters: Int
    let convention: FastFlowNetInputConvention
    /// FastFlowNet only: the size it estimates at (`InferenceScale`), the flow brought back to the
    /// frames' size.
    public var scale = InferenceScale.fixed(1)
    /// DEQ students: start each solve from the previous pair's solution (fixed-point reuse along a
    /// video), kept per direction; a pair of another size starts cold. Off by default: on real
    /// video it cost solver steps more often than it saved them (docs/deq.md).
    public var reuseFixedPoint = false
    var warm: [Direction: (flow: Tensor, hidden: Tensor)] = [:]
    /// DEQ students: the solves made and their evaluations of f.
    public private(set) var solves = 0, solverEvaluations = 0

    enum Direction { case forward, backward }

    /// Loads `weights` (.safetensors or a PyTorch .pth) into a net of `arch`; checks the file
    /// against a checkpoint manifest beside it, if there is one.
    /// `deq`: a DEQ net's solver options.
    public init(arch: NetArch, weights: String, iters: Int = 12, convention: FastFlowNetInputConvention = .mdflow,
                deq: DEQOptions = DEQOptions()) throws {
        self.arch = arch
        self.weights = weights
        self.iters = iters
        self.convention = convention
        let net = try NetFactory.trained(arch, weights: weights, iters: iters, deq: deq)
        fastFlowNet = (net as? TeacherNet)?.net
        student = net as? StudentNet
    }

    /// The flow from `image1` to `image2` (same size), every pixel valid. `names` name the frames
    /// in errors.
    public func predict(_ image1: RGBImage, _ image2: RGBImage, names: (String, String)) throws -> FlowField {
        try predict(image1, image2, names: names, direction: .forward)
    }

    func predict(_ image1: RGBImage, _ image2: RGBImage, names: (String, String), direction: Direction) throws -> FlowField {
        guard image1.width == image2.width && image1.height == image2.height else {
            throw TrainingError("\(names.1): size \(image2.width)×\(image2.height) differs from \(names.0) (\(image1.width)×\(image1.height))")
        }
        let a = Tensor(shape: [1, 3, image1.height, image1.width], values: image1.pixels)
        let b = Tensor(shape: [1, 3, image2.height, image2.width], values: image2.pixels)
        let flow: Tensor
        if let fastFlowNet {
            flow = fastFlowNet.predict(a, b, convention: convention, scale: scale)
        } else {
            guard image1.width >= 57 && image1.height >= 57 else {
                throw TrainingError("\(names.0): \(image1.width)×\(image1.height) is too small for RAFT's 4-level correlation pyramid (at least 57×57)")
            }
            if let student, case .deq = student.model {
                let start = reuseFixedPoint ? warm[direction] : nil
                let fits = start.map { $0.flow.shape[2] == (image1.height + 7) / 8 && $0.flow.shape[3] == (image1.width + 7) / 8 } ?? false
                let out = student.inferDEQ(a, b, flowInit: fits ? start!.flow : nil, hidden: fits ? start!.hidden : nil)!
                warm[direction] = (out.lowResolution, out.hidden)
                solves += 1
                solverEvaluations += out.solve.evaluations
                flow = out.flow
            } else {
                flow = student!.infer(a, b)
            }
        }
        guard flow.isFinite else { throw TrainingError("\(weights): the network produced non-finite flow for \(names.0)") }
        return FlowField(width: image1.width, height: image1.height, uv: flow.toArray(),
                         valid: [Float](repeating: 1, count: image1.width * image1.height))
    }

    /// The flow from `image1` to `image2`, valid only where the backward flow (from `image2` to
    /// `image1`) agrees with it under the forward-backward check (`Occlusion.forwardBackward`):
    /// occluded and unreliable pixels become unknown. These are the pseudo-labels a stronger net
    /// gives a weaker one. Costs two predictions.
    public func predictReliable(_ image1: RGBImage, _ image2: RGBImage, names: (String, String)) throws -> FlowField {
        var forward = try predict(image1, image2, names: names)
        let backward = try predict(image2, image1, names: (names.1, names.0), direction: .backward)
        let shape = [1, 2, image1.height, image1.width]
        let mask = Occlusion.forwardBackward(Tensor(shape: shape, values: forward.uv), Tensor(shape: shape, values: backward.uv))
        forward.valid = mask.toArray()
        let n = forward.planeSize
        for i in 0..<n where forward.valid[i] == 0 { forward.uv[i] = 0; forward.uv[n + i] = 0 }
        return forward
    }

    /// Whether every pixel of `image` has the same colour (no texture: the flow there is whatever
    /// the network makes of a blank frame).
    public static func isBlank(_ image: RGBImage) -> Bool {
        let p = image.pixels, n = image.width * image.height
        for c in 0..<3 {
            let first = p[c * n]
            for i in 0..<n where p[c * n + i] != first { return false }
        }
        return true
    }
}

/// Output formats of a flow field.
public enum FlowFormat: String, CaseIterable, Sendable {
    /// Middlebury .flo (float32).
    case flo
    /// KITTI 16-bit PNG (1/64 px steps, ±512 px).
    case png
}

extension FlowField {
    /// Writes the flow (and a colour visualization: with `frame`, the frame beside the flow with
    /// the colour wheel, `FlowViz.panel`; without, the flow's colours alone) under temporary names
    /// and renames them into place only when every write succeeded: a failure leaves no partial
    /// output.
    public func write(to out: String, format: FlowFormat, visualization vis: String?, frame: RGBImage? = nil) throws {
        func temporary(_ path: String) -> String {
            let ns = path as NSString
            return ns.deletingPathExtension + ".tmp-\(getpid())." + ns.pathExtension
        }
        var written: [(tmp: String, final: String)] = []
        do {
            written.append((temporary(out), out))
            switch format {
            case .png: try FlowFile.writeKITTI(self, to: written[0].tmp)
            case .flo: try FlowFile.writeFlo(self, to: written[0].tmp)
            }
            if let vis {
                written.append((temporary(vis), vis))
                if let frame { try ImageFile.writePNG(FlowViz.panel(frame: frame, flow: self), to: written[1].tmp) }
                else { try FlowViz.writePNG(self, to: written[1].tmp) }
            }
            for w in written where rename(w.tmp, w.final) != 0 {
                throw TrainingError("\(w.final): cannot rename into place (\(String(cString: strerror(errno))))")
            }
        } catch {
            for w in written { unlink(w.tmp) }
            throw error
        }
    }
}
