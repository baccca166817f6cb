#!/usr/bin/env bash
# The main job: installs what is missing, builds mdflow (release), and runs a full MDFlow cycle
# (unsupervised teacher → teacher-to-student distillation → student-to-teacher distillation) on the
# embedded synthetic dataset, which it generates into Datasets/ on first use. Ends with a table of
# the teacher's validation EPE after each stage. Extra arguments go to `mdflow train`. The run goes
# to Checkpoints/quickstart (Recipes/quickstart-control.yaml starts from its stage 1); run again, it
# continues an interrupted run or prints the finished run's table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product mdflow
run=(--run-dir Checkpoints/quickstart)
for a in "$@"; do case $a in --run-dir|--run-dir=*|--resume|--resume=*) run=() ;; esac; done
if [ ${#run[@]} -gt 0 ] && [ -f Checkpoints/quickstart/recipe.yaml ]; then
    exec .build/release/mdflow train --resume Checkpoints/quickstart "$@"
fi
exec .build/release/mdflow train Recipes/quickstart.yaml "${run[@]}" "$@"
