import Testing
import Foundation
import Tensor
import NN
import FlowNets
import Training
import TestSupport

// The exported FastFlowNet read back with a protobuf reader of its own (field numbers of
// onnx/onnx.proto written out again here, not taken from the exporter): structure, names, shapes,
// operator set and the weights' bytes. The numbers themselves are checked against onnxruntime by
// Scripts/onnx_check.sh (docs/export.md).

/// A protobuf wire-format reader: the fields of one message, in order.
private enum Wire {
    enum Value {
        case varint(UInt64), fixed32(UInt32), fixed64(UInt64), bytes([UInt8])
    }
    struct Malformed: Error, CustomStringConvertible { let description: String }

    static func fields(_ b: [UInt8]) throws -> [(field: Int, value: Value)] {
        var out: [(Int, Value)] = [], i = 0
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < b.count, shift < 64 else { throw Malformed(description: "truncated varint at \(i)") }
                let byte = b[i]; i += 1
                v |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return v }
                shift += 7
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard i + n <= b.count else { throw Malformed(description: "truncated fixed\(8 * n) at \(i)") }
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(b[i + k]) << UInt64(8 * k) }
            i += n
            return v
        }
        while i < b.count {
            let key = try varint()
            let field = Int(key >> 3)
            guard field >= 1 else { throw Malformed(description: "field number 0 at \(i)") }
            switch key & 7 {
            case 0: out.append((field, .varint(try varint())))
            case 1: out.append((field, .fixed64(try fixed(8))))
            case 5: out.append((field, .fixed32(UInt32(try fixed(4)))))
            case 2:
                let n = Int(try varint())
                guard n >= 0, i + n <= b.count else { throw Malformed(description: "length \(n) past the end at \(i)") }
                out.append((field, .bytes(Array(b[i..<(i + n)])))); i += n
            default: throw Malformed(description: "wire type \(key & 7) at \(i)")
            }
        }
        return out
    }

    static func int(_ v: Value) -> Int? { if case .varint(let x) = v { return Int(Int64(bitPattern: x)) }; return nil }
    static func bytes(_ v: Value) -> [UInt8]? { if case .bytes(let x) = v { return x }; return nil }
    static func string(_ v: Value) -> String? { bytes(v).map { String(decoding: $0, as: UTF8.self) } }
    /// A repeated int64 field, written packed (one length-delimited run) or not (one varint each).
    static func ints(_ values: [Value]) throws -> [Int] {
        var out: [Int] = []
        for v in values {
            switch v {
            case .varint(let x): out.append(Int(Int64(bitPattern: x)))
            case .bytes(let run): for (_, e) in try fields(packedAsFields(run)) { out.append(int(e)!) }
            default: throw Malformed(description: "repeated int64 with a fixed-width value")
            }
        }
        return out
    }
    /// Re-tags a packed varint run as field-1 varints so `fields` can split it.
    static func packedAsFields(_ run: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], start = true
        for byte in run {
            if start { out.append(0x08) }
            out.append(byte)
            start = byte < 0x80
        }
        return out
    }
}

/// The message fields of one message, grouped by field number.
private struct Message {
    let fields: [Int: [Wire.Value]]
    init(_ bytes: [UInt8]) throws {
        var f: [Int: [Wire.Value]] = [:]
        for (k, v) in try Wire.fields(bytes) { f[k, default: []].append(v) }
        fields = f
    }
    func all(_ n: Int) -> [Wire.Value] { fields[n] ?? [] }
    func int(_ n: Int) -> Int? { all(n).last.flatMap(Wire.int) }
    func string(_ n: Int) -> String? { all(n).last.flatMap(Wire.string) }
    func strings(_ n: Int) -> [String] { all(n).compactMap(Wire.string) }
    func message(_ n: Int) throws -> Message? { try all(n).last.flatMap(Wire.bytes).map(Message.init) }
    func messages(_ n: Int) throws -> [Message] { try all(n).compactMap(Wire.bytes).map(Message.init) }
    func ints(_ n: Int) throws -> [Int] { try Wire.ints(all(n)) }
}

/// The decoded model, as far as the checks need it.
private struct DecodedModel {
    struct Node { let opType: String; let domain: String; let inputs: [String]; let outputs: [String]; let attributes: [String: Message] }
    struct Initializer { let dims: [Int]; let dataType: Int; let raw: [UInt8] }
    struct Value { let name: String; let elemType: Int?; let dims: [Int] }
    var irVersion = 0
    var opsets: [(domain: String, version: Int)] = []
    var nodes: [Node] = []
    var initializers: [String: Initializer] = [:]
    var initializerOrder: [String] = []
    var inputs: [Value] = []
    var outputs: [Value] = []

