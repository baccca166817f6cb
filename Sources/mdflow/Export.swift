// `mdflow export`: the FastFlowNet teacher as a standard ONNX model.
import ArgumentParser
import Foundation
import Tensor
import NN
import FlowNets
import Training

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the FastFlowNet teacher as a standard ONNX model (onnxruntime and other runtimes).",
        discussion: """
        The graph computes what `mdflow infer` writes for a pair of frames of the exported size: \
        inputs image1 and image2, float32 1×3×H×W, RGB in [0, 255]; output flow, float32 1×2×H×W, \
        in pixels (u, v). It divides by 255, subtracts the mean over both frames, resizes bilinearly \
        (align_corners false) to the next multiples of 64, runs the pyramid, correlation, warping and \
        decoders, upsamples flow2 20×, and resizes back with u and v rescaled. Standard operators \
        only (Conv, ConvTranspose, LeakyRelu, AveragePool, Pad, Slice, Mul, ReduceSum, Concat, \
        GridSample, Resize, Reshape, Transpose, Add, Sub, Div); the weights are initializers under \
        their PyTorch keys. H×W is fixed: export once per frame size. A failed write leaves no \
        partial file. docs/export.md has the conventions and the onnxruntime check.

        Examples:
          mdflow export --onnx fastflownet.onnx
          mdflow export --weights teacher.safetensors --onnx mine.onnx --size 384x512
          mdflow export --onnx fastflownet-kitti.onnx --size 376x1242 --opset 20
        """)

    @Option(help: "Network; only fastflownet can be exported.")
    var net: NetArch = .fastflownet

    @Option(help: "Weights: .safetensors or .pth (default: the shipped teacher, Models/fastflownet.safetensors).")
    var weights: String?

    @Option(help: ArgumentHelp("Output ONNX file (required).", valueName: "OUT.onnx"))
    var onnx: String

    @Option(help: ArgumentHelp("Input size HEIGHTxWIDTH, fixed in the graph.", valueName: "HxW"))
    var size: String = "\(FastFlowNetONNX.defaultHeight)x\(FastFlowNetONNX.defaultWidth)"

    @Option(help: "ONNX opset, \(FastFlowNetONNX.opsets.lowerBound) to \(FastFlowNetONNX.opsets.upperBound).")
    var opset: Int = FastFlowNetONNX.defaultOpset

    func parseSize() throws -> (height: Int, width: Int) {
        let parts = size.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let h = Int(parts[0]), let w = Int(parts[1]),
              (1...FastFlowNetONNX.maxSide).contains(h), (1...FastFlowNetONNX.maxSide).contains(w) else {
            throw ValidationError("--size must be HEIGHTxWIDTH with each 1 to \(FastFlowNetONNX.maxSide), e.g. 448x1024; got \"\(size)\"")
        }
        return (h, w)
    }

    func validate() throws {
        guard net == .fastflownet else {
            throw ValidationError("--net \(net.rawValue): only fastflownet can be exported to ONNX (RAFT's iterative update is not supported)")
        }
        _ = try parseSize()
        guard FastFlowNetONNX.opsets.contains(opset) else {
            throw ValidationError("--opset \(opset): must be \(FastFlowNetONNX.opsets.lowerBound) to \(FastFlowNetONNX.opsets.upperBound)")
        }
    }

    func run() throws {
        let (h, w) = try parseSize()
        let path = try weights ?? net.shippedWeights()
        var spec = NetSpec(arch: .fastflownet)
        spec.weights = path
        let model = try NetFactory.teacher(spec, seed: 0).net
        let graph = try FastFlowNetONNX.model(model, height: h, width: w, opset: opset,
                                              source: (path as NSString).lastPathComponent)
        try FastFlowNetONNX.write(graph, to: onnx)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int) ?? 0
        print("fastflownet (\(path)): 1×3×\(h)×\(w) pair → flow 1×2×\(h)×\(w), opset \(opset), "
              + "\(graph.graph.nodes.count) nodes, \(model.parameterCount) weights → \(onnx) (\(String(format: "%.1f", Double(bytes) / 1e6)) MB)")
    }
}
