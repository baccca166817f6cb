import ArgumentParser
import Foundation
import Tensor
import NN
import FlowNets
import FlowData
import Training

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate the optical flow from FRAME1 to FRAME2 with one network.",
        discussion: """
        Preprocessing follows each net's published convention. FastFlowNet: RGB/255 minus one scalar \
        (the mean over both frames), bilinear resize to multiples of 64, 20× upsampling of flow2, \
        resize back with u and v rescaled (--convention supervised: BGR/255 minus per-channel means, \
        for the supervised FastFlowNet weights). RAFT: pixels 0..255, replicate padding to multiples \
        of 8 split evenly, unpadding.

        --weights takes .safetensors or a PyTorch .pth (zip or legacy format); without it the weights \
        shipped in Models/ are used. The output is .flo, or a KITTI 16-bit flow .png. A failed run \
        writes no output file.

        Example: mdflow infer frame1.png frame2.png --out flow.flo --vis flow.png
        """)

    @Option(help: "Network: fastflownet, raft or raft-small.")
    var net: NetArch = .fastflownet

    @Option(help: "Weights: .safetensors or .pth (default: the shipped Models/ weights of --net).")
    var weights: String?

    @Option(help: "RAFT iterations.")
    var iters: Int = 12

    @Option(help: "FastFlowNet input convention: mdflow (default) or supervised.")
    var convention: String = "mdflow"

    @Argument(help: "First frame (PNG, JPEG or PPM).")
    var frame1: String

    @Argument(help: "Second frame.")
    var frame2: String

    @Option(help: "Output flow: .flo or .png (KITTI 16-bit).")
    var out: String

    @Option(help: "Also write a colour visualization PNG.")
    var vis: String?

    func validate() throws {
        guard iters >= 1 else { throw ValidationError("--iters must be at least 1") }
        guard FastFlowNetInputConvention(rawValue: convention) != nil else { throw ValidationError("--convention must be mdflow or supervised, got '\(convention)'") }
        let ext = (out as NSString).pathExtension.lowercased()
        guard ext == "flo" || ext == "png" else { throw ValidationError("--out \(out): the extension must be .flo or .png") }
        if let vis { guard (vis as NSString).pathExtension.lowercased() == "png" else { throw ValidationError("--vis \(vis): must be a .png") } }
    }

    func run() throws {
        let img1 = try ImageFile.read(frame1)
        let img2 = try ImageFile.read(frame2)
        guard img1.width == img2.width && img1.height == img2.height else {
            throw InferError("\(frame2): size \(img2.width)×\(img2.height) differs from \(frame1) (\(img1.width)×\(img1.height))")
        }
        let weights = try self.weights ?? net.shippedWeights()
        try Checkpoint.verifyFile(weights)
        let state = try WeightsFile.read(URL(fileURLWithPath: weights))
        let a = Tensor(shape: [1, 3, img1.height, img1.width], values: img1.pixels)
        let b = Tensor(shape: [1, 3, img2.height, img2.width], values: img2.pixels)
        let flow: Tensor
        switch net {
        case .fastflownet:
            let model = FastFlowNet()
            try model.load(state, source: weights)
            model.setTraining(false)
            flow = model.predict(a, b, convention: FastFlowNetInputConvention(rawValue: convention)!)
        default:
            guard img1.width >= 57 && img1.height >= 57 else {
                throw InferError("\(frame1): \(img1.width)×\(img1.height) is too small for RAFT's 4-level correlation pyramid (at least 57×57)")
            }
            let model = RAFT(small: net == .raftSmall)
            try model.load(state, source: weights)
            model.setTraining(false)
            flow = model.predict(a * 255, b * 255, iters: iters)
        }
        guard flow.isFinite else { throw InferError("\(weights): the network produced non-finite flow") }
        let field = FlowField(width: img1.width, height: img1.height, uv: flow.toArray(),
                              valid: [Float](repeating: 1, count: img1.width * img1.height))
        // Write to temporary names first; rename only when every output succeeded.
        var written: [(tmp: String, final: String)] = []
        do {
            let tmpOut = temporaryName(out)
            written.append((tmpOut, out))
            if (out as NSString).pathExtension.lowercased() == "png" { try FlowFile.writeKITTI(field, to: tmpOut) }
            else { try FlowFile.writeFlo(field, to: tmpOut) }
            if let vis {
                let tmpVis = temporaryName(vis)
                written.append((tmpVis, vis))
                try FlowViz.writePNG(field, to: tmpVis)
            }
            for w in written {
                if FileManager.default.fileExists(atPath: w.final) { try FileManager.default.removeItem(atPath: w.final) }
                try FileManager.default.moveItem(atPath: w.tmp, toPath: w.final)
            }
        } catch {
            for w in written { try? FileManager.default.removeItem(atPath: w.tmp) }
            throw error
        }
        var maxMag: Float = 0
        for i in 0..<field.planeSize { maxMag = max(maxMag, (field.uv[i] * field.uv[i] + field.uv[field.planeSize + i] * field.uv[field.planeSize + i]).squareRoot()) }
        print("\(net.rawValue): \(img1.width)×\(img1.height), max |flow| \(String(format: "%.2f", maxMag)) px → \(out)" + (vis.map { ", \($0)" } ?? ""))
    }

    /// A sibling temporary path with the same extension.
    func temporaryName(_ path: String) -> String {
        let ns = path as NSString
        return ns.deletingPathExtension + ".tmp-\(getpid())." + ns.pathExtension
    }
}

/// A failed inference, naming the file that caused it.
struct InferError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
