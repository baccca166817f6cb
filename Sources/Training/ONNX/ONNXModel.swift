// The ONNX messages an exported network needs (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto), with the field
// numbers of onnx/onnx.proto, and a builder that lays out a graph node by node.
import Foundation

/// TensorProto.DataType values this exporter writes.
public enum ONNXDataType: Int, Sendable {
    case float = 1
    case int64 = 7
}

/// TensorProto: a named constant, its data little-endian in `raw_data`.
public struct ONNXTensor {
    public var name: String
    public var dataType: ONNXDataType
    public var dims: [Int]
    public var rawData: [UInt8]

    /// float32 values, row-major.
    public init(name: String, dims: [Int], floats: UnsafeBufferPointer<Float>) {
        precondition(dims.reduce(1, *) == floats.count, "ONNXTensor \(name): \(floats.count) values for dims \(dims)")
        self.name = name; dataType = .float; self.dims = dims
        var raw = [UInt8](); raw.reserveCapacity(4 * floats.count)
        for v in floats {
            let b = v.bitPattern
            raw.append(UInt8(truncatingIfNeeded: b)); raw.append(UInt8(truncatingIfNeeded: b >> 8))
            raw.append(UInt8(truncatingIfNeeded: b >> 16)); raw.append(UInt8(truncatingIfNeeded: b >> 24))
        }
        rawData = raw
    }

    public init(name: String, dims: [Int], floats: [Float]) {
        self = floats.withUnsafeBufferPointer { ONNXTensor(name: name, dims: dims, floats: $0) }
    }

    /// int64 values, row-major.
    public init(name: String, dims: [Int], int64s: [Int]) {
        precondition(dims.reduce(1, *) == int64s.count, "ONNXTensor \(name): \(int64s.count) values for dims \(dims)")
        self.name = name; dataType = .int64; self.dims = dims
        var raw = [UInt8](); raw.reserveCapacity(8 * int64s.count)
        for v in int64s {
            let b = UInt64(bitPattern: Int64(v))
            for s in stride(from: 0, to: 64, by: 8) { raw.append(UInt8(truncatingIfNeeded: b >> UInt64(s))) }
        }
        rawData = raw
    }

    func encode(_ w: inout ProtoWriter) {
        for d in dims { w.int(1, d) }           // dims
        w.int(2, dataType.rawValue)             // data_type
        w.string(8, name)                       // name
        w.bytes(9, rawData)                     // raw_data
    }
}

/// AttributeProto's value, with its AttributeType.
public enum ONNXAttribute {
    case float(Float)
    case int(Int)
    case string(String)
    case ints([Int])

    func encode(name: String, _ w: inout ProtoWriter) {
        w.string(1, name)                                       // name
        switch self {
        case .float(let v): w.float(2, v); w.int(20, 1)         // f, type FLOAT
        case .int(let v): w.int(3, v); w.int(20, 2)             // i, type INT
        case .string(let v): w.string(4, v); w.int(20, 3)       // s, type STRING
        case .ints(let v): for x in v { w.int(8, x) }; w.int(20, 7)   // ints, type INTS
        }
    }
}

/// NodeProto: one operator of the default (ai.onnx) domain.
public struct ONNXNode {
    public var opType: String
    public var name: String
    /// Value names; "" marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [(String, ONNXAttribute)]

    func encode(_ w: inout ProtoWriter) {
        for i in inputs { w.string(1, i) }      // input
        for o in outputs { w.string(2, o) }     // output
        w.string(3, name)                       // name
        w.string(4, opType)                     // op_type
        for (n, a) in attributes { w.message(5) { a.encode(name: n, &$0) } }   // attribute
    }
}

/// ValueInfoProto of a tensor with a fixed shape.
public struct ONNXValueInfo {
    public var name: String
    public var elementType: ONNXDataType
    public var shape: [Int]
    public var docString: String

    func encode(_ w: inout ProtoWriter) {
        w.string(1, name)                                       // name
        w.message(2) { type in                                  // type: TypeProto
            type.message(1) { tensor in                         // tensor_type: TypeProto.Tensor
                tensor.int(1, elementType.rawValue)             // elem_type
                tensor.message(2) { shape in                    // shape: TensorShapeProto
                    for d in self.shape { shape.message(1) { $0.int(1, d) } }   // dim { dim_value }
                }
            }
        }
        if !docString.isEmpty { w.string(3, docString) }        // doc_string
    }
}

/// GraphProto.
public struct ONNXGraph {
    public var name: String
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXTensor] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []
    public var docString: String = ""

    func encode(_ w: inout ProtoWriter) {
        for n in nodes { w.message(1) { n.encode(&$0) } }           // node
        w.string(2, name)                                           // name
        for t in initializers { w.message(5) { t.encode(&$0) } }    // initializer
        if !docString.isEmpty { w.string(10, docString) }           // doc_string
        for v in inputs { w.message(11) { v.encode(&$0) } }         // input
        for v in outputs { w.message(12) { v.encode(&$0) } }        // output
    }
}

