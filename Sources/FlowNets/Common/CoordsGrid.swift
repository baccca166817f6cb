import Tensor

/// Pixel-coordinate grid: channel 0 holds x (column), channel 1 holds y (row), as RAFT's
/// `coords_grid`.  → (batch, 2, height, width)
public func coordsGrid(batch: Int, height: Int, width: Int) -> Tensor {
    let t = Tensor(uninitialized: [batch, 2, height, width])
    let hw = height * width, p = t.data
    for y in 0..<height {
        let row = p + y * width
        for x in 0..<width { row[x] = Float(x) }
        (row + hw).update(repeating: Float(y), count: width)
    }
    for b in 1..<max(batch, 1) { (p + b * 2 * hw).update(from: p, count: 2 * hw) }
    return t
}
