import Testing
@testable import Tensor

@Suite struct DerivedWeightsTests {
    @Test func aFormIsRebuiltExactlyWhenItsWeightsChange() {
        let cache = DerivedWeights()
        cache.minimumCount = 1
        let w = Storage(count: 10)
        for i in 0..<10 { w.pointer[i] = Float(i) }
        var builds = 0
        func form() -> Storage {
            cache.form("sum", of: w.pointer, count: 10) {
                builds += 1
                let s = Storage(count: 1)
                s.pointer[0] = (0..<10).reduce(0) { $0 + w.pointer[$1] }
                return s
            }
        }
        #expect(form().pointer[0] == 45 && builds == 1)
        #expect(form().pointer[0] == 45 && builds == 1)
        w.pointer[7] = 8          // one weight changes: rebuilt
        #expect(form().pointer[0] == 46 && builds == 2)
        w.pointer[7] = 8          // written again with the same value: reused
        #expect(form().pointer[0] == 46 && builds == 2)
        // Another kind over the same weights is its own entry.
        let other = cache.form("other", of: w.pointer, count: 10) { builds += 1; return Storage(count: 1) }
        #expect(other.count == 1 && builds == 3)
    }

    @Test func beyondItsCapacityTheLeastRecentlyUsedFormGoes() {
        let cache = DerivedWeights()
        cache.minimumCount = 1
        cache.capacityBytes = 3 * 4 * 8   // three entries of 4 weights + 4 derived floats
        let ws = (0..<4).map { k -> Storage in
            let s = Storage(count: 4)
            for i in 0..<4 { s.pointer[i] = Float(10 * k + i) }
            return s
        }
        var builds = 0
        func form(_ k: Int) { _ = cache.form("f", of: ws[k].pointer, count: 4) { builds += 1; return Storage(count: 4) } }
        form(0); form(1); form(2)
        form(0)                       // hit; 1 is now the oldest
        form(3)                       // evicts 1
        #expect(builds == 4)
        form(0); form(2); form(3)     // all hits
        #expect(builds == 4)
        form(1)                       // rebuilt
        #expect(builds == 5)
    }

    /// A convolution whose weights are probed in place (as finite differences do) sees every probe.
    @Test func convolutionsSeeWeightsWrittenInPlace() {
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randn([1, 32, 6, 7], using: &rng), w = Tensor.randn([32, 32, 3, 3], using: &rng)
        let g = ConvGeometry(kernel: 3, stride: 1, padding: 1)
        let before = x.conv2d(w, nil, g).toArray()
        w.data[5] += 1
        let after = x.conv2d(w, nil, g).toArray()
        let fresh = x.conv2d(w.clone(), nil, g).toArray()
        #expect(after == fresh)
        #expect(after != before)
    }
}
