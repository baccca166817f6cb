import Foundation
import Tensor

/// Errors reading or writing weight files; each names the file and the tensor or field.
public struct WeightsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
/// tensor name to {dtype, shape, data_offsets} (plus optional "__metadata__" strings), then raw
/// little-endian data. F32, F16 and BF16 read as Float32; writes are F32.
public enum SafeTensors {
    /// Reads every tensor of `url`. Also returns the metadata strings.
    public static func read(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let bytes: Data
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) }
        catch { throw WeightsError("\(url.path): cannot read (\(error.localizedDescription))") }
        return try parse(bytes, name: url.path)
    }

    /// Parses safetensors bytes; `name` labels errors.
    public static func parse(_ bytes: Data, name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw WeightsError("\(name): too short for a safetensors file (\(bytes.count) bytes)") }
        let headerLen = bytes.withUnsafeBytes { raw -> UInt64 in
            var v: UInt64 = 0
            memcpy(&v, raw.baseAddress!, 8)
            return UInt64(littleEndian: v)
        }
        guard headerLen <= UInt64(bytes.count - 8), headerLen < 100_000_000 else {
            throw WeightsError("\(name): header length \(headerLen) exceeds the file size \(bytes.count)")
        }
        let headerData = bytes.subdata(in: 8..<(8 + Int(headerLen)))
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw WeightsError("\(name): header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLen)
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                if let m = value as? [String: Any] { for (k, v) in m { metadata[k] = "\(v)" } }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw WeightsError("\(name): tensor '\(key)' has a malformed header entry") }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            default: throw WeightsError("\(name): tensor '\(key)' has dtype \(dtype); only F32, F16 and BF16 are read")
            }
            // Offsets first, then the shape against them: no product of numbers from the file is
            // formed before it is known to fit in the data.
            let dataSize = bytes.count - dataStart
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataSize else {
                throw WeightsError("\(name): tensor '\(key)' (\(dtype) \(describe(shape))) has data offsets \(offsets) that do not fit the file")
            }
            var n = 1
            for d in shape {
                let (product, overflow) = n.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow, product <= dataSize else {
                    throw WeightsError("\(name): tensor '\(key)' has an impossible shape \(describe(shape))")
                }
                n = product
            }
            guard offsets[1] - offsets[0] == n * width else {
                throw WeightsError("\(name): tensor '\(key)' (\(dtype) \(describe(shape))) has data offsets \(offsets) that do not fit the file")
            }
            let t = Tensor(uninitialized: shape)
            bytes.withUnsafeBytes { raw in
                let src = raw.baseAddress! + dataStart + offsets[0]
                switch dtype {
                case "F32":
                    memcpy(t.data, src, n * 4)
                case "F16":
                    for i in 0..<n {
                        var h: UInt16 = 0
                        memcpy(&h, src + 2 * i, 2)
                        t.data[i] = Float(Float16(bitPattern: UInt16(littleEndian: h)))
                    }
                default:
                    for i in 0..<n {
                        var h: UInt16 = 0
                        memcpy(&h, src + 2 * i, 2)
                        t.data[i] = Float(bitPattern: UInt32(UInt16(littleEndian: h)) << 16)
                    }
                }
            }
            tensors[key] = t
        }
        return (tensors, metadata)
    }

    /// Serializes `tensors` (F32, keys sorted) with optional metadata.
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> Data {
        let keys = tensors.keys.sorted()
        var offset = 0
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(m)}")
        }
        for k in keys {
            let t = tensors[k]!
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(k)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.count * 4)]}")
            offset += t.count * 4
        }
        var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = Data(capacity: 8 + header.count + offset)
        var len = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for k in keys {
            let t = tensors[k]!
            out.append(UnsafeBufferPointer(start: t.data, count: t.count))
        }
        return out
    }

    private static func jsonString(_ s: String) -> String {
        var r = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            default:
                if ch.value < 0x20 { r += String(format: "\\u%04x", ch.value) } else { r.unicodeScalars.append(ch) }
            }
        }
        return r + "\""
    }
}
