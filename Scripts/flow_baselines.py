#!/usr/bin/env python3
"""Classical optical-flow baselines on the Middlebury training pairs.

Scores flows from frame1 to frame2 against the ground truth in
``ROOT/<Seq>/{frame1.png, frame2.png, flow.flo}`` and prints markdown tables.

Metrics, over the valid ground-truth pixels of each sequence (|u| or |v| >= 1e9
marks a pixel without ground truth):
  EPE      mean end-point error, mean of |w_pred - w_gt| in pixels
  >1px %   percentage of valid pixels with end-point error > 1 px
  >3px %   percentage of valid pixels with end-point error > 3 px
The "mean" row is the unweighted mean of the per-sequence values.
OpenCV methods are also timed: median of 3 runs per pair in milliseconds
(the mean of those medians over the sequences is shown), single-threaded
unless --threads is given.

Methods: zero, dis-medium, dis-fast, dis-ultrafast, farneback, plus any
``--pred DIR`` holding predicted ``DIR/<Seq>.flo`` files (named after DIR).

``--down K`` also scores, for the ground truth and each ``--pred``, the flow
area-averaged to 1/K of the size and bilinearly upsampled back (u, v kept in
full-resolution pixels): the error a net that predicts at 1/K resolution and
upsamples bilinearly (FastFlowNet: K = 4) cannot avoid.

Usage (from the project root):
  python3 Scripts/flow_baselines.py
  python3 Scripts/flow_baselines.py --methods zero,dis-medium --pred out/run1 --json baselines.json
  python3 Scripts/flow_baselines.py --root /data/middlebury --include-color --threads 2

Requires numpy and opencv-python-headless.
"""
import argparse
import json
import os
import statistics
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flo import read_flo  # noqa: E402

SEQUENCES = ["Dimetrodon", "Grove2", "Grove3", "Hydrangea",
             "RubberWhale", "Urban2", "Urban3", "Venus"]
INVALID = 1e9
TIMING_RUNS = 3


def dis_method(preset):
    dis = cv2.DISOpticalFlow_create(preset)
    return lambda f1, f2: dis.calc(f1, f2, None)


def farneback(f1, f2):
    # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
    return cv2.calcOpticalFlowFarneback(f1, f2, None, 0.5, 3, 15, 3, 5, 1.2, 0)


