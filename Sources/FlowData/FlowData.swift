// FlowData: image and flow files, dataset adapters, the embedded synthetic dataset,
// augmentation, and the prefetching loader.
import Foundation

/// Why reading or writing a data file failed. The description names the file first, so a
/// message like "Datasets/x/00001_img1.png: truncated PNG (libpng: Read Error)" says everything.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

extension DataError: LocalizedError {
    public var errorDescription: String? { description }
}

/// Reads a whole file, turning every failure into a `DataError` with the system's reason.
func readFileBytes(_ path: String) throws -> [UInt8] {
    guard let fp = fopen(path, "rb") else {
        throw DataError(path: path, reason: "cannot open (\(String(cString: strerror(errno))))")
    }
    defer { fclose(fp) }
    var bytes: [UInt8] = []
    var info = stat()
    if fstat(fileno(fp), &info) == 0, info.st_size > 0 {
        bytes.reserveCapacity(Int(info.st_size) + 1)
    }
    var chunk = [UInt8](repeating: 0, count: 1 << 18)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, fp) }
        if n > 0 { chunk.withUnsafeBufferPointer { bytes.append(contentsOf: $0[0..<n]) } }
        if n < chunk.count {
            if ferror(fp) != 0 { throw DataError(path: path, reason: "read failed (\(String(cString: strerror(errno))))") }
            break
        }
    }
    return bytes
}

/// Writes `bytes` to `path` (replacing it), with the system's reason on failure.
func writeFileBytes(_ path: String, _ bytes: UnsafeRawBufferPointer) throws {
    guard let fp = fopen(path, "wb") else {
        throw DataError(path: path, reason: "cannot create (\(String(cString: strerror(errno))))")
    }
    let written = fwrite(bytes.baseAddress, 1, bytes.count, fp)
    let closed = fclose(fp)
    if written != bytes.count || closed != 0 {
        let reason = String(cString: strerror(errno))
        unlink(path)
        throw DataError(path: path, reason: "write failed (\(reason))")
    }
}

/// Whether a regular file (or a link to one) exists at `path`.
func fileExists(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
}

/// Whether a directory exists at `path`.
func directoryExists(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}

/// Joins path components with "/".
func joinPath(_ parts: String...) -> String {
    var result = ""
    for part in parts where !part.isEmpty {
        if result.isEmpty || result.hasSuffix("/") { result += part } else { result += "/" + part }
    }
    return result
}

/// The 64-bit FNV-1a hash of a string's UTF-8 bytes as 16 hex digits: a cheap, stable key
/// (recipe identity, cache folder names), not a checksum against tampering.
public func fnv1aHex(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return String(format: "%016llx", h)
}
