// Protocol Buffers' wire format, the part TensorBoard events and ONNX models need: every field is
// a key (field number << 3 | wire type) followed by a varint (wire type 0), a little-endian 64- or
// 32-bit value (types 1 and 5) or a varint length and that many bytes (type 2: strings, bytes and
// embedded messages). https://protobuf.dev/programming-guides/encoding/

/// Appends protobuf fields to a byte buffer. An embedded message is written by a writer of its
/// own and appended with its length (`message`).
struct ProtoWriter {
    var bytes: [UInt8] = []

    /// A base-128 varint, low group first.
    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wireType: UInt64) {
        precondition(field >= 1 && field < 1 << 29, "protobuf field number \(field) out of range")
        rawVarint(UInt64(field) << 3 | wireType)
    }

    mutating func varint(_ field: Int, _ v: UInt64) { key(field, 0); rawVarint(v) }

    /// An int32, int64 or enum field: a negative value as its 64-bit two's complement (10 bytes).
    mutating func int(_ field: Int, _ v: Int) { varint(field, UInt64(bitPattern: Int64(v))) }

    mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ v: [UInt8]) {
        key(field, 2)
        rawVarint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    /// A string field, UTF-8.
    mutating func string(_ field: Int, _ v: String) { bytes(field, Array(v.utf8)) }

    /// An embedded message field; `body` writes the message's own fields.
    mutating func message(_ field: Int, _ body: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }
}
