import ArgumentParser
import Foundation
import Tensor
import NN
import FlowNets
import FlowData
import Training

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate optical flow: for two frames, or for every consecutive pair of a folder of frames or a video.",
        discussion: """
        Preprocessing follows each net's published convention. FastFlowNet: RGB/255 minus one scalar \
        (the mean over both frames), bilinear resize to multiples of 64, 20× upsampling of flow2, \
        resize back with u and v rescaled (--convention supervised: BGR/255 minus per-channel means, \
        for the supervised FastFlowNet weights). RAFT: pixels 0..255, replicate padding to multiples \
        of 8 split evenly, unpadding.

        --weights takes .safetensors or a PyTorch .pth (zip or legacy format); without it the weights \
        shipped in Models/ are used. A flow file is .flo or a KITTI 16-bit flow .png. A failed write \
        leaves no partial file.

        Two frames: --out is the flow file, --vis a PNG of the first frame beside the colour-coded \
        flow (Middlebury colour wheel: hue is the direction, saturation the magnitude; the legend's \
        rim is the largest magnitude, in pixels; --vis-flow-only: the colours alone).
        A folder of frames (each sub-folder a sequence of its own; natural order) or a video file \
        (decoded by ffmpeg): --out is a folder that receives one flow file per pair, named after the \
        pair's first frame, and --vis a folder for the colour PNGs or a video file of them.

        Examples:
          mdflow infer frame1.png frame2.png --out flow.flo --vis flow.png
          mdflow infer my-frames/ --out flows/ --vis flows-vis/
          mdflow infer clip.mp4 --out flows/ --vis flow-video.mp4
          mdflow infer clip.mp4 --out flows/ --step 2 --max-frames 300 --format png

        --reliable-only also estimates the backward flow and keeps only the pixels where the two \
        agree (the forward-backward occlusion check); the others are written as unknown. A folder \
        of frames labelled this way by the student (--net raft-small) trains the teacher in a \
        supervised stage: a frames dataset with `flows:` set to the --out folder.
          mdflow infer my-frames/ --net raft-small --reliable-only --out my-flows/
        """)

    @Option(help: "Network: fastflownet, raft, raft-small, deq-raft or deq-raft-small.")
    var net: NetArch = .fastflownet

    @Option(help: "Weights: .safetensors or .pth (default: the shipped Models/ weights of --net).")
    var weights: String?

    @Option(help: "RAFT iterations.")
    var iters: Int = 12

    @Option(help: "FastFlowNet input convention: mdflow (default) or supervised.")
    var convention: String = "mdflow"

    @Option(help: inferenceScaleHelp)
    var scale: InferenceScale?

    @Argument(help: "First frame (PNG, JPEG or PPM), or a folder of frames, or a video file.")
    var source: String

    @Argument(help: "Second frame (only with a first frame).")
    var frame2: String?

    @Option(help: "Output (required): the flow file (.flo or .png) for two frames; a folder otherwise.")
    var out: String

    @Option(help: "Also write colour visualizations: a .png for two frames; otherwise a folder of PNGs, or a video (.mp4, .mkv, …) made by ffmpeg (default: none).")
    var vis: String?

    @Flag(help: "--vis shows the flow's colours alone (default: the first frame beside them, with the colour wheel and its scale).")
    var visFlowOnly = false

    @Option(help: "Frames per second of a --vis video.")
    var fps: Int = 10

    @Option(help: "Folder or video: pair frame k with frame k + step (a video keeps every step-th frame).")
    var step: Int = 1

    @Option(help: "Folder or video: at most this many frames (of each sequence of a folder; 0: all).")
    var maxFrames: Int = 0

    @Option(help: "Folder or video: flow file format, flo or png (KITTI 16-bit).")
    var format: FlowFormat = .flo

    @Flag(help: "Keep only pixels whose forward and backward flows agree; the others are written as unknown (pseudo-labels).")
    var reliableOnly = false

    @Flag(help: "DEQ nets on a folder or video: start each pair's solve from the previous pair's solution (flow and hidden state) instead of zero flow.")
    var warmStart = false

    func validate() throws {
        guard iters >= 1 else { throw ValidationError("--iters must be at least 1") }
        guard FastFlowNetInputConvention(rawValue: convention) != nil else { throw ValidationError("--convention must be mdflow or supervised, got '\(convention)'") }
        guard step >= 1 else { throw ValidationError("--step must be at least 1") }
        _ = try inferenceScale(scale, teacher: net == .fastflownet)
        guard maxFrames >= 0 else { throw ValidationError("--max-frames must be 0 (all) or more") }
        guard fps >= 1 else { throw ValidationError("--fps must be at least 1") }
        if frame2 != nil {
            let ext = (out as NSString).pathExtension.lowercased()
            guard ext == "flo" || ext == "png" else { throw ValidationError("--out \(out): the extension must be .flo or .png") }
            if let vis { guard (vis as NSString).pathExtension.lowercased() == "png" else { throw ValidationError("--vis \(vis): must be a .png") } }
        } else if ["flo", "png"].contains((out as NSString).pathExtension.lowercased()) {
            throw ValidationError("--out \(out): with a folder or a video, --out is the folder for the flow files")
        }
    }

    func run() throws {
        let predictor = try FlowPredictor(arch: net, weights: try weights ?? net.shippedWeights(), iters: iters,
                                          convention: FastFlowNetInputConvention(rawValue: convention)!)
        predictor.scale = try inferenceScale(scale, teacher: net == .fastflownet)
        predictor.reuseFixedPoint = warmStart
        guard let frame2 else {
            var job = SequenceInference(source: source)
            job.step = step
            job.maxFrames = maxFrames
            job.format = format
            job.visualizations = vis
            job.fps = fps
            job.reliableOnly = reliableOnly
            job.visualizeWithFrame = !visFlowOnly
            try job.run(predictor: predictor, outputFolder: out) { print($0); fflush(nil) }
            return
        }
        let img1 = try ImageFile.read(source)
        let img2 = try ImageFile.read(frame2)
        let field = reliableOnly ? try predictor.predictReliable(img1, img2, names: (source, frame2))
                                 : try predictor.predict(img1, img2, names: (source, frame2))
        try field.write(to: out, format: (out as NSString).pathExtension.lowercased() == "png" ? .png : .flo, visualization: vis,
                        frame: visFlowOnly ? nil : img1)
        for (name, image) in [(source, img1), (frame2, img2)] where FlowPredictor.isBlank(image) {
            print("warning: \(name) is blank (one colour); the flow is not determined by the images")
        }
        print("\(net.rawValue): \(img1.width)×\(img1.height), max |flow| \(String(format: "%.2f", FlowViz.maxMagnitude(field))) px → \(out)" + (vis.map { ", \($0)" } ?? ""))
    }
}
