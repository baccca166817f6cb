import Testing
import Tensor
import NN
@testable import FlowNets
import TestSupport

@Test func debugRAFTSmallStages() throws {
    guard let weights = try Fixtures.net("raft_small.weights"), let io = try Fixtures.net("raft_small.io") else { return }
    let net = RAFT(small: true)
    try net.load(weights, source: "x")
        let x1 = io["image1"]! * (2 / 255) - 1
        let f = net.fnet(x1); print("fnet", f.isFinite, f)
        let c = net.cnet(x1); print("cnet", c.isFinite, c)
        let p = CorrelationPyramid(f, f, levels: 4, radius: 3)
        print("pyr", p.levels.map { $0.isFinite })
        let co = coordsGrid(batch: 1, height: 8, width: 12)
        let l = p.lookup(co); print("lookup", l.isFinite, l)
        let out = net(io["image1"]!, io["image2"]!, iters: 1)
        print("out", out.lowResolution, out.flow)
        Tape.clear()
    let out2 = Tape.noGrad { net(io["image1"]!, io["image2"]!, iters: 1) }
        print("out2", out2.lowResolution, out2.flow)
}
