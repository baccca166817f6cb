#!/usr/bin/env python3
"""Compares the ONNX export of FastFlowNet, run by onnxruntime, with `mdflow infer`.

For every pair of frames: `mdflow export` at the pair's size (once per size), the ONNX checker
(full check, with shape inference) on the model, onnxruntime on the pair's RGB values in [0, 255],
`mdflow infer` on the same files (.flo), then the absolute difference of u and v over all pixels.
Pairs: synthetic scenes that `mdflow generate-dataset` writes at 448x1024 (the default export
size: no resize in the graph but flow2's) and at 150x230 (both resizes), and with --pairs DIR every
sub-folder of DIR (or DIR itself) holding frame1.png and frame2.png (e.g. Middlebury's layout).
8-bit frames only: the graph takes the values ImageFile divides by 255.

Prints per pair and overall the largest and mean absolute difference in pixels; exits 1 when any
pair's largest difference is over --max-tolerance or its mean over --mean-tolerance. The defaults,
2e-3 px and 5e-5 px, are about four times the largest seen (5.5e-4 px and 2.1e-5 px, docs/export.md),
which is the size of mdflow's own spread between its convolution paths (Winograd F(4x4, 3x3)
against direct: 4.2e-4 px and 9e-6 px on the same pairs); a convention that differs moves the
flow by 1e-2 px and more.

Usage (Scripts/onnx_check.sh installs the packages and calls this):
  python3 Scripts/onnx_check.py --mdflow .build/release/mdflow --work /tmp/onnx-check [--pairs DIR]

Requires numpy, pillow, onnx and onnxruntime.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

import onnx
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flo import read_flo  # noqa: E402


def read_rgb(path):
    """An 8-bit image as (1, 3, H, W) float32 in [0, 255] (what ImageFile reads, times 255)."""
    image = Image.open(path)
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        raise ValueError(f"{path}: mode {image.mode}; the check takes 8-bit frames")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    return rgb.transpose(2, 0, 1)[None].copy()


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}")
    return result.stdout


def synthetic_pairs(mdflow, work, size, count, seed):
    out = os.path.join(work, f"synthetic-{size}")
    if not os.path.isdir(out):
        run([mdflow, "generate-dataset", "--out", out, "--pairs", str(count), "--size", size,
             "--seed", str(seed), "--validation-every", "0"])
    return [(f"synthetic {size} #{i}", os.path.join(out, "data", f"{i:05d}_img1.png"),
             os.path.join(out, "data", f"{i:05d}_img2.png")) for i in range(1, count + 1)]


def folder_pairs(root):
    found = []
    folders = [root] + sorted(os.path.join(root, d) for d in os.listdir(root))
    for d in folders:
        a, b = os.path.join(d, "frame1.png"), os.path.join(d, "frame2.png")
        if os.path.isfile(a) and os.path.isfile(b):
            found.append((os.path.relpath(d, os.path.dirname(root.rstrip("/"))), a, b))
    if not found:
        sys.exit(f"{root}: no frame1.png/frame2.png pairs in it or its sub-folders")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mdflow", required=True, help="the mdflow executable")
    ap.add_argument("--work", required=True, help="folder for exported models, frames and flows")
    ap.add_argument("--pairs", action="append", default=[], help="folder of real pairs (repeatable)")
    ap.add_argument("--weights", help="weights to export and infer with (default: the shipped teacher)")
    ap.add_argument("--opset", type=int, help="ONNX opset of the export (default: mdflow's)")
    ap.add_argument("--max-tolerance", type=float, default=2e-3, help="largest allowed |difference| of a pair, px")
    ap.add_argument("--mean-tolerance", type=float, default=5e-5, help="largest allowed mean |difference| of a pair, px")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    weights = ["--weights", args.weights] if args.weights else []

    pairs = synthetic_pairs(args.mdflow, args.work, "448x1024", 3, 1) + synthetic_pairs(args.mdflow, args.work, "150x230", 2, 2)
    for root in args.pairs:
        pairs += folder_pairs(root)

    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")
    sessions = {}
    worst, worst_mean, total, count = 0.0, 0.0, 0.0, 0
    for k, (name, frame1, frame2) in enumerate(pairs):
        a, b = read_rgb(frame1), read_rgb(frame2)
        if a.shape != b.shape:
            sys.exit(f"{frame2}: size differs from {frame1}")
        h, w = a.shape[2], a.shape[3]
        if (h, w) not in sessions:
            model = os.path.join(args.work, f"fastflownet-{h}x{w}.onnx")
            run([args.mdflow, "export", "--onnx", model, "--size", f"{h}x{w}"] + weights
                + (["--opset", str(args.opset)] if args.opset else []))
            onnx.checker.check_model(onnx.load(model), full_check=True)
            sessions[(h, w)] = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        flow_onnx = sessions[(h, w)].run(["flow"], {"image1": a, "image2": b})[0][0].transpose(1, 2, 0)
        flo = os.path.join(args.work, f"pair-{k}.flo")
        run([args.mdflow, "infer", frame1, frame2, "--out", flo, "--scale", "1"] + weights)
        flow_mdflow = read_flo(flo)
        if flow_mdflow.shape != flow_onnx.shape:
            sys.exit(f"{name}: mdflow flow {flow_mdflow.shape}, onnxruntime {flow_onnx.shape}")
        diff = np.abs(flow_onnx.astype(np.float64) - flow_mdflow)
        worst = max(worst, float(diff.max()))
        worst_mean = max(worst_mean, float(diff.mean()))
        total += float(diff.sum())
        count += diff.size
        print(f"{name} ({w}x{h}): max |flow| {np.abs(flow_mdflow).max():7.3f} px, "
              f"difference max {diff.max():.2e} px, mean {diff.mean():.2e} px")
    verdict = worst <= args.max_tolerance and worst_mean <= args.mean_tolerance
    print(f"{len(pairs)} pairs: difference max {worst:.2e} px (tolerance {args.max_tolerance:.0e}), "
          f"mean {total / count:.2e} px, largest mean of a pair {worst_mean:.2e} px "
          f"(tolerance {args.mean_tolerance:.0e}): {'pass' if verdict else 'FAIL'}")
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
