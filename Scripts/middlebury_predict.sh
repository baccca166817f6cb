#!/usr/bin/env bash
# Runs `mdflow infer` on every Middlebury pair of ROOT (<Seq>/frame1.png, frame2.png) and writes
# OUT/<Seq>.flo, for Scripts/flow_baselines.py --pred OUT to score.
#   bash Scripts/middlebury_predict.sh OUT [ROOT] [mdflow infer options…]
# e.g. bash Scripts/middlebury_predict.sh /tmp/teacher
#      bash Scripts/middlebury_predict.sh /tmp/rs ../shared/real/middlebury --net raft-small --weights raft-small.pth
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1; shift
root=${1:-../shared/real/middlebury}; [ $# -gt 0 ] && shift
mdflow=${MDFLOW:-.build/release/mdflow}
mkdir -p "$out"
for seq in Dimetrodon Grove2 Grove3 Hydrangea RubberWhale Urban2 Urban3 Venus; do
    "$mdflow" infer "$@" "$root/$seq/frame1.png" "$root/$seq/frame2.png" --out "$out/$seq.flo" >/dev/null
done
echo "wrote $out/<Seq>.flo for 8 pairs"