    init(_ bytes: [UInt8]) throws {
        let model = try Message(bytes)                                       // ModelProto
        irVersion = model.int(1) ?? 0                                        // ir_version
        for o in try model.messages(8) { opsets.append((o.string(1) ?? "", o.int(2) ?? 0)) }   // opset_import
        guard let graph = try model.message(7) else { throw Wire.Malformed(description: "the model has no graph") }   // graph
        for n in try graph.messages(1) {                                     // node
            var attrs: [String: Message] = [:]
            for a in try n.messages(5) { attrs[a.string(1) ?? ""] = a }      // attribute by name
            nodes.append(Node(opType: n.string(4) ?? "", domain: n.string(7) ?? "", inputs: n.strings(1), outputs: n.strings(2),
                              attributes: attrs))
        }
        for t in try graph.messages(5) {                                     // initializer: TensorProto
            let name = t.string(8) ?? ""                                     // name
            initializers[name] = Initializer(dims: try t.ints(1), dataType: t.int(2) ?? 0, raw: t.all(9).last.flatMap(Wire.bytes) ?? [])
            initializerOrder.append(name)
        }
        func value(_ m: Message) throws -> Value {                           // ValueInfoProto
            let tensor = try m.message(2)?.message(1)                        // type.tensor_type
            let dims = try tensor?.message(2)?.messages(1).map { $0.int(1) ?? -1 } ?? []   // shape.dim[].dim_value
            return Value(name: m.string(1) ?? "", elemType: tensor?.int(1), dims: dims)
        }
        inputs = try graph.messages(11).map(value)
        outputs = try graph.messages(12).map(value)
    }
}

private func attributeInt(_ node: DecodedModel.Node, _ name: String) -> Int? { node.attributes[name]?.int(3) }
private func attributeString(_ node: DecodedModel.Node, _ name: String) -> String? { node.attributes[name]?.string(4) }
private func attributeFloat(_ node: DecodedModel.Node, _ name: String) -> Float? {
    if case .fixed32(let b)? = node.attributes[name]?.all(2).last { return Float(bitPattern: b) }
    return nil
}

/// The standard (ai.onnx) operators the FastFlowNet graph may use.
private let standardOps: Set<String> = [
    "Add", "AveragePool", "Concat", "Conv", "ConvTranspose", "Div", "GridSample", "LeakyRelu", "Mul", "Pad",
    "ReduceSum", "Reshape", "Resize", "Slice", "Sub", "Transpose",
]

private func shippedTeacher() throws -> FastFlowNet {
    let path = modelsDir.appendingPathComponent(ShippedModels.teacherFile).path
    try #require(FileManager.default.fileExists(atPath: path), "Models/\(ShippedModels.teacherFile) ships with the repository")
    let net = FastFlowNet()
    try net.load(SafeTensors.read(URL(fileURLWithPath: path)).tensors, source: path)
    return net
}

