import Foundation
import Testing
import FlowData
import Training

@Test func partialConfigurationsDecodeOverTheirDefaults() throws {
    let decoded = try ConfigDecoding.decode(AugmentationConfig.self, from: #"{"pair": {"crop": [64, 96], "scale": {"probability": 0.3}}, "spatial": {}, "photometric": {"hue": 0.1}}"#, file: "aug.json")
    #expect(decoded.pair.crop == [64, 96] && decoded.pair.hflip == 0.5 && decoded.pair.swap == 0.5)
    var scale = ScaleJitterConfig()
    scale.probability = 0.3
    #expect(decoded.pair.scale == scale)
    #expect(decoded.spatial == .sintel)
    #expect(decoded.photometric?.hue == 0.1 && decoded.photometric?.brightness == 0.5 && decoded.photometric?.gamma == [0.7, 1.5])
    #expect(decoded.eraser == nil)
    let noGamma = try ConfigDecoding.decode(PhotometricConfig.self, from: "gamma: null", file: "p.yaml")
    #expect(noGamma.gamma == nil && noGamma.noiseStd == PhotometricConfig().noiseStd)
    let layered = try ConfigDecoding.decode(LayeredConfig.self, from: "maxShift: 0.05", file: "l.yaml")
    var expected = LayeredConfig()
    expected.maxShift = 0.05
    #expect(layered == expected)
}

@Test func configurationDecodingNamesUnknownKeysAndBadValues() throws {
    do {
        _ = try ConfigDecoding.decode(AugmentationConfig.self, from: "pair: {scale: {probabilty: 0.3}}", file: "aug.yaml")
        Issue.record("a misspelt key was accepted")
    } catch let e as RecipeError {
        #expect(e.file == "aug.yaml" && e.path == "pair.scale.probabilty")
    }
    do {
        _ = try ConfigDecoding.decode(VideoOptions.self, from: "step: two", file: "v.yaml")
        Issue.record("a string step was accepted")
    } catch let e as RecipeError {
        #expect(e.path == "step")
    }
}

@Test func nestedRecipeListsTakeTheirElementDefaults() throws {
    let text = """
    stages:
      - kind: supervised
        train:
          kind: layered
          include:
            - {kind: frames, root: a, flows: b, include: [{kind: layered, maxPairs: 7}]}
      - kind: distill-to-student
    """
    let r = try Recipe.parse(text, file: "r.yaml", checkPaths: false)
    let train = try #require(r.stages[0].train)
    #expect(train.kind == .layered && train.root == DatasetSpec().root)
    #expect(train.include.count == 1 && train.include[0].kind == .frames && train.include[0].split == .train)
    #expect(train.include[0].include.first?.maxPairs == 7 && train.include[0].include.first?.layered == DatasetSpec().layered)
    // Each stage starts from the defaults of its kind.
    #expect(r.stages[0].loss.scaleWeights == StageSpec.defaults(kind: .supervised).loss.scaleWeights)
    #expect(r.stages[1].optimizer == StageSpec.defaults(kind: .distillToStudent).optimizer)
}
