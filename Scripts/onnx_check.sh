#!/usr/bin/env bash
# Checks `mdflow export` numerically: onnxruntime runs the exported FastFlowNet on synthetic pairs
# (and on real ones with --pairs DIR) and its flow is compared with `mdflow infer`'s on the same
# frames (Scripts/onnx_check.py; docs/export.md has the tolerances and the last result).
#   bash Scripts/onnx_check.sh [--pairs DIR]… [--opset N] [--weights W] [--max-tolerance PX] [--mean-tolerance PX]
# e.g. bash Scripts/onnx_check.sh --pairs ../shared/real/middlebury
# Uses the release build (MDFLOW overrides; `swift build -c release` makes it). onnxruntime, onnx,
# numpy and pillow are installed with pip into a private folder on first use (ONNX_CHECK_SITE,
# default .build/onnx-check/site); work files go to ONNX_CHECK_WORK (default a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
mdflow=${MDFLOW:-.build/release/mdflow}
site=${ONNX_CHECK_SITE:-.build/onnx-check/site}
[ -x "$mdflow" ] || { echo "onnx_check: $mdflow not found; run swift build -c release" >&2; exit 2; }

if ! PYTHONPATH="$site" python3 -c "import onnxruntime, onnx, numpy, PIL" 2>/dev/null; then
    echo "onnx_check: installing onnxruntime, onnx, numpy and pillow into $site"
    python3 -m pip install --quiet --target "$site" onnxruntime onnx numpy pillow
fi

work=${ONNX_CHECK_WORK:-}
if [ -z "$work" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
PYTHONPATH="$site" python3 Scripts/onnx_check.py --mdflow "$mdflow" --work "$work" "$@"
