import Tensor

/// max|a − b| / max|b|: a tensor against Double reference values (b.count elements of a).
public func worstRelative(_ a: Tensor, _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<b.count { num = max(num, abs(Double(a.data[i]) - b[i])); den = max(den, abs(b[i])) }
    return num / max(den, 1e-12)
}

/// How many elements of a and b differ in their bits.
public func differingElements(_ a: Tensor, _ b: Tensor) -> Int {
    zip(a.toArray(), b.toArray()).filter { $0.bitPattern != $1.bitPattern }.count
}
