import Foundation
import Tensor
import ZIPFoundation

/// Reads PyTorch `torch.save` checkpoints without Python, in both on-disk formats:
/// - the zip format (PyTorch ≥ 1.6): `<name>/data.pkl` (the object pickle) and one raw
///   little-endian file `<name>/data/<key>` per storage;
/// - the legacy format (the published RAFT weights): five consecutive pieces, the magic-number
///   pickle, the protocol-version pickle, the system-info pickle, the object pickle, the pickled
///   list of storage keys, then for each storage in that order an int64 element count and its raw
///   bytes.
///
/// The object pickle is read by a restricted interpreter that executes nothing: it accepts only
/// plain values (None, bools, ints, floats, strings, bytes), tuples, lists, dicts and
/// OrderedDicts, and tensors (`torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` over a
/// typed storage). Any other global is refused with its name. The checkpoint must hold a
/// state_dict, or a dict with one under `state_dict` or `model`. Every storage type is converted
/// to Float32.
public enum TorchImport {
    /// The state dict of a `.pth` file, keys as stored (a `module.` prefix is kept; `Module.load`
    /// strips it).
    public static func read(_ url: URL) throws -> [String: Tensor] {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) }
        catch { throw WeightsError("\(url.path): cannot read (\(error.localizedDescription))") }
        if data.starts(with: zipMagic) { return try parseZip(url, name: url.path) }
        return try parseLegacy(data, name: url.path)
    }

    /// Parses checkpoint bytes; `name` labels errors.
    public static func parse(_ data: Data, name: String) throws -> [String: Tensor] {
        guard data.starts(with: zipMagic) else { return try parseLegacy(data, name: name) }
        // Through a file: ZIPFoundation's in-memory archive traps when a directory offset points
        // past the end of the data, where its file-backed archive reports an error.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-pth-\(UUID().uuidString).zip")
        do { try data.write(to: file) }
        catch { throw WeightsError("\(name): cannot write a temporary copy (\(error.localizedDescription))") }
        defer { try? FileManager.default.removeItem(at: file) }
        return try parseZip(file, name: name)
    }

    static let zipMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    /// Whether `data` starts like a torch.save file (zip, or a protocol-2 pickle).
    public static func looksLikeTorch(_ data: Data) -> Bool {
        data.starts(with: zipMagic) || data.starts(with: [0x80, 0x02])
    }

    // MARK: legacy

    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]   // 0x1950a86a20f9469cfc6c, little-endian

    static func parseLegacy(_ data: Data, name: String) throws -> [String: Tensor] {
        let bytes = [UInt8](data)
        var reader = PickleReader(bytes, name: name)
        guard data.starts(with: [0x80, 0x02]), case .int? = try? reader.load() else {
            throw WeightsError("\(name): not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save pickle)")
        }
        guard reader.lastLongBytes == legacyMagic else {
            throw WeightsError("\(name): not a PyTorch checkpoint (the legacy magic number is missing)")
        }
        let version = try reader.load()
        guard case .int(let protocolVersion) = version, protocolVersion == 1001 else {
            throw WeightsError("\(name): unsupported legacy torch.save protocol version \(version)")
        }
        let sysInfo = try reader.load()
        if case .dict(let d) = sysInfo, let le = d.value(for: "little_endian"), case .bool(false) = le {
            throw WeightsError("\(name): saved on a big-endian machine; not supported")
        }
        let root = try reader.load()
        let keysValue = try reader.load()
        guard case .list(let keyList) = keysValue else { throw WeightsError("\(name): the storage-key list is missing") }
        var offset = reader.position
        var storages: [String: StorageBytes] = [:]
        for item in keyList.items {
            guard case .string(let key) = item, let spec = reader.storages[key] else {
                throw WeightsError("\(name): storage key \(item) is listed but never referenced")
            }
            guard offset + 8 <= bytes.count else { throw WeightsError("\(name): truncated before storage \(key)") }
            var count: Int64 = 0
            withUnsafeMutableBytes(of: &count) { $0.copyBytes(from: bytes[offset..<offset + 8]) }
            count = Int64(littleEndian: count)
            offset += 8
            // count comes from the file: checked against the bytes left before it is multiplied.
            guard count >= 0, Int(count) == spec.count || spec.count < 0,
                  count <= (bytes.count - offset) / spec.dtype.size else {
                throw WeightsError("\(name): storage \(key) (\(count) × \(spec.dtype.name)) is truncated or does not match its declared size \(spec.count)")
            }
            storages[key] = StorageBytes(dtype: spec.dtype, bytes: bytes, start: offset, count: Int(count))
            offset += Int(count) * spec.dtype.size
        }
        return try stateDict(root, storages: storages, name: name)
    }

    // MARK: zip

    static func parseZip(_ url: URL, name: String) throws -> [String: Tensor] {
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) }
        catch { throw WeightsError("\(name): not a readable zip archive (\(error))") }
        var entries: [String: Entry] = [:]
        for e in archive { entries[e.path] = e }
        guard let pkl = entries.keys.filter({ $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }).sorted().first else {
            throw WeightsError("\(name): zip archive without data.pkl; not a torch.save checkpoint")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        func extract(_ path: String) throws -> [UInt8] {
            guard let e = entries[path] else { throw WeightsError("\(name): archive entry \(path) is missing") }
            var out = [UInt8]()
            out.reserveCapacity(Int(min(e.uncompressedSize, 1 << 26)))  // the size field is only a hint
            do { _ = try archive.extract(e, skipCRC32: true) { out.append(contentsOf: $0) } }
            catch { throw WeightsError("\(name): cannot extract \(path) (\(error))") }
            return out
        }
        if entries[prefix + "byteorder"] != nil {
            let order = String(decoding: try extract(prefix + "byteorder"), as: UTF8.self)
            if order.trimmingCharacters(in: .whitespacesAndNewlines) != "little" {
                throw WeightsError("\(name): byte order '\(order)' is not supported")
            }
        }
        var reader = PickleReader(try extract(pkl), name: name)
        let root = try reader.load()
        var storages: [String: StorageBytes] = [:]
        for (key, spec) in reader.storages {
            let bytes = try extract(prefix + "data/" + key)
            let count = bytes.count / spec.dtype.size
            guard spec.count < 0 || count >= spec.count else {
                throw WeightsError("\(name): storage \(key) holds \(count) elements, \(spec.count) declared")
            }
            storages[key] = StorageBytes(dtype: spec.dtype, bytes: bytes, start: 0, count: count)
        }
        return try stateDict(root, storages: storages, name: name)
    }

    // MARK: result

    static func stateDict(_ root: PickleValue, storages: [String: StorageBytes], name: String) throws -> [String: Tensor] {
        guard case .dict(var dict) = root else { throw WeightsError("\(name): the checkpoint holds \(root.kind), not a state dict") }
        for wrapper in ["state_dict", "model"] {
            if let inner = dict.value(for: wrapper), case .dict(let d) = inner { dict = d; break }
        }
        var out: [String: Tensor] = [:]
        for (k, v) in dict.items {
            guard case .string(let key) = k else { throw WeightsError("\(name): state dict key \(k) is not a string") }
            guard case .tensor(let ref) = v else { throw WeightsError("\(name): entry '\(key)' is \(v.kind), not a tensor") }
            guard let storage = storages[ref.storageKey] else {
                throw WeightsError("\(name): entry '\(key)' refers to storage \(ref.storageKey), which the file does not hold")
            }
            out[key] = try storage.tensor(ref, key: key, name: name)
        }
        return out
    }
}

