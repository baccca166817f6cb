#!/usr/bin/env bash
# Checks that training does not leak memory: runs one unsupervised stage of the smoke recipe for
# STEPS steps (release build, 64×128 crops) and compares the resident set size metrics.jsonl
# records after step 1,000 with the one after the last step. Exits 0 only if they differ by
# less than 5%.
#   bash Scripts/leak_check.sh [--steps N] [--mdflow PATH]       (defaults: 10000, .build/release/mdflow)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=10000 mdflow=.build/release/mdflow
while [ $# -gt 0 ]; do
    case $1 in
        --steps) steps=$2; shift 2 ;;
        --mdflow) mdflow=$2; shift 2 ;;
        -h|--help) sed -n 2,6p "$0"; exit 0 ;;
        *) echo "leak_check: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$steps" -gt 1000 ] || { echo "leak_check: --steps must be over 1000" >&2; exit 2; }
[ -x "$mdflow" ] || { echo "leak_check: $mdflow not found (swift build -c release --product mdflow)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
"$mdflow" train Recipes/smoke.yaml --run-dir "$work/run" --set stages.0.steps="$steps" \
    --set stages.1.steps=1 --set stages.2.steps=1 --set checkpoint.every=1000 --set logEvery=1000 \
    >"$work/log" 2>&1 || { tail -5 "$work/log" >&2; exit 1; }
# One "step rss heap tensors" line per training line of stage 1 (metrics.jsonl keys are sorted).
grep '"type":"train"' "$work/run/metrics.jsonl" | grep '"stage":1,' \
    | sed -E 's/.*"heap_mb":([0-9.eE+-]+).*"rss_mb":([0-9.eE+-]+).*"step":([0-9]+).*"tensors_mb":([0-9.eE+-]+).*/\3 \2 \1 \4/' >"$work/rss"
awk -v steps="$steps" -v seconds=$(( $(date +%s) - start )) '
    { rss[$1] = $2; heap[$1] = $3; tensors[$1] = $4; if ($2 > peak) peak = $2 }
    END {
        early = rss[1000]; late = rss[steps]
        if (early == "" || late == "") { print "leak_check: no rss_mb for step 1000 or " steps > "/dev/stderr"; exit 1 }
        change = (late - early) / early * 100
        printf "resident set after step 1000: %.1f MB, after step %d: %.1f MB (%+.2f%%; stage peak %.1f MB; %d s)\n", early, steps, late, change, peak, seconds
        printf "malloc heap in use: %.2f -> %.2f MB; tensors: %.2f -> %.2f MB\n", heap[1000], heap[steps], tensors[1000], tensors[steps]
        for (s = 1000; s <= steps; s += 1000) printf "  step %5d: resident %.1f MB, heap %.2f MB\n", s, rss[s], heap[s]
        exit (change < 5 && change > -5) ? 0 : 1
    }' "$work/rss"
