#!/usr/bin/env bash
# The main job: installs what is missing, builds mdflow (release), and runs a full MDFlow cycle
# (unsupervised teacher → teacher-to-student distillation → student-to-teacher distillation) on the
# embedded synthetic dataset, which it generates into Datasets/ on first use. Ends with a table of
# the teacher's validation EPE after each stage. Extra arguments go to `mdflow train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product mdflow
exec .build/release/mdflow train Recipes/quickstart.yaml "$@"
