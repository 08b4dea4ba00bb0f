#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: installs JAX's CUDA wheels next to jaxcoh in a fresh virtual environment, shows
# the devices, runs the test suite and the benchmarks there, unchanged (the code never names a device).
#
#   scripts/gpu_check.sh [SPARC_DIR] [OUT_DIR]     (defaults: ../shared/data/sparc, results/bench-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."

sparc="${1:-../shared/data/sparc}"
out="${2:-results/bench-gpu}"
venv=".venv-gpu"
python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install --upgrade pip >/dev/null
python -m pip install -e ".[test,plots,parquet]" "jax[cuda12]"

jaxcoh info
python -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else "no GPU backend: is the CUDA driver visible?")'
python -m pytest -q -n 2
jaxcoh bench --sparc "$sparc" --out "$out"
python -m jaxcoh.bench.suite --markdown "$out/bench.json" --command "jaxcoh bench --sparc $sparc --out $out" \
  > "$out/RESULTS-gpu.md"
echo "GPU figures in $out/bench.json and $out/RESULTS-gpu.md: copy them beside the CPU ones in benchmarks/RESULTS.md"
