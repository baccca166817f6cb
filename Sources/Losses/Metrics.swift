import Foundation
import Tensor

/// Flow accuracy: end-point error (EPE) over all valid, non-occluded and occluded pixels;
/// n-pixel outlier rates; KITTI Fl (EPE > 3 px and > 5 % of |gt|).
///
/// Averaging, stated because codebases differ: `epe` (and `epeNoc`, `epeOcc`) is the mean over
/// images of each image's per-pixel mean (MDFlow's and ARFlow's convention); `epePixel` pools all
/// valid pixels of the split (RAFT's Sintel convention). Outlier rates and Fl-all pool pixels
/// (KITTI's convention).
public struct FlowMetrics: Sendable {
    public private(set) var images = 0
    var epeImageSum = 0.0, nocImageSum = 0.0, occImageSum = 0.0
    var nocImages = 0, occImages = 0
    var pixels = 0.0, epePixelSum = 0.0
    var over1 = 0.0, over3 = 0.0, over5 = 0.0, fl = 0.0

    public init() {}

    /// Adds a batch.  pred, gt: (B, 2, H, W); valid: (B, 1, H, W) or nil (all valid);
    /// occluded: (B, 1, H, W) with 1 where occluded, or nil (no noc/occ split).
    public mutating func add(pred: Tensor, gt: Tensor, valid: Tensor? = nil, occluded: Tensor? = nil) {
        require(pred.shape == gt.shape && pred.rank == 4 && pred.shape[1] == 2, "FlowMetrics",
                "prediction \(describe(pred.shape)) and ground truth \(describe(gt.shape)) must both be (B, 2, H, W)")
        let b = pred.shape[0], hw = pred.shape[2] * pred.shape[3]
        for n in 0..<b {
            let pu = pred.data + n * 2 * hw, pv = pu + hw, gu = gt.data + n * 2 * hw, gv = gu + hw
            var s = 0.0, c = 0.0, sn = 0.0, cn = 0.0, so = 0.0, co = 0.0
            for i in 0..<hw {
                if let valid, valid.data[n * hw + i] < 0.5 { continue }
                let du = Double(pu[i] - gu[i]), dv = Double(pv[i] - gv[i])
                let e = (du * du + dv * dv).squareRoot()
                let mag = (Double(gu[i]) * Double(gu[i]) + Double(gv[i]) * Double(gv[i])).squareRoot()
                s += e; c += 1
                if e > 1 { over1 += 1 }
                if e > 3 { over3 += 1 }
                if e > 5 { over5 += 1 }
                if e > 3 && e > 0.05 * mag { fl += 1 }
                if let occluded {
                    if occluded.data[n * hw + i] > 0.5 { so += e; co += 1 } else { sn += e; cn += 1 }
                }
            }
            guard c > 0 else { continue }
            images += 1
            epeImageSum += s / c
            pixels += c; epePixelSum += s
            if cn > 0 { nocImageSum += sn / cn; nocImages += 1 }
            if co > 0 { occImageSum += so / co; occImages += 1 }
        }
    }

    /// The sums behind every number, in a fixed order: metrics measured on parts of a dataset
    /// add up, element-wise, to the metrics of the whole (data-parallel validation).
    public var sums: [Double] {
        [Double(images), epeImageSum, nocImageSum, occImageSum, Double(nocImages), Double(occImages),
         pixels, epePixelSum, over1, over3, over5, fl]
    }

    /// Metrics from `sums` (12 values, as `sums` orders them).
    public init(sums v: [Double]) {
        require(v.count == 12, "FlowMetrics", "12 sums expected, got \(v.count)")
        images = Int(v[0]); epeImageSum = v[1]; nocImageSum = v[2]; occImageSum = v[3]
        nocImages = Int(v[4]); occImages = Int(v[5]); pixels = v[6]; epePixelSum = v[7]
        over1 = v[8]; over3 = v[9]; over5 = v[10]; fl = v[11]
    }

    public var epe: Double { images > 0 ? epeImageSum / Double(images) : .nan }
    public var epePixel: Double { pixels > 0 ? epePixelSum / pixels : .nan }
    public var epeNoc: Double? { nocImages > 0 ? nocImageSum / Double(nocImages) : nil }
    public var epeOcc: Double? { occImages > 0 ? occImageSum / Double(occImages) : nil }
    /// Percent of valid pixels with EPE above 1, 3, 5 px.
    public var outliers: (px1: Double, px3: Double, px5: Double) {
        pixels > 0 ? (100 * over1 / pixels, 100 * over3 / pixels, 100 * over5 / pixels) : (.nan, .nan, .nan)
    }
    /// KITTI Fl-all in percent.
    public var flAll: Double { pixels > 0 ? 100 * fl / pixels : .nan }

    /// The numbers as a flat dictionary (JSON-friendly); `epe` is EPE over all valid pixels.
    public var summary: [String: Double] {
        var d: [String: Double] = ["epe": epe, "epe_pixel_pooled": epePixel, "px1": outliers.px1, "px3": outliers.px3,
                                   "px5": outliers.px5, "fl_all": flAll, "images": Double(images)]
        if let v = epeNoc { d["epe_noc"] = v }
        if let v = epeOcc { d["epe_occ"] = v }
        return d
    }
}
