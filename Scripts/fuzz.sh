#!/usr/bin/env bash
# Fuzzes mdflow's parsers of untrusted bytes with libFuzzer (from the Swift toolchain), one target
# at a time; see docs/reliability.md. The targets are the folders of Fuzz/corpus (their seeds).
#
#   bash Scripts/fuzz.sh --list                      the target names
#   bash Scripts/fuzz.sh TARGET|all [--seconds N]    build, then fuzz each target N seconds (default 60)
#   bash Scripts/fuzz.sh TARGET --runs N [--seconds N]  ... for N inputs (or until the time is up)
#   bash Scripts/fuzz.sh --check                     exit 0 if the toolchain has libFuzzer, 77 if not
#
# The build is separate from the package's own (scratch path MDFLOW_FUZZ_BUILD, default
# .build-fuzz; `--sanitize fuzzer --sanitize address`, release). Fuzz/regressions/TARGET (inputs
# that once crashed) joins the seeds. Inputs that reach new code are
# kept in $MDFLOW_FUZZ_BUILD/corpus/TARGET; a crashing input is written to
# $MDFLOW_FUZZ_BUILD/crashes/ and the script exits 1. Leak reports are off (the Swift runtime's
# caches look like leaks). Extra arguments after `--` go to libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MDFLOW_FUZZ_BUILD:-.build-fuzz}"
targets=$(cd Fuzz/corpus && ls -d */ | tr -d /)

usage() { sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Whether swiftc can build and link a libFuzzer target (Linux toolchains from swift.org can).
check() {
    local dir
    dir=$(mktemp -d)
    cat >"$dir/probe.swift" <<'SWIFT'
@_cdecl("LLVMFuzzerTestOneInput")
public func probe(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { 0 }
SWIFT
    local ok=0
    (cd "$dir" && swiftc -parse-as-library -sanitize=fuzzer,address probe.swift -o probe >log 2>&1 \
        && ./probe -runs=10 >>log 2>&1) || ok=$?
    if [ "$ok" -ne 0 ]; then
        echo "fuzz: libFuzzer is not usable with this Swift toolchain ($(swiftc --version 2>&1 | head -1)):" >&2
        tail -3 "$dir/log" >&2
    fi
    rm -rf "$dir"
    return "$ok"
}

seconds=""; runs=""; names=(); extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --list) echo "$targets"; exit 0 ;;
        --check) check || exit 77; echo "fuzz: libFuzzer works"; exit 0 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -*) usage ;;
        all) names+=($targets); shift ;;
        *) grep -qx "$1" <<<"$targets" || { echo "fuzz: unknown target '$1'; one of: all" $targets >&2; exit 2; }
           names+=("$1"); shift ;;
    esac
done
[ ${#names[@]} -gt 0 ] || usage
check || exit 77

echo "fuzz: building mdflow-fuzz with libFuzzer and AddressSanitizer in $build"
mkdir -p "$build"
# swiftc keeps only the last -sanitize= option, so the Swift modules get both sanitizers in one.
if ! swift build -c release --product mdflow-fuzz --scratch-path "$build" --sanitize fuzzer --sanitize address \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DMDFLOW_LIBFUZZER >"$build/build.log" 2>&1; then
    grep -E "error:" "$build/build.log" | head -20 >&2 || tail -20 "$build/build.log" >&2
    echo "fuzz: the build failed; log $build/build.log" >&2
    exit 1
fi
binary="$build/release/mdflow-fuzz"

failed=(); total=0
for name in "${names[@]}"; do
    mkdir -p "$build/corpus/$name" "$build/crashes"
    log="$build/$name.log"
    limit=()
    [ -n "$runs" ] && limit+=(-runs="$runs")
    [ -n "$seconds" ] && limit+=(-max_total_time="$seconds")
    [ ${#limit[@]} -gt 0 ] || limit=(-max_total_time=60)
    status=0
    # libFuzzer reports crashes itself; Swift's backtracer would only slow every crash down.
    MDFLOW_FUZZ_TARGET="$name" SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" "$binary" "${limit[@]}" -timeout=20 \
        -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$build/crashes/$name-" ${extra[@]+"${extra[@]}"} \
        "$build/corpus/$name" "Fuzz/corpus/$name" $(ls -d "Fuzz/regressions/$name" 2>/dev/null) >"$log" 2>&1 || status=$?
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ -z "$executions" ]; then  # a crash skips the final stats; the last status line has the count
        executions=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    total=$((total + ${executions:-0}))
    corpus=$(ls "$build/corpus/$name" | wc -l)
    if [ "$status" -eq 0 ]; then
        echo "fuzz: $name: ${executions:-0} executions, no crash (corpus $corpus inputs)"
    else
        failed+=("$name")
        echo "fuzz: $name: CRASH after ${executions:-?} executions (exit $status); log $log" >&2
        grep -E "ERROR:|Fatal error|SUMMARY|Test unit written" "$log" | head -6 >&2 || true
    fi
done
echo "fuzz: ${#names[@]} target(s), $total executions, ${#failed[@]} crashed"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashed: ${failed[*]}; reproduce with: swift run mdflow-fuzz --replay TARGET $build/crashes/TARGET-crash-…" >&2
    exit 1
fi