/// Reads `.safetensors` or `.pth` (zip or legacy torch.save), chosen by the file's first bytes.
public enum WeightsFile {
    public static func read(_ url: URL) throws -> [String: Tensor] {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) }
        catch { throw WeightsError("\(url.path): cannot read (\(error.localizedDescription))") }
        if TorchImport.looksLikeTorch(data) { return try TorchImport.read(url) }
        return try SafeTensors.parse(data, name: url.path).tensors
    }
}

// MARK: - storages

/// A storage element type, by its `torch.<Name>Storage` class.
struct TorchDType {
    let name: String
    let size: Int
    static func from(_ global: String) -> TorchDType? {
        let table: [String: Int] = ["FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
                                    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
                                    "ByteStorage": 1, "BoolStorage": 1]
        guard global.hasPrefix("torch.") else { return nil }
        let n = String(global.dropFirst(6))
        return table[n].map { TorchDType(name: n, size: $0) }
    }
}

/// A storage declared by a persistent id: its type and element count (−1 if unknown).
struct StorageSpec { let dtype: TorchDType; let count: Int }

/// A tensor view as `_rebuild_tensor_v2` describes it (element offset, sizes, strides).
final class TensorRef {
    let storageKey: String, offset: Int, size: [Int], stride: [Int]
    init(storageKey: String, offset: Int, size: [Int], stride: [Int]) {
        self.storageKey = storageKey; self.offset = offset; self.size = size; self.stride = stride
    }
}

