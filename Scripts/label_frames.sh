#!/usr/bin/env bash
# Turns the real videos of Datasets/unlabeled-video (Scripts/fetch_unlabeled_video.sh) into a
# labelled training set for the teacher: frames extracted by ffmpeg into Datasets/real-frames/NAME/,
# and for each consecutive pair the student's flow (RAFT-small, Models/raft-small.safetensors),
# kept only where its forward and backward flows agree, in Datasets/real-flows/NAME/. A supervised
# stage on `{kind: frames, root: Datasets/real-frames, flows: Datasets/real-flows}` then distils
# the student into the teacher on real frames (Recipes/models.yaml). About 20 minutes on 2 cores.
#   bash Scripts/label_frames.sh [--mdflow PATH]
# Each video is labelled once; delete its folders to redo it.
set -euo pipefail
cd "$(dirname "$0")/.."
mdflow=.build/release/mdflow
[ "${1:-}" = "--mdflow" ] && mdflow=$2
[ -x "$mdflow" ] || { echo "label_frames: $mdflow missing (swift build -c release)" >&2; exit 1; }
videos=Datasets/unlabeled-video
[ -d "$videos" ] || { echo "label_frames: $videos missing (bash Scripts/fetch_unlabeled_video.sh)" >&2; exit 1; }
# name  keep-every-nth-frame  ffmpeg scale (width:height, or - to keep)
# Every nth frame makes motions larger on slow footage; small videos are scaled up to the 256×320
# crops the teacher trains on, big ones down to keep labelling time in check.
table="vtest.avi 4 -
Megamind.avi 2 -
bigbuckbunny.mp4 1 640:360
bikes.mp4 2 -
carphone_pristine.mp4 1 352:288
tree.avi 1 384:288"
while read -r file nth scale; do
    name=${file%.*}
    frames=Datasets/real-frames/$name flows=Datasets/real-flows/$name
    [ -f "$videos/$file" ] || { echo "label_frames: $videos/$file missing, skipped" >&2; continue; }
    if [ ! -f "$frames/.done" ]; then
        rm -rf "$frames"; mkdir -p "$frames"
        filter="select='not(mod(n\,$nth))'"
        [ "$scale" != "-" ] && filter="$filter,scale=$scale:flags=area"
        ffmpeg -v error -nostdin -i "$videos/$file" -vf "$filter" -vsync vfr "$frames/%06d.png"
        touch "$frames/.done"
    fi
    if [ ! -f "$flows/.done" ]; then
        "$mdflow" infer "$frames" --net raft-small --reliable-only --out "$flows"
        touch "$flows/.done"
    fi
    echo "$name: $(ls "$frames" | wc -l) frames labelled in $flows"
done <<< "$table"
