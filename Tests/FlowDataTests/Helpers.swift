import Foundation
@testable import FlowData
import Tensor

/// A fresh temporary directory, removed when the returned object dies.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "mdflow-flowdata-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ parts: String...) -> String { ([path] + parts).joined(separator: "/") }

    func mkdir(_ parts: String...) -> String {
        let p = ([path] + parts).joined(separator: "/")
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}

/// A deterministic smooth-ish test image.
func testImage(width: Int, height: Int, seed: UInt64 = 1, quantized: Bool = true) -> RGBImage {
    var rng = RandomGenerator(seed: seed)
    let n = width * height
    var p = [Float](repeating: 0, count: 3 * n)
    let phase = (0..<3).map { _ in Float(rng.uniform(0, 6)) }
    for c in 0..<3 {
        for y in 0..<height {
            for x in 0..<width {
                var v = 0.5 + 0.4 * sinf(Float(x) * 0.3 + Float(y) * 0.2 + phase[c])
                if quantized { v = (v * 255).rounded() / 255 }
                p[c * n + y * width + x] = v
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: p)
}

func writeBytes(_ path: String, _ bytes: [UInt8]) {
    let written = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    precondition(written, "cannot write the test file \(path)")
}

func fileBytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

/// The first `count` bytes of `path`, written back.
func truncate(_ path: String, to count: Int) {
    let bytes = fileBytes(path)
    writeBytes(path, Array(bytes.prefix(count)))
}

/// The message a throwing call produced, or nil.
func errorMessage(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

/// Mean |frame1 − bilinear(frame2, x + flow)| over pixels where `mask` is true and the target is
/// inside the image.
func warpError(_ i1: RGBImage, _ i2: RGBImage, flow: [Float], mask: (Int) -> Bool) -> Double {
    let w = i1.width, h = i1.height, n = w * h
    var total = 0.0, count = 0
    for y in 0..<h {
        for x in 0..<w {
            let i = y * w + x
            guard mask(i) else { continue }
            let sx = Float(x) + flow[i], sy = Float(y) + flow[n + i]
            guard sx >= 0, sy >= 0, sx <= Float(w - 1), sy <= Float(h - 1) else { continue }
            let x0 = min(Int(sx), w - 2), y0 = min(Int(sy), h - 2)
            let ax = sx - Float(x0), ay = sy - Float(y0)
            for c in 0..<3 {
                let p = c * n
                let v = (1 - ay) * ((1 - ax) * i2.pixels[p + y0 * w + x0] + ax * i2.pixels[p + y0 * w + x0 + 1])
                    + ay * ((1 - ax) * i2.pixels[p + (y0 + 1) * w + x0] + ax * i2.pixels[p + (y0 + 1) * w + x0 + 1])
                total += Double(abs(v - i1.pixels[p + i]))
            }
            count += 3
        }
    }
    return count > 0 ? total / Double(count) : .infinity
}