/// Raw bytes of one storage, converted element by element to Float32 on demand.
struct StorageBytes {
    let dtype: TorchDType
    let bytes: [UInt8]
    let start: Int
    let count: Int

    func tensor(_ ref: TensorRef, key: String, name: String) throws -> Tensor {
        func outside() -> WeightsError {
            WeightsError("\(name): entry '\(key)' (shape \(describe(ref.size)), stride \(describe(ref.stride)), offset \(ref.offset)) lies outside its storage of \(count) elements")
        }
        guard ref.size.allSatisfy({ $0 >= 0 }), ref.offset >= 0, ref.stride.allSatisfy({ $0 >= 0 }) else { throw outside() }
        // Element count and largest element index the view touches, in arithmetic that cannot
        // overflow: every factor is checked against the storage's size first.
        var n = 1
        for s in ref.size {
            let (product, overflow) = n.multipliedReportingOverflow(by: s)
            // A view with more elements than its storage (overlapping or broadcast strides) is
            // refused: no state dict needs one, and it would let a tiny file claim a huge tensor.
            guard !overflow, product <= max(count, 1) else {
                throw WeightsError("\(name): entry '\(key)' (shape \(describe(ref.size))) has more elements than its storage of \(count)")
            }
            n = product
        }
        if n == 0 { return Tensor(uninitialized: ref.size) }
        var last = ref.offset
        for (s, st) in zip(ref.size, ref.stride) {
            guard st <= count, last < count else { throw outside() }
            last += (s - 1) * st
        }
        guard last < count else { throw outside() }
        let t = Tensor(uninitialized: ref.size)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + start
            let out = t.data
            let rank = ref.size.count
            var index = [Int](repeating: 0, count: rank)
            var src = ref.offset
            for i in 0..<n {
                out[i] = element(base, src)
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1; src += ref.stride[d]
                    if index[d] < ref.size[d] { break }
                    src -= ref.stride[d] * ref.size[d]; index[d] = 0; d -= 1
                }
            }
        }
        return t
    }

    @inline(__always) private func element(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        switch dtype.size {
        case 4 where dtype.name == "FloatStorage": return Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        case 4: return Float(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
        case 8 where dtype.name == "DoubleStorage": return Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
        case 8: return Float(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
        case 2:
            let h = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            switch dtype.name {
            case "HalfStorage": return Float(Float16(bitPattern: h))
            case "BFloat16Storage": return Float(bitPattern: UInt32(h) << 16)
            default: return Float(Int16(bitPattern: h))
            }
        default:
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            return dtype.name == "CharStorage" ? Float(Int8(bitPattern: b)) : Float(b)
        }
    }
}

// MARK: - restricted pickle

final class PickleList { var items: [PickleValue] = [] }
final class PickleDict {
    var items: [(PickleValue, PickleValue)] = []
    func value(for key: String) -> PickleValue? {
        for (k, v) in items { if case .string(let s) = k, s == key { return v } }
        return nil
    }
}

indirect enum PickleValue: CustomStringConvertible {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list(PickleList), dict(PickleDict)
    case global(String)
    case storage(String)
    case tensor(TensorRef)
    case mark

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let g): return "the global \(g)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        case .mark: return "a mark"
        }
    }

    var description: String {
        switch self {
        case .int(let i): return String(i)
        case .string(let s): return "'\(s)'"
        case .bool(let b): return b ? "True" : "False"
        case .float(let f): return String(f)
        case .tuple(let t): return "(" + t.map(\.description).joined(separator: ", ") + ")"
        default: return kind
        }
    }
}

