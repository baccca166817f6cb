#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite on the debug build and, without
# arguments, once more on the release build (MDFLOW_RELEASE_TESTS=0 skips that) with
# tensor memory poisoned (MDFLOW_POISON, see Sources/Tensor/Storage.swift): the optimizer may end a
# buffer's life at its last use in Swift, which only a release build shows, and a kernel still
# reading it then sees NaN; new buffers are NaN too, so a kernel that leaves part of its output
# (or of a gradient it was told to assign) unwritten fails the parity tests. Arguments go to the
# debug run (e.g. --filter Conv2d). A full run ends with a short fuzz pass (Scripts/fuzz.sh, 15 s
# a target, a fixed seed; MDFLOW_FUZZ=0 skips it), skipped with a message when the Swift
# toolchain has no libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
if [ $# -eq 0 ] && [ "${MDFLOW_RELEASE_TESTS:-1}" = 1 ]; then
    swift build -c release --build-tests -Xswiftc -enable-testing   # the tests' @testable imports
    MDFLOW_POISON=nan swift test -c release --skip-build -Xswiftc -enable-testing
fi
if [ $# -eq 0 ] && [ "${MDFLOW_FUZZ:-1}" = 1 ]; then
    status=0
    bash Scripts/fuzz.sh all --seconds 15 -- -seed=1 || status=$?
    if [ "$status" -eq 77 ]; then
        echo "test: fuzz pass skipped: this Swift toolchain cannot build libFuzzer targets"
    elif [ "$status" -ne 0 ]; then
        exit "$status"
    fi
fi
