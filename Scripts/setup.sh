#!/usr/bin/env bash
# Installs the system libraries mdflow links against, and ffmpeg (which the video dataset kind
# runs to decode video files), and Open MPI (data-parallel training with mpirun), when any is
# missing (Debian/Ubuntu).
set -euo pipefail
need=()
for pkg in libopenblas-dev libpng-dev libjpeg-dev pkg-config zlib1g-dev ffmpeg libopenmpi-dev openmpi-bin; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "mdflow setup: installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "mdflow setup: the Swift toolchain (6.0 or newer) is not on PATH; install it from swift.org first" >&2
    exit 1
fi
