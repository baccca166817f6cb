/// Stops with a message that names the op and what was wrong. `precondition` prints nothing in
/// optimized builds (swift-pitfalls §5), so every shape check goes through here.
public func shapeFailure(_ op: String, _ message: String) -> Never {
    fatalError("\(op): \(message)")
}

/// Checks `condition`, stopping with "op: message" when it is false.
@inline(__always)
public func require(_ condition: Bool, _ op: @autoclosure () -> String, _ message: @autoclosure () -> String) {
    if !condition { shapeFailure(op(), message()) }
}

/// Formats a shape the way PyTorch prints it: [2, 3, 4].
public func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
