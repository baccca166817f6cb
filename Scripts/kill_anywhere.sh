#!/usr/bin/env bash
# Kills `mdflow train` with SIGKILL at random moments and checks that resuming loses nothing:
# runs a recipe once without interruption, then again while killing it KILLS times (resuming
# after each kill, whatever the moment: before the first checkpoint, inside a checkpoint write,
# between stages), and compares every weight and optimizer file of the two runs byte for byte.
# Prints one line per kill (delay, the step the log had reached, whether a checkpoint write was
# cut) and exits 0 only if the final files are identical.
#   bash Scripts/kill_anywhere.sh [--kills N] [--seed S] [--mdflow PATH] [--recipe FILE] [--set k=v ...]
# Defaults: 20 kills, seed 1, .build/release/mdflow, Recipes/smoke.yaml lengthened to 40 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=20 seed=1 mdflow=.build/release/mdflow recipe=Recipes/smoke.yaml
sets=(--set stages.0.steps=20 --set stages.1.steps=10 --set stages.2.steps=10)
custom_sets=()
while [ $# -gt 0 ]; do
    case $1 in
        --kills) kills=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --mdflow) mdflow=$2; shift 2 ;;
        --recipe) recipe=$2; shift 2 ;;
        --set) custom_sets+=(--set "$2"); shift 2 ;;
        -h|--help) sed -n 2,9p "$0"; exit 0 ;;
        *) echo "kill_anywhere: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#custom_sets[@]} -gt 0 ] && sets=("${custom_sets[@]}")
[ -x "$mdflow" ] || { echo "kill_anywhere: $mdflow not found (swift build -c release --product mdflow)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
RANDOM=$seed

start=$(date +%s%N)
"$mdflow" train "$recipe" --run-dir "$work/reference" "${sets[@]}" >"$work/reference.log" 2>&1 \
    || { echo "kill_anywhere: the uninterrupted run failed:" >&2; tail -5 "$work/reference.log" >&2; exit 1; }
total_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "uninterrupted run: ${total_ms} ms"

# One kill in five lands at a uniform moment of the first 400 ms (start-up, dataset, resume);
# the others wait for the launch's first logged step, then a uniform part of two steps' time, so
# that they fall anywhere in training, validation and checkpoint writes. A launch that finishes
# before its kill ends that attempt; the next one starts the run again from an empty directory.
step_ms=$(( total_ms / $(grep -c ' step [0-9]*/' "$work/reference.log" | awk '{print ($1 > 0 ? $1 : 1)}') ))
step_pattern='stage [0-9]+/[0-9]+ [^ ]+( r[0-9]+)? step [0-9]+/[0-9]+'
logged_steps() { local n; n=$(grep -Ec "$step_pattern" "$1" 2>/dev/null) || true; echo "${n:-0}"; }
run=$work/killed
done_kills=0 launch=0 attempts=1
while true; do
    launch=$((launch + 1))
    log=$work/launch-$launch.log
    if [ -f "$run/recipe.yaml" ]; then args=(train --resume "$run"); else args=(train "$recipe" --run-dir "$run" "${sets[@]}"); fi
    if [ $done_kills -ge "$kills" ]; then
        "$mdflow" "${args[@]}" >"$log" 2>&1 || { echo "kill_anywhere: the last resume failed:" >&2; tail -5 "$log" >&2; exit 1; }
        break
    fi
    "$mdflow" "${args[@]}" >"$log" 2>&1 &
    pid=$!
    if [ $((RANDOM % 5)) = 0 ]; then
        delay=$((RANDOM % 400))
    else
        before=$(logged_steps "$log")
        for _ in $(seq 3000); do
            [ "$(logged_steps "$log")" -gt "$before" ] && break
            kill -0 $pid 2>/dev/null || break
            sleep 0.02
        done
        delay=$((RANDOM % (2 * step_ms + 1)))
    fi
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    if kill -KILL $pid 2>/dev/null; then
        wait $pid 2>/dev/null || true
        done_kills=$((done_kills + 1))
        reached=$(grep -Eo "$step_pattern" "$log" | tail -1 || true)
        cut=$(find "$run" "$run/stages" -maxdepth 1 -name '.*tmp-*' 2>/dev/null | head -1 || true)
        printf 'kill %2d (+%4d ms): %s%s\n' $done_kills $delay "${reached:-before the first step of this launch}" \
            "${cut:+ (inside a checkpoint write: $(basename "$cut"))}"
    else
        wait $pid || { echo "kill_anywhere: launch $launch failed:" >&2; tail -5 "$log" >&2; exit 1; }
        echo "launch $launch finished before its kill; starting the run again"
        compare_dir=$work/finished-$attempts
        mv "$run" "$compare_dir"
        attempts=$((attempts + 1))
    fi
done

# Every weight and optimizer file of the reference (stage ends and kept step folders) against DIR.
compare() {
    local dir=$1 bad=0 file rel
    while IFS= read -r file; do
        rel=${file#"$work/reference/"}
        compared=$((compared + 1))
        cmp -s "$file" "$dir/$rel" || { echo "DIFFERS: $(basename "$dir")/$rel"; bad=1; }
    done < <(find "$work/reference" -name '*.safetensors' | sort)
    [ "$(cat "$work/reference/latest")" = "$(cat "$dir/latest")" ] || { echo "DIFFERS: $(basename "$dir")/latest"; bad=1; }
    return $bad
}
status=0 compared=0
for dir in "$work"/finished-* "$run"; do
    [ -d "$dir" ] || continue
    compare "$dir" || status=1
done
if [ $status = 0 ]; then
    echo "identical: $compared weight and optimizer files after $done_kills kills and $launch launches"
else
    echo "kill_anywhere: the interrupted run differs from the uninterrupted one" >&2
fi
exit $status