/// ModelProto with one opset import, the default domain's.
public struct ONNXModel {
    public var irVersion: Int
    public var opset: Int
    public var producerName = "mdflow"
    public var producerVersion = ""
    public var docString = ""
    public var metadata: [(String, String)] = []
    public var graph: ONNXGraph

    public init(irVersion: Int, opset: Int, graph: ONNXGraph) {
        self.irVersion = irVersion; self.opset = opset; self.graph = graph
    }

    /// The protobuf bytes of the model (an .onnx file).
    public func serialized() -> Data {
        var w = ProtoWriter()
        w.int(1, irVersion)                                         // ir_version
        w.string(2, producerName)                                   // producer_name
        if !producerVersion.isEmpty { w.string(3, producerVersion) }   // producer_version
        if !docString.isEmpty { w.string(6, docString) }            // doc_string
        w.message(7) { graph.encode(&$0) }                          // graph
        w.message(8) { $0.string(1, ""); $0.int(2, opset) }         // opset_import { domain, version }
        for (k, v) in metadata { w.message(14) { $0.string(1, k); $0.string(2, v) } }   // metadata_props
        return Data(w.bytes)
    }

    /// The IR version of the ONNX release that introduced `opset` (onnx 1.11–1.13: opsets 16–18,
    /// IR 8; 1.14–1.15: 19–20, IR 9; 1.16–1.17: 21–22, IR 10), so that older runtimes load it.
    public static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...18: return 8
        case 19...20: return 9
        default: return 10
        }
    }
}

/// Lays out a graph: initializers, deduplicated int64 and float constants, and nodes whose outputs
/// get fresh names. Nodes are appended in evaluation order, so the node list is topologically
/// sorted.
public struct ONNXGraphBuilder {
    public private(set) var graph: ONNXGraph
    private var used: Set<String> = []
    private var int64Constants: [[Int]: String] = [:]
    private var floatConstants: [String: String] = [:]

    public init(name: String) { graph = ONNXGraph(name: name) }

    /// A fresh value name from `base` ("base", then "base_1", "base_2", …).
    public mutating func fresh(_ base: String) -> String {
        var name = base, k = 0
        while used.contains(name) { k += 1; name = "\(base)_\(k)" }
        used.insert(name)
        return name
    }

    public mutating func input(_ name: String, shape: [Int], doc: String = "") -> String {
        precondition(!used.contains(name), "ONNX value \(name) defined twice")
        used.insert(name)
        graph.inputs.append(ONNXValueInfo(name: name, elementType: .float, shape: shape, docString: doc))
        return name
    }

    public mutating func output(_ name: String, shape: [Int], doc: String = "") {
        graph.outputs.append(ONNXValueInfo(name: name, elementType: .float, shape: shape, docString: doc))
    }

    /// An initializer under exactly `tensor.name`.
    @discardableResult
    public mutating func initializer(_ tensor: ONNXTensor) -> String {
        precondition(!used.contains(tensor.name), "ONNX value \(tensor.name) defined twice")
        used.insert(tensor.name)
        graph.initializers.append(tensor)
        return tensor.name
    }

    /// An int64 constant of shape [values.count] (one initializer per distinct list).
    public mutating func int64s(_ values: [Int]) -> String {
        if let name = int64Constants[values] { return name }
        let name = fresh("const_i64_\(int64Constants.count)")
        graph.initializers.append(ONNXTensor(name: name, dims: [values.count], int64s: values))
        int64Constants[values] = name
        return name
    }

    /// A small float constant of shape `dims` (one initializer per distinct shape and values).
    public mutating func floats(_ values: [Float], dims: [Int]) -> String {
        let key = "\(dims)" + values.map { String($0.bitPattern, radix: 16) }.joined(separator: ",")
        if let name = floatConstants[key] { return name }
        let name = fresh("const_f32_\(floatConstants.count)")
        graph.initializers.append(ONNXTensor(name: name, dims: dims, floats: values))
        floatConstants[key] = name
        return name
    }

    /// Appends a node with one output named from `name` (or exactly `output`); returns the output.
    @discardableResult
    public mutating func node(_ opType: String, _ inputs: [String], _ attributes: [(String, ONNXAttribute)] = [],
                              name: String, output: String? = nil) -> String {
        let out: String
        if let output {
            precondition(!used.contains(output), "ONNX value \(output) defined twice")
            used.insert(output); out = output
        } else {
            out = fresh(name)
        }
        graph.nodes.append(ONNXNode(opType: opType, name: out, inputs: inputs, outputs: [out], attributes: attributes))
        return out
    }
}
