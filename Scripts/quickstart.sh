#!/usr/bin/env bash
# The main job. Installs what is missing, builds in release mode, then runs the engine
# benchmark (until the MDFlow training cycle lands, this is what mdflow can run end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product mdflow
.build/release/mdflow bench conv "$@"