/// A pickle interpreter for the opcodes torch.save emits (protocols 1-5), restricted to data:
/// the only globals it accepts are OrderedDict, the torch storage classes, the tensor and
/// parameter rebuild functions and `_codecs.encode`; nothing is ever called or imported.
struct PickleReader {
    let bytes: [UInt8]
    let name: String
    var position = 0
    /// Storages declared by persistent ids, by key.
    var storages: [String: StorageSpec] = [:]
    /// The raw bytes of the last LONG1/LONG4 read (the legacy magic number).
    var lastLongBytes: [UInt8] = []

    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "_codecs.encode",
    ]

    init(_ bytes: [UInt8], name: String) { self.bytes = bytes; self.name = name }

    func fail(_ message: String) -> WeightsError { WeightsError("\(name): \(message) (pickle byte \(position))") }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw fail("truncated pickle") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else { throw fail("truncated pickle") }
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func uint(_ n: Int) throws -> Int {
        var v = 0
        for (i, b) in try take(n).enumerated() { v |= Int(b) << (8 * i) }
        return v
    }

    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated text opcode") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    static func littleEndianInt(_ b: ArraySlice<UInt8>) -> Int {
        if b.isEmpty { return 0 }
        var v: Int = 0
        for (i, x) in b.prefix(8).enumerated() { v |= Int(x) << (8 * i) }
        if b.count < 8, let last = b.last, last & 0x80 != 0 { v |= -1 << (8 * b.count) }
        return v
    }

    /// Reads one pickle up to its STOP and returns the object.
    mutating func load() throws -> PickleValue {
        var stack: [PickleValue] = []
        var memo: [Int: PickleValue] = [:]
        func pop() throws -> PickleValue {
            guard let v = stack.popLast() else { throw fail("stack underflow") }
            return v
        }
        func popMark() throws -> [PickleValue] {
            guard let i = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else { throw fail("missing MARK") }
            let items = Array(stack[(i + 1)...])
            stack.removeSubrange(i...)
            return items
        }
        func top() throws -> PickleValue {
            guard let v = stack.last else { throw fail("stack underflow") }
            return v
        }
        func global(_ module: String, _ qualname: String) throws -> PickleValue {
            let g = module + "." + qualname
            if Self.allowedGlobals.contains(g) || TorchDType.from(g) != nil { return .global(g) }
            throw fail("refuses global '\(g)': only tensors, containers and plain values are read")
        }
        func setItems(_ target: PickleValue, _ kv: [PickleValue]) throws {
            guard case .dict(let d) = target, kv.count % 2 == 0 else { throw fail("SETITEM(S) on \(target.kind)") }
            for i in stride(from: 0, to: kv.count, by: 2) {
                if case .string(let s) = kv[i], let j = d.items.firstIndex(where: { if case .string(let t) = $0.0 { return t == s }; return false }) {
                    d.items[j].1 = kv[i + 1]
                } else {
                    d.items.append((kv[i], kv[i + 1]))
                }
            }
        }
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try take(8)                                  // FRAME
            case 0x2E: return try pop()                                 // STOP
            case 0x28: stack.append(.mark)                              // MARK
            case 0x29: stack.append(.tuple([]))                         // EMPTY_TUPLE
            case 0x5D: stack.append(.list(PickleList()))                // EMPTY_LIST
            case 0x7D: stack.append(.dict(PickleDict()))                // EMPTY_DICT
            case 0x4E: stack.append(.none)                              // NONE
            case 0x88: stack.append(.bool(true))                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                       // NEWFALSE
            case 0x4B: stack.append(.int(try uint(1)))                  // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x8A:                                                  // LONG1
                let n = Int(try byte())
                let b = try take(n)
                lastLongBytes = Array(b)
                stack.append(.int(Self.littleEndianInt(b)))
            case 0x8B:                                                  // LONG4
                let b = try take(try uint(4))
                lastLongBytes = Array(b)
                stack.append(.int(Self.littleEndianInt(b)))
            case 0x49:                                                  // INT (text)
                let s = try line()
                if s == "01" { stack.append(.bool(true)) } else if s == "00" { stack.append(.bool(false)) }
                else { guard let v = Int(s) else { throw fail("bad INT '\(s)'") }; stack.append(.int(v)) }
            case 0x4C:                                                  // LONG (text)
                let s = try line()
                guard let v = Int(s.hasSuffix("L") ? String(s.dropLast()) : s) else { throw fail("bad LONG '\(s)'") }
                stack.append(.int(v))
            case 0x47:                                                  // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try take(8) { v = v << 8 | UInt64(b) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x46:                                                  // FLOAT (text)
                let s = try line()
                guard let v = Double(s) else { throw fail("bad FLOAT '\(s)'") }
                stack.append(.float(v))
            case 0x58: stack.append(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))   // BINUNICODE
            case 0x8C: stack.append(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))  // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(String(decoding: try take(try uint(8)), as: UTF8.self)))   // BINUNICODE8
            case 0x54: stack.append(.string(String(try take(try uint(4)).map { Character(Unicode.Scalar($0)) })))  // BINSTRING
            case 0x55: stack.append(.string(String(try take(Int(try byte())).map { Character(Unicode.Scalar($0)) })))  // SHORT_BINSTRING
            case 0x56: stack.append(.string(try line()))                // UNICODE (raw-unicode-escape; ASCII keys)
            case 0x53:                                                  // STRING (quoted text)
                var s = try line()
                if s.count >= 2, let f = s.first, f == "'" || f == "\"" { s = String(s.dropFirst().dropLast()) }
                stack.append(.string(s))
            case 0x42: stack.append(.bytes(Array(try take(try uint(4)))))       // BINBYTES
            case 0x43: stack.append(.bytes(Array(try take(Int(try byte())))))   // SHORT_BINBYTES
            case 0x8E: stack.append(.bytes(Array(try take(try uint(8)))))       // BINBYTES8
            case 0x71: memo[try uint(1)] = try top()                    // BINPUT
            case 0x72: memo[try uint(4)] = try top()                    // LONG_BINPUT
            case 0x70: guard let i = Int(try line()) else { throw fail("bad PUT") }; memo[i] = try top()   // PUT
            case 0x94: memo[memo.count] = try top()                     // MEMOIZE
            case 0x68, 0x6A, 0x67:                                      // BINGET, LONG_BINGET, GET
                let i = op == 0x68 ? try uint(1) : op == 0x6A ? try uint(4) : (Int(try line()) ?? -1)
                guard let v = memo[i] else { throw fail("memo entry \(i) is missing") }
                stack.append(v)
            case 0x63:                                                  // GLOBAL
                let module = try line(), qualname = try line()
                stack.append(try global(module, qualname))
            case 0x93:                                                  // STACK_GLOBAL
                let q = try pop(), m = try pop()
                guard case .string(let qualname) = q, case .string(let module) = m else { throw fail("STACK_GLOBAL needs two strings") }
                stack.append(try global(module, qualname))
            case 0x74: stack.append(.tuple(try popMark()))              // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))   // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))   // TUPLE3
            case 0x6C: let l = PickleList(); l.items = try popMark(); stack.append(.list(l))   // LIST
            case 0x61:                                                  // APPEND
                let v = try pop()
                guard case .list(let l) = try top() else { throw fail("APPEND to \(try top().kind)") }
                l.items.append(v)
            case 0x65:                                                  // APPENDS
                let vs = try popMark()
                guard case .list(let l) = try top() else { throw fail("APPENDS to \(try top().kind)") }
                l.items += vs
            case 0x64: let d = PickleDict(); try setItems(.dict(d), try popMark()); stack.append(.dict(d))   // DICT
            case 0x73: let v = try pop(), k = try pop(); try setItems(try top(), [k, v])   // SETITEM
            case 0x75: let kv = try popMark(); try setItems(try top(), kv)   // SETITEMS
            case 0x8F: stack.append(.list(PickleList()))                // EMPTY_SET (read as a list)
            case 0x90:                                                  // ADDITEMS
                let vs = try popMark()
                guard case .list(let l) = try top() else { throw fail("ADDITEMS to \(try top().kind)") }
                l.items += vs
            case 0x91: let l = PickleList(); l.items = try popMark(); stack.append(.list(l))   // FROZENSET
            case 0x30: _ = try pop()                                    // POP
            case 0x31: _ = try popMark()                                // POP_MARK
            case 0x32: stack.append(try top())                          // DUP
            case 0x51:                                                  // BINPERSID
                stack.append(try persistent(try pop()))
            case 0x50:                                                  // PERSID (text id)
                stack.append(try persistent(.tuple([.string(try line())])))
            case 0x52, 0x81:                                            // REDUCE, NEWOBJ
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args))
            case 0x62:                                                  // BUILD: state on a dict or tensor is ignored
                let state = try pop()
                let target = try top()
                switch target {
                case .dict, .tensor: break
                default: throw fail("BUILD on \(target.kind) with \(state.kind)")
                }
            default:
                throw fail(String(format: "refuses pickle opcode 0x%02x", op))
            }
        }
    }

    /// A persistent id: ('storage', storage type, key, location, numel[, view metadata]).
    mutating func persistent(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple(let t) = pid, t.count >= 5, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2] else { throw fail("unsupported persistent id \(pid)") }
        guard let dtype = TorchDType.from(type) else { throw fail("unsupported storage type \(type)") }
        var count = -1
        if case .int(let n) = t[4] { count = n }
        if t.count >= 6, case .tuple(let view) = t[5], view.count == 3 {
            throw fail("storage views (legacy view metadata \(t[5])) are not supported")
        }
        if let old = storages[key], old.count != count { throw fail("storage \(key) declared with two sizes") }
        storages[key] = StorageSpec(dtype: dtype, count: count)
        return .storage(key)
    }

    func ints(_ v: PickleValue) throws -> [Int] {
        guard case .tuple(let t) = v else { throw fail("expected a tuple of ints, got \(v.kind)") }
        return try t.map { guard case .int(let i) = $0 else { throw fail("expected an int, got \($0.kind)") }; return i }
    }

    /// Applies one of the allowed callables to plain arguments.
    func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let g) = callable else { throw fail("refuses to call \(callable.kind)") }
        guard case .tuple(let a) = args else { throw fail("\(g) called with \(args.kind)") }
        switch g {
        case "collections.OrderedDict":
            let d = PickleDict()
            if let first = a.first, case .list(let l) = first {
                for item in l.items {
                    guard case .tuple(let kv) = item, kv.count == 2 else { throw fail("OrderedDict item \(item.kind)") }
                    d.items.append((kv[0], kv[1]))
                }
            }
            return .dict(d)
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard a.count >= 4, case .storage(let key) = a[0], case .int(let offset) = a[1] else {
                throw fail("\(g) with unexpected arguments \(args)")
            }
            let size = try ints(a[2]), stride = try ints(a[3])
            guard size.count == stride.count else { throw fail("\(g): size \(size) and stride \(stride) differ in rank") }
            return .tensor(TensorRef(storageKey: key, offset: offset, size: size, stride: stride))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let first = a.first, case .tensor = first else { throw fail("\(g) without a tensor") }
            return first
        case "_codecs.encode":
            guard let first = a.first, case .string(let s) = first else { throw fail("_codecs.encode without a string") }
            return .bytes(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
        default:
            throw fail("refuses to call \(g)")
        }
    }
}
