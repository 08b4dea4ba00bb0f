#!/usr/bin/env bash
# jaxcoh on one NVIDIA GPU: the test suite and the benchmarks there, unchanged (the code never names a device).
#
# Two steps, because the GPU machine lent by the `device` tool reaches no network; its image already holds JAX with
# CUDA and most of jaxcoh's dependencies (../.library/device/KINDS.md, read on 2026-11-29: jax 0.11.2 with the CUDA 13
# plugin, optax, numpyro 0.21, pandas, scipy, matplotlib, pytest, pytest-xdist, hypothesis, tqdm, xarray, h5py):
#
#   scripts/gpu_check.sh fetch [SPARC_DIR]
#       here, where the package registries answer: the wheels the image lacks (the versions this project's
#       environment was tested with) into .whl/, and a copy of the SPARC data (default ../shared/data/sparc, which
#       does not travel) into .sparc/; both are git-ignored.
#   scripts/gpu_check.sh run [WORK_DIR]
#       there, with `carry: [".whl", ".sparc"]`: installs the wheels and jaxcoh beside the image's JAX into
#       /tmp/site, puts the SPARC copy where the tests look (../shared/data/sparc), then, each step under its own time
#       limit so that one overrun leaves the others' figures: the devices, B4 (the objective at up to 10^6 galaxies),
#       the other benchmarks (quick mode), a joint fit of 10^6 mock galaxies (scripts/scale_fit.py), the test suite
#       (8 min 30 s at most in all, the installs apart: the device tool allows 10 minutes a command; the limits are
#       guesses, as no GPU has run it yet). Everything lands in WORK_DIR (default results/bench-gpu) and, where the
#       device tool sets $OUT, in $OUT/gpu_check.tgz with the step summary and the RESULTS sections beside it.
#
# Environment: PY (the interpreter; default python3, the image's), GPU_CHECK_ALLOW_CPU=1 (a dry run on a machine
# without a GPU), GPU_CHECK_TESTS (pytest's arguments; default "-q -n 8": the
# machine has 16 cores, and compilation dominates the suite).
set -euo pipefail
cd "$(dirname "$0")/.."

# The wheels the GPU image lacks: jaxcoh's `sample` extra (blackjax, ArviZ and what ArviZ needs beyond the image),
# tomli-w (run configs), numpyro at the version B7 was measured with.
WHEELS=(blackjax==1.7.1 arviz==0.23.4 h5netcdf==1.8.2 xarray-einstats==0.9.1 platformdirs==4.14.8 tomli-w==1.2.0
        numpyro==0.22.0)
PY="${PY:-python3}"

fetch() {
    local sparc="${1:-../shared/data/sparc}"
    rm -rf .whl .sparc
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    [ -f "$sparc/table1.dat" ] || { echo "no SPARC data at $sparc" >&2; exit 1; }
    cp -r "$sparc" .sparc
    du -sh .whl .sparc
}

run() {
    local work="${1:-results/bench-gpu}"
    mkdir -p "$work"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .
    export PYTHONPATH=/tmp/site PATH="/tmp/site/bin:$PATH" PYTHONUNBUFFERED=1
    export XLA_PYTHON_CLIENT_PREALLOCATE=false  # pytest's workers share the GPU: no process takes 75% of it upfront
    if [ ! -f ../shared/data/sparc/table1.dat ]; then
        mkdir -p ../shared/data && cp -r .sparc ../shared/data/sparc
    fi
    local sparc=../shared/data/sparc
    jaxcoh info | tee "$work/info.txt"
    if [ "${GPU_CHECK_ALLOW_CPU:-0}" = 0 ]; then
        "$PY" -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else "no GPU backend")'
    fi
    set +e  # each step under its own limit; a failure is reported, and the next step still runs
    step() {  # step NAME SECONDS COMMAND...: runs COMMAND under the limit, its output in $work/NAME.log
        local name="$1" limit="$2"; shift 2
        timeout "$limit" "$@" > "$work/$name.log" 2>&1
        echo "$name: exit $? (limit ${limit} s)" | tee -a "$work/steps.txt"
    }
    # B4 first: the objective's value and gradient at up to 10^6 galaxies, the GPU target (>= 1e10 points/s); then
    # the others in groups (a benchmark run writes its bench.json at the end: a step cut short loses its group only)
    step b4 60 jaxcoh bench --quick --only B4 --out "$work/b4"
    step b1235 90 jaxcoh bench --quick --sparc "$sparc" --only B1,B2,B3,B5 --out "$work/b1235"
    step b6 90 jaxcoh bench --quick --sparc "$sparc" --only B6 --out "$work/b6"
    step b7 60 jaxcoh bench --quick --sparc "$sparc" --only B7 --out "$work/b7"
    for b in b4 b1235 b6 b7; do
        [ -f "$work/$b/bench.json" ] && "$PY" -m jaxcoh.bench.suite --markdown "$work/$b/bench.json" \
            --command "scripts/gpu_check.sh run ($b)" > "$work/RESULTS-gpu-$b.md"
    done
    step scale_1e6 60 "$PY" scripts/scale_fit.py --galaxies 1000000 --out "$work/scale_1e6.json"
    # shellcheck disable=SC2086
    step tests 150 "$PY" -m pytest ${GPU_CHECK_TESTS:--q -n 8}
    tail -n 3 "$work/tests.log"
    if [ -n "${OUT:-}" ]; then  # the device tool brings back at most 8 files: one archive, and the summaries
        tar czf "$OUT/gpu_check.tgz" -C "$work" . && cp "$work/steps.txt" "$work"/RESULTS-gpu-*.md "$OUT"/
    fi
    echo "figures in $work${OUT:+ and \$OUT/gpu_check.tgz}: copy them beside the CPU ones in benchmarks/RESULTS.md"
}

case "${1:-}" in
    fetch) shift; fetch "$@" ;;
    run) shift; run "$@" ;;
    *) echo "usage: scripts/gpu_check.sh fetch [SPARC_DIR] | run [OUT_DIR]" >&2; exit 2 ;;
esac
