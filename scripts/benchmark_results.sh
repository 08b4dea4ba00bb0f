#!/usr/bin/env bash
# Runs the full benchmark suite (jaxcoh.bench) and rewrites benchmarks/RESULTS.md from it: the generated tables come from the new
# bench.json; the hand-written sections from "## Notes on this run" on are kept, to be updated by hand.
#
#   scripts/benchmark_results.sh [SPARC_DIR] [OUT_DIR]     (defaults: ../shared/data/sparc, results/bench)
#
# Run it on an otherwise idle machine: every ratio compares two timings taken in the same run, but a busy machine
# slows the two sides unequally.
set -euo pipefail
cd "$(dirname "$0")/.."

sparc="${1:-../shared/data/sparc}"
out="${2:-results/bench}"
command="jaxcoh bench --sparc $sparc --out $out"

$command
new="$(mktemp)"
trap 'rm -f "$new"' EXIT
python -m jaxcoh.bench.suite --markdown "$out/bench.json" --command "$command" > "$new"
if grep -q '^## Notes on this run' benchmarks/RESULTS.md 2>/dev/null; then
  printf '\n' >> "$new"
  sed -n '/^## Notes on this run/,$p' benchmarks/RESULTS.md >> "$new"
fi
mv "$new" benchmarks/RESULTS.md
trap - EXIT
echo "rewrote benchmarks/RESULTS.md from $out/bench.json; review the notes below the tables by hand"