private func littleEndianBytes(_ t: Tensor) -> [UInt8] {
    t.toArray().flatMap { v -> [UInt8] in
        let b = v.bitPattern
        return [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
    }
}

private func temporaryFolder(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-onnx-\(name)-\(getpid())")
    try? FileManager.default.removeItem(at: dir)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct ONNXExportTests {
    /// Exports the shipped teacher at 128×192 to a file and reads it back.
    @Test func exportedTeacherIsAWellFormedStandardGraphWithTheWeights() throws {
        let net = try shippedTeacher()
        let dir = try temporaryFolder("structure")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("fastflownet.onnx").path
        try FastFlowNetONNX.write(try FastFlowNetONNX.model(net, height: 128, width: 192, opset: 17), to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["fastflownet.onnx"], "no temporary file left")
        let m = try DecodedModel(Array(try Data(contentsOf: URL(fileURLWithPath: path))))

        #expect(m.irVersion == 8)
        #expect(m.opsets.count == 1 && m.opsets[0].domain == "" && m.opsets[0].version == 17)

        // Inputs and output: names, float32 (elem_type 1), fixed shapes.
        #expect(m.inputs.map(\.name) == ["image1", "image2"])
        for v in m.inputs { #expect(v.elemType == 1 && v.dims == [1, 3, 128, 192], "\(v.name): \(String(describing: v.elemType)) \(v.dims)") }
        #expect(m.outputs.map(\.name) == ["flow"])
        #expect(m.outputs.first?.elemType == 1 && m.outputs.first?.dims == [1, 2, 128, 192])

        // Standard operators only; every input defined before use; every output defined once.
        var defined = Set(m.inputs.map(\.name)).union(m.initializers.keys)
        #expect(defined.count == m.inputs.count + m.initializers.count, "an initializer shares a name with an input or another initializer")
        for (k, node) in m.nodes.enumerated() {
            #expect(standardOps.contains(node.opType) && node.domain == "", "node \(k): \(node.domain):\(node.opType) is not a standard op")
            for (j, input) in node.inputs.enumerated() {
                if input.isEmpty {
                    #expect(node.opType == "Resize" && (j == 1 || j == 2), "node \(k) (\(node.opType)) omits input \(j)")
                } else {
                    #expect(defined.contains(input), "node \(k) (\(node.opType)) reads \(input) before it is defined")
                }
            }
            #expect(node.outputs.count == 1)
            for o in node.outputs {
                #expect(!defined.contains(o), "node \(k) (\(node.opType)) redefines \(o)")
                defined.insert(o)
            }
        }
        #expect(m.nodes.last?.outputs == ["flow"])

        // Every weight of the state dict, under its PyTorch key, with its dims and exact bytes.
        let state = net.namedParameters()
        #expect(state.count == 104)
        #expect(Array(m.initializerOrder.prefix(state.count)) == state.map(\.0), "weights first, in state-dict order")
        for (key, t) in state {
            guard let i = m.initializers[key] else { Issue.record("initializer \(key) is missing"); continue }
            #expect(i.dataType == 1 && i.dims == t.shape, "\(key): type \(i.dataType), dims \(i.dims), expected \(t.shape)")
            let expected = littleEndianBytes(t)
            let common = min(i.raw.count, expected.count)
            let firstDifference = (0..<common).first { i.raw[$0] != expected[$0] } ?? (i.raw.count == expected.count ? nil : common)
            #expect(firstDifference == nil, "\(key): raw_data differs from the weights from byte \(firstDifference ?? 0) on")
        }
        for (name, i) in m.initializers {
            let size = i.dataType == 1 ? 4 : i.dataType == 7 ? 8 : 0
            #expect(size > 0 && i.raw.count == size * i.dims.reduce(1, *), "\(name): \(i.raw.count) bytes for type \(i.dataType), dims \(i.dims)")
        }
        // Every weight is read by a node.
        let read = Set(m.nodes.flatMap(\.inputs))
        for (key, _) in state { #expect(read.contains(key), "\(key) is never used") }
    }

    /// The attributes that carry our kernels' conventions.
    @Test func graphFollowsOurKernelsConventions() throws {
        let net = try shippedTeacher()
        let model = try FastFlowNetONNX.model(net, height: 100, width: 150, opset: 17)
        let m = try DecodedModel(Array(model.serialized()))
        func nodes(_ op: String) -> [DecodedModel.Node] { m.nodes.filter { $0.opType == op } }
        func int64s(_ name: String) throws -> [Int] {
            let i = try #require(m.initializers[name], "initializer \(name)")
            try #require(i.dataType == 7 && i.raw.count % 8 == 0)
            return stride(from: 0, to: i.raw.count, by: 8).map { o in
                Int(Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(i.raw[o + $1]) << UInt64(8 * $1) }))
            }
        }

        // Warps at levels 5…2: bilinear, zeros outside, align_corners 1.
        let warps = nodes("GridSample")
        #expect(warps.count == 4)
        for n in warps {
            #expect(attributeInt(n, "align_corners") == 1 && attributeString(n, "mode") == "bilinear"
                    && attributeString(n, "padding_mode") == "zeros")
        }
        // 100×150 → 128×192 frames, flow2 → 128×192, then → 100×150: half-pixel linear resizes.
        let resizes = nodes("Resize")
        #expect(resizes.count == 3)
        for n in resizes {
            #expect(attributeString(n, "mode") == "linear" && attributeString(n, "coordinate_transformation_mode") == "half_pixel")
        }
        #expect(try resizes.map { try int64s($0.inputs[3]) } == [[2, 3, 128, 192], [1, 2, 128, 192], [1, 2, 100, 150]])
        for n in nodes("LeakyRelu") { #expect(attributeFloat(n, "alpha") == 0.1) }
        #expect(nodes("LeakyRelu").count == 8 + 5 + 5 * 6)
        #expect(nodes("Conv").filter { attributeInt($0, "group") == 3 }.count == 5 * 3)

        // Correlation: at each level one Pad by 4 and 53 windows at (4 + dy, 4 + dx), the
        // center-dense dilated set, each summed over channels.
        let pads = nodes("Pad")
        #expect(pads.count == 5)
        let expected = Set(cddcDisplacements(maxDisplacement: 4, denseRadius: 2).map { [4 + $0.dy, 4 + $0.dx] })
        #expect(expected.count == 53)
        for pad in pads {
            #expect(try int64s(pad.inputs[1]) == [0, 0, 4, 4, 0, 0, 4, 4])
            let windows = nodes("Slice").filter { $0.inputs[0] == pad.outputs[0] }
            #expect(windows.count == 53)
            #expect(Set(try windows.map { try int64s($0.inputs[1]) }) == expected)
            for w in windows { #expect(try int64s(w.inputs[3]) == [2, 3]) }
        }
        // The mean over both frames in three stages (rows, planes, all), then 5 × 53 channel sums.
        #expect(nodes("ReduceSum").count == 3 + 5 * 53)
    }

    @Test func opsetTwentyNamesTheBilinearModeLinear() throws {
        let m = try DecodedModel(Array(try FastFlowNetONNX.model(try shippedTeacher(), height: 64, width: 64, opset: 20).serialized()))
        #expect(m.irVersion == 9 && m.opsets.first?.version == 20)
        #expect(m.nodes.filter { $0.opType == "GridSample" }.allSatisfy { attributeString($0, "mode") == "linear" })
    }

    @Test func unsupportedOpsetsAndSizesAreErrors() throws {
        let net = FastFlowNet()
        #expect(throws: TrainingError.self) { _ = try FastFlowNetONNX.model(net, height: 64, width: 64, opset: 15) }
        #expect(throws: TrainingError.self) { _ = try FastFlowNetONNX.model(net, height: 0, width: 64) }
    }

    @Test func aFailedWriteNamesTheFileAndLeavesNothing() throws {
        let dir = try temporaryFolder("fail")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("missing-folder/out.onnx").path
        let model = try FastFlowNetONNX.model(FastFlowNet(), height: 64, width: 64)
        do {
            try FastFlowNetONNX.write(model, to: path)
            Issue.record("writing into a missing folder succeeded")
        } catch {
            #expect("\(error)".contains(path), "error: \(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test(.enabled(if: Fixtures.mdflowExecutable != nil, "needs the mdflow executable beside the test bundle"))
    func exportHelpListsEveryOptionWithItsDefaultAndAnExample() throws {
        let (status, help) = try runMDFlow(["export", "--help"])
        #expect(status == 0)
        let output = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")   // as wrapped to any width
        for option in ["--net", "--weights", "--onnx", "--size", "--opset"] { #expect(output.contains(option), "\(option) in:\n\(output)") }
        for text in ["default: fastflownet", "default: 448x1024", "default: 17", "default: the shipped teacher, Models/fastflownet.safetensors",
                     "mdflow export --onnx fastflownet.onnx"] {
            #expect(output.contains(text), "'\(text)' in:\n\(output)")
        }
    }

    @Test(.enabled(if: Fixtures.mdflowExecutable != nil, "needs the mdflow executable beside the test bundle"))
    func exportRefusesOtherNetsAndWritesTheShippedTeacher() throws {
        let dir = try temporaryFolder("cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("ffn.onnx").path
        let (refused, message) = try runMDFlow(["export", "--net", "raft-small", "--onnx", out])
        #expect(refused != 0 && message.contains("only fastflownet"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let (status, output) = try runMDFlow(["export", "--onnx", out, "--size", "64x96"], in: dir)
        #expect(status == 0, "\(output)")
        let m = try DecodedModel(Array(try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(m.inputs.map(\.dims) == [[1, 3, 64, 96], [1, 3, 64, 96]] && m.outputs.map(\.dims) == [[1, 2, 64, 96]])
    }
}

/// Runs the built mdflow (shipped models through MDFLOW_MODELS); returns its status and output.
private func runMDFlow(_ arguments: [String], in dir: URL? = nil) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Fixtures.mdflowExecutable!)
    p.arguments = arguments
    if let dir { p.currentDirectoryURL = dir }
    p.environment = ProcessInfo.processInfo.environment.merging(["MDFLOW_MODELS": modelsDir.path]) { $1 }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
