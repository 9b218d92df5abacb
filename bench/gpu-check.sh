#!/usr/bin/env bash
# vecx on a real GPU: one prepared check, sized for ~9 minutes on an NVIDIA H200.
#
#   bash bench/gpu-check.sh OUT            # run every step; everything lands in OUT
#   bash bench/gpu-check.sh --dry-run OUT  # print the plan (no CUDA needed; CI runs this)
#
# Each step runs under its own time limit (`timeout`), its output appended to one log,
# OUT/gpu-check.log; a step that fails or runs out of time is listed and the next one
# runs. OUT holds at most 8 files (the log, info.json, the bench's results.json and
# REPORT.md, the train suite in every mode as modes.json and MODES.md, summary.txt; the
# precision step, mixed precision on torch, jax and cupy, prints into the log),
# none near 16 MiB. The tests are those of the CUDA backends (`-k cuda`, the backend
# fixture restricted to them).
# The summary (each step's status and seconds) is printed last and kept in summary.txt.
# Run from a checkout with PYTHONPATH=. (the device machine has the frameworks).
set -uo pipefail

dry=0
if [[ "${1:-}" == "--dry-run" ]]; then
    dry=1
    shift
fi
if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: bash bench/gpu-check.sh [--dry-run] OUT" >&2
    exit 2
fi
out="$1"
cd "$(dirname "$0")/.."
export PYTHONPATH="${PWD}${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
cuda="torch:cuda,jax:cuda,cupy:cuda"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# name | seconds | command (run with bash -c, in the checkout)
steps=(
    "info|20|$py -m vecx info --json > '$out/info.json'"
    "cuda-tests|130|VECX_BACKENDS=$cuda $py -m pytest -q -rfE -p no:cacheprovider -k cuda tests/"
    "bench|140|$py -m vecx bench --backends numpy,$cuda --out '$scratch/bench' --quiet --no-plots; cp '$scratch/bench/results.json' '$out/results.json'; $py -m vecx report '$out/results.json' -o '$out/REPORT.md'"
    "modes|100|$py -m vecx bench --quick --backends $cuda --suites train --modes eager,jit,fused --out '$scratch/modes' --quiet --no-plots; cp '$scratch/modes/results.json' '$out/modes.json'; $py -m vecx report '$out/modes.json' -o '$out/MODES.md'"
    "precision|50|$py bench/precision.py --device cuda --presets digits-mlp --runs 1"
    "overhead|40|$py bench/overhead.py --seconds 1"
    "trainer-overhead|30|$py bench/trainer_overhead.py --backends $cuda --presets linreg,airfoil-mb10 --repeat 11"
    "measure-vs-events|30|$py bench/measure_vs_events.py"
)

if [[ $dry -eq 1 ]]; then
    total=0
    echo "gpu-check plan (output in $out):"
    for step in "${steps[@]}"; do
        IFS='|' read -r name limit command <<< "$step"
        total=$((total + limit))
        printf '  %-18s at most %4s s: %s\n' "$name" "$limit" "$command"
    done
    echo "  in all at most ${total} s"
    exit 0
fi

mkdir -p "$out"
log="$out/gpu-check.log"
: > "$log"
summary=()
failed=0
for step in "${steps[@]}"; do
    IFS='|' read -r name limit command <<< "$step"
    echo "===== $name (limit ${limit} s): $command" >> "$log"
    start=$SECONDS
    timeout --kill-after=10 "$limit" bash -c "$command" >> "$log" 2>&1
    status=$?
    took=$((SECONDS - start))
    case $status in
        0) word="ok" ;;
        124|137) word="TIMED OUT"; failed=$((failed + 1)) ;;
        *) word="FAILED (exit $status)"; failed=$((failed + 1)) ;;
    esac
    echo "===== $name: $word after ${took} s" >> "$log"
    summary+=("$(printf '%-18s %-20s %4s s' "$name" "$word" "$took")")
done
{
    echo "gpu-check: $((${#steps[@]} - failed)) of ${#steps[@]} steps ok"
    printf '  %s\n' "${summary[@]}"
    grep -E '^(FAILED|ERROR) ' "$log" | head -40 | sed 's/^/  /'
} | tee "$out/summary.txt"
[[ $failed -eq 0 ]]