OPENCV_METHODS = {
    "dis-medium": lambda: dis_method(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
    "dis-fast": lambda: dis_method(cv2.DISOPTICAL_FLOW_PRESET_FAST),
    "dis-ultrafast": lambda: dis_method(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
    "farneback": lambda: farneback,
}
ALL_METHODS = ["zero"] + list(OPENCV_METHODS)


def score(pred, gt):
    """Return (EPE, % > 1 px, % > 3 px) over the valid pixels of gt."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth {gt.shape}")
    valid = (np.abs(gt[..., 0]) < INVALID) & (np.abs(gt[..., 1]) < INVALID)
    err = np.linalg.norm(pred.astype(np.float64) - gt, axis=-1)[valid]
    return float(err.mean()), 100.0 * float((err > 1).mean()), 100.0 * float((err > 3).mean())


def evaluate(name, sequences, flow_for):
    """flow_for(seq, gt, frames) -> (flow, ms or None); returns per-sequence and mean results."""
    per_seq = {}
    for seq, gt, frames in sequences:
        flow, ms = flow_for(seq, gt, frames)
        epe, gt1, gt3 = score(flow, gt)
        per_seq[seq] = {"epe": epe, "gt1px": gt1, "gt3px": gt3, "ms": ms}
        print(f"  {name:>14} {seq:<18} EPE {epe:7.3f}", file=sys.stderr)
    mean = {k: statistics.fmean(r[k] for r in per_seq.values())
            for k in ("epe", "gt1px", "gt3px")}
    times = [r["ms"] for r in per_seq.values() if r["ms"] is not None]
    mean["ms"] = statistics.fmean(times) if times else None
    return {"per_sequence": per_seq, "mean": mean}


def run_opencv(method):
    fn = OPENCV_METHODS[method]()

    def flow_for(seq, gt, frames):
        times, flow = [], None
        for _ in range(TIMING_RUNS):
            start = time.perf_counter()
            flow = fn(*frames)
            times.append(1000.0 * (time.perf_counter() - start))
        return flow, statistics.median(times)
    return flow_for


def down_up(flow, k):
    """Area-average (H, W, 2) flow to 1/k of its size, then upsample it bilinearly back."""
    h, w = flow.shape[:2]
    small = cv2.resize(flow, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def known(gt):
    """The ground truth with its unknown pixels set to zero (for resampling)."""
    out = gt.copy()
    out[(np.abs(gt) >= INVALID).any(axis=-1)] = 0
    return out


def run_pred(directory):
    def flow_for(seq, gt, frames):
        path = os.path.join(directory, f"{seq}.flo")
        if not os.path.isfile(path):
            sys.exit(f"missing prediction {path}")
        return read_flo(path), None
    return flow_for


def main():
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(project, "..", "shared", "real", "middlebury"),
                    help="directory with <Seq>/frame1.png, frame2.png, flow.flo")
    ap.add_argument("--methods", default=",".join(ALL_METHODS),
                    help=f"comma list from {','.join(ALL_METHODS)} (empty for none)")
    ap.add_argument("--pred", action="append", default=[], metavar="DIR",
                    help="score DIR/<Seq>.flo as a method named after DIR (repeatable)")
    ap.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1)")
    ap.add_argument("--include-color", action="store_true", help="also score RubberWhale_color")
    ap.add_argument("--down", type=int, default=0, metavar="K",
                    help="also score the ground truth and each --pred down-sampled by K and up-sampled back")
    args = ap.parse_args()

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {ALL_METHODS}")
    cv2.setNumThreads(args.threads)

    names = SEQUENCES + (["RubberWhale_color"] if args.include_color else [])
    sequences = []
    for seq in names:
        d = os.path.join(args.root, seq)
        frames = tuple(cv2.imread(os.path.join(d, f), cv2.IMREAD_GRAYSCALE)
                       for f in ("frame1.png", "frame2.png"))
        if any(f is None for f in frames):
            sys.exit(f"cannot read frames in {d}")
        sequences.append((seq, read_flo(os.path.join(d, "flow.flo")), frames))

    results = {}
    for m in methods:
        if m == "zero":
            results[m] = evaluate(m, sequences, lambda s, gt, fr: (np.zeros_like(gt), None))
        else:
            results[m] = evaluate(m, sequences, run_opencv(m))
    for d in args.pred:
        name = os.path.basename(os.path.normpath(d))
        results[name if name not in results else d] = evaluate(name, sequences, run_pred(d))
    if args.down > 1:
        k = args.down
        results[f"ground truth at 1/{k}"] = evaluate(f"gt/{k}", sequences, lambda s, gt, fr: (down_up(known(gt), k), None))
        for d in args.pred:
            name = os.path.basename(os.path.normpath(d))
            pred = run_pred(d)
            results[f"{name} at 1/{k}"] = evaluate(f"{name}/{k}", sequences,
                                                   lambda s, gt, fr, pred=pred: (down_up(pred(s, gt, fr)[0], k), None))

    fmt_ms = lambda ms: "-" if ms is None else f"{ms:.1f}"
    print(f"Middlebury training ({len(names)} sequences), OpenCV {cv2.__version__}, "
          f"{args.threads} thread(s); ms = median of {TIMING_RUNS} runs per pair\n")
    print("| method | EPE | >1px % | >3px % | ms/pair |\n|---|---:|---:|---:|---:|")
    for name, r in results.items():
        m = r["mean"]
        print(f"| {name} | {m['epe']:.3f} | {m['gt1px']:.2f} | {m['gt3px']:.2f} | {fmt_ms(m['ms'])} |")
    print("\nPer-sequence EPE:\n")
    print("| method | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r['per_sequence'][s]['epe']:.3f}" for s in names) + " |")

    if args.json:
        out = {"root": os.path.abspath(args.root), "opencv": cv2.__version__,
               "threads": args.threads, "timing_runs": TIMING_RUNS, "sequences": names,
               "methods": results}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
