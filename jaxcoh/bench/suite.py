"""The benchmarks B1-B7: jaxcoh beside the seed-style baselines (:mod:`jaxcoh.bench.baselines`) in the same run.

Every jaxcoh timing separates compilation (the first call, minus one warm run) from the warm run time (median over
repeats, results blocked on). Baselines that would take minutes or hours at full size are timed on a stated subset
and extrapolated linearly (their cost is a loop of identical, independent fits); the JSON says so where it happens.
Run with ``jaxcoh bench [--quick]`` or ``python -m jaxcoh.bench.suite``; tables by :mod:`.report`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import b6_halos, b7_sampling
from .baselines import bootstrap as bl_bootstrap
from .baselines import grid as bl_grid
from .baselines import joint_map as bl_joint
from .baselines import kernel as bl_kernel
from .baselines import seed_pipeline as bl_seed
from .report import format_results, results_markdown
from .seed_table import b1_jaxcoh
from .timing import block, peak_rss_gib, result, timed, wall

# The directory holding the jaxcoh package (a source checkout's root, or site-packages): the fresh processes of B1
# and B4 put it first on their path, so they import this very jaxcoh.
ROOT = Path(__file__).resolve().parents[2]

TARGETS = {"B1": 1.0, "B2": 100.0, "B3": 50.0, "B4": 4.0, "B5": 5.0, "B6": b6_halos.TARGET, "B7": b7_sampling.TARGET}


# ---- B1: the seed's table end to end ---------------------------------------------------------------------------------
B1_SCRIPT = """
import sys, time, json
t0 = time.perf_counter()
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_compilation_cache_dir", sys.argv[2])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
sys.path.insert(0, sys.argv[3])
from jaxcoh.bench.seed_table import b1_jaxcoh
b1_jaxcoh(sys.argv[1])
print(json.dumps({"process_s": time.perf_counter() - t0}))
"""


B1_BASELINE_SCRIPT = """
import sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from jaxcoh.bench.baselines.seed_pipeline import seed_table
seed_table(sys.argv[1])
print(json.dumps({"process_s": time.perf_counter() - t0}))
"""


def _process_s(script: str, *args: str) -> float:
    """Wall time of ``python -c script args`` in a fresh process [s] (interpreter start-up and imports included)."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def bench_b1(sparc_dir: str | None, repeats: int) -> dict:
    if sparc_dir is None:
        return {"skipped": "needs the SPARC directory (--sparc or $JAXCOH_SPARC_DIR)"}
    base_s, base = wall(lambda: bl_seed.seed_table(sparc_dir), repeats)
    first, warm, rms = timed(lambda: b1_jaxcoh(sparc_dir), repeats)
    cache = tempfile.mkdtemp(prefix="jaxcoh-bench-cache-")
    first_ever = _process_s(B1_SCRIPT, sparc_dir, cache, str(ROOT))  # empty cache: tracing and compiling
    # Fresh processes against fresh processes: what a user waits for when running either script.
    cached = statistics.median(_process_s(B1_SCRIPT, sparc_dir, cache, str(ROOT)) for _ in range(repeats))
    base_proc = statistics.median(_process_s(B1_BASELINE_SCRIPT, sparc_dir, str(ROOT)) for _ in range(repeats))
    r = result(base_s, warm, first - warm, TARGETS["B1"], workload="load SPARC, derive F_missing, fit 4 models",
               baseline="numpy loop + scipy DE (seed settings) / curve_fit",
               jaxcoh_rms={k: round(v, 4) for k, v in rms.items()},
               baseline_rms={k: round(v["rms"], 4) for k, v in base["models"].items()},
               first_ever_process_s=first_ever, cached_process_s=cached, baseline_process_s=base_proc,
               cached_process_ratio=cached / base_proc, cached_process_ratio_vs_in_process_baseline=cached / base_s,
               cached_process_target=4.0)
    r["cached_process_met"] = bool(cached < 4.0 * base_proc)
    return r


# ---- B2: 1000 bootstrap refits ---------------------------------------------------------------------------------------
def _sparc_or_mock_fm(sparc_dir):
    from jaxcoh.coherence import Hyperparameters
    from jaxcoh.fmissing import derive_f_missing
    from jaxcoh.mock import mock_catalog
    from jaxcoh.sparc import load_sparc

    cat = load_sparc(sparc_dir) if sparc_dir else mock_catalog(175, seed=0)
    recipe = "legacy" if sparc_dir else "sparc"
    return cat, derive_f_missing(Hyperparameters(), cat, recipe), recipe


def bench_b2(sparc_dir: str | None, n_boot: int, n_baseline: int, repeats: int) -> dict:
    from jaxcoh.fmissing import FitSettings, fit, fit_data, get_model, starts
    from jaxcoh.fmissing.sweeps import _bootstrap_phases, bootstrap_weights
    from jaxcoh.solvers import SolverOptions

    cat, fm, _ = _sparc_or_mock_fm(sparc_dir)
    data = fit_data(fm)
    model = get_model("mass_coherence")
    full = fit(model, data, FitSettings(n_starts=64))
    z0 = starts(model, FitSettings(n_starts=1), cat.dtype, init=full.params)
    reps = np.arange(n_boot)
    first, warm, out = timed(lambda: _bootstrap_phases(model, "lm", SolverOptions(), z0, data, reps, 0), repeats)
    sample = np.asarray(data.sample)
    F = np.asarray(data.target)[sample]
    props = {k: np.asarray(getattr(fm.properties, k))[sample] for k in ("M_b", "R_d", "v_flat", "sigma_v")}
    w = np.asarray(bootstrap_weights(data.sample, np.arange(n_baseline), 0))[:, sample]
    base_s, _ = wall(lambda: bl_bootstrap.bootstrap_de(F, props, weights=w.astype(float)))
    per = base_s / n_baseline
    converged = float(np.mean(np.asarray(out[1].status) == 0))
    return result(per * n_boot, warm, first - warm, TARGETS["B2"], n_boot=n_boot,
                  baseline=f"scipy DE (seed settings) in a loop, timed on {n_baseline} replicates, x{n_boot / n_baseline:g}",
                  jaxcoh="vmapped LM from the full-sample fit: all replicates for a quarter of the iterations, then the unconverged ones continued alone", fraction_converged=converged,
                  data="SPARC" if sparc_dir else "mock(175)")


# ---- B3: hyperparameter grid ----------------------------------------------------------------------------------------
def bench_b3(sparc_dir: str | None, per_axis: int, n_baseline: int, repeats: int) -> dict:
    from jaxcoh.fmissing import FitSettings
    from jaxcoh.fmissing.sweeps import hyperparameter_grid

    cat, _, recipe = _sparc_or_mock_fm(sparc_dir)
    axes = {"ell0": np.linspace(2, 10, per_axis), "A0": np.linspace(0.5, 1.5, per_axis),
            "gamma_rough": np.linspace(0.05, 0.2, per_axis), "beta_sigma": np.linspace(1.0, 2.0, per_axis)}
    n = per_axis**4
    first, warm, (table, _) = timed(lambda: hyperparameter_grid("mass_coherence", cat, axes, recipe=recipe,
                                                                settings=FitSettings(n_starts=4), chunk_size=n),
                                    repeats)
    if sparc_dir:
        galaxies = bl_seed.load_sparc_loop(sparc_dir)
        pts = bl_grid.product_grid(**{k: v.tolist() for k, v in axes.items()})
        idx = np.linspace(0, n - 1, n_baseline).astype(int)
        base_s, _ = wall(lambda: bl_grid.grid_de(galaxies, [pts[i] for i in idx]))
        baseline_s = base_s / n_baseline * n
    else:
        return {"skipped": "the baseline reads SPARC files (--sparc or $JAXCOH_SPARC_DIR)"}
    return result(baseline_s, warm, first - warm, TARGETS["B3"], n_points=n,
                  baseline=f"numpy loop derivation + scipy DE per point, timed on {n_baseline} points, x{n / n_baseline:g}",
                  jaxcoh="every point re-derived and refitted (4 starts, LM), vmapped; each point's best start kept after 5% of the iterations, unconverged points continued alone",
                  fraction_converged=float(np.mean(table["status"] == "CONVERGED")))


# ---- B4: kernel loss and gradient at scale --------------------------------------------------------------------------
B4_MEMORY_SCRIPT = """
import json, resource, sys
import jax
jax.config.update("jax_enable_x64", True)
sys.path.insert(0, sys.argv[2])
from jaxcoh.bench.suite import b4_value_and_grad_once
b4_value_and_grad_once(int(sys.argv[1]))
try:  # this program's own high-water mark: ru_maxrss would also count the parent's memory copied at fork
    kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_gib": kib / 2**20}))
"""
B4_MEMORY_TARGET_GIB = 8.0


def _b4_inputs(galaxies: int):
    """The B4 catalog (padded to whole blocks where jaxcoh blocks the objective), its raw joint data and options."""
    from jaxcoh.curves import Likelihood, curve_data
    from jaxcoh.curves.objective import GALAXY_BLOCK
    from jaxcoh.mock import mock_catalog

    cat = mock_catalog(galaxies, seed=0, n_max=64, min_points=64, dtype=jnp.float32)
    padded = cat.pad_galaxies(GALAXY_BLOCK) if galaxies >= 4 * GALAXY_BLOCK else cat  # empty rows: whole blocks
    return cat, curve_data(padded), Likelihood(nuisance=False)


def b4_value_and_grad_once(galaxies: int):
    """The B4 objective's value and gradient once, as a fit computes it (mock generation and preparation included;
    run alone in a process, for its peak memory)."""
    from jaxcoh.curves import prepare
    from jaxcoh.curves.objective import objective
    from jaxcoh.curves.unified import UNIFIED_MULTIPLICATIVE as model

    _, raw, opts = _b4_inputs(galaxies)
    values = {p.name: jnp.asarray(float(p.init), jnp.float32) for p in model.shared}
    z = {"shared": model.shared.to_unconstrained(values), "local": {}}
    vg = jax.jit(jax.value_and_grad(objective), static_argnums=(1, 3))
    return block(vg(z, model, prepare(raw, opts), opts))


def bench_b4(sizes: list[int], repeats: int, loop_galaxies: int) -> dict:
    """jaxcoh's objective and gradient as a fit evaluates them (the parameter-free part, ``joint.prepare``, done once
    and timed apart, like compilation), and once from the raw catalog ("one-off"), against numpy's forward pass and
    the per-galaxy loop."""
    from jaxcoh.curves import prepare
    from jaxcoh.curves.objective import objective
    from jaxcoh.curves.unified import UNIFIED_MULTIPLICATIVE as model

    values = {p.name: float(p.init) for p in model.shared}
    f = jax.jit(objective, static_argnums=(1, 3))
    vg = jax.jit(jax.value_and_grad(objective), static_argnums=(1, 3))
    rows = []
    for g in sizes:
        cat, raw, opts = _b4_inputs(g)
        arrays = {k: np.asarray(getattr(cat, k)) for k in bl_kernel.KERNEL_FIELDS}
        z = {"shared": model.shared.to_unconstrained({k: jnp.asarray(v, jnp.float32) for k, v in values.items()}),
             "local": {}}
        np_s, np_val = wall(lambda: bl_kernel.unified_loss_numpy(values, arrays), repeats)
        p_first, p_s, data = timed(lambda: prepare(raw, opts), repeats)
        f_first, f_s, val = timed(lambda: f(z, model, data, opts), repeats)
        g_first, g_s, _ = timed(lambda: vg(z, model, data, opts), repeats)
        f1_first, f1_s, val1 = timed(lambda: f(z, model, raw, opts), repeats)
        g1_first, g1_s, _ = timed(lambda: vg(z, model, raw, opts), repeats)
        row = {"galaxies": g, "points": g * 64, "numpy_forward_s": np_s, "prepare_s": p_s,
               "jaxcoh_forward_s": f_s, "jaxcoh_value_grad_s": g_s,
               "jaxcoh_forward_one_off_s": f1_s, "jaxcoh_value_grad_one_off_s": g1_s,
               "compile_prepare_s": p_first - p_s, "compile_forward_s": f_first - f_s,
               "compile_value_grad_s": g_first - g_s, "compile_forward_one_off_s": f1_first - f1_s,
               "compile_value_grad_one_off_s": g1_first - g1_s,
               "forward_ratio": np_s / f_s, "value_grad_ratio": np_s / g_s,
               "forward_ratio_one_off": np_s / f1_s, "value_grad_ratio_one_off": np_s / g1_s,
               "ns_per_point_value_grad": g_s / (g * 64) * 1e9,
               "rel_diff_vs_numpy": abs(float(val) / np_val - 1), "rel_diff_one_off": abs(float(val1) / np_val - 1),
               "peak_rss_gib_so_far": peak_rss_gib()}
        if g <= loop_galaxies:  # the seed's way: a loop over galaxies in float64, a gradient by forward differences
            arrays64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in arrays.items()}
            loop_s, _ = wall(lambda: bl_kernel.unified_loss_loop(values, arrays64), 1)
            loop_vg_s, _ = wall(lambda: bl_kernel.unified_loss_loop_value_and_grad(values, arrays64), 1)
            row.update(loop_forward_s=loop_s, loop_value_grad_s=loop_vg_s, loop_ratio_forward=loop_s / f_s,
                       loop_ratio_value_grad=loop_vg_s / g_s, loop_ratio_value_grad_one_off=loop_vg_s / g1_s)
        rows.append(row)
        del cat, raw, data, arrays
    last = rows[-1]
    out = result(last["numpy_forward_s"], last["jaxcoh_forward_s"], last["compile_forward_s"], TARGETS["B4"],
                 dtype="float32", sizes=rows, baseline="numpy vectorised forward pass (and a per-galaxy loop)",
                 value_grad_ratio=last["value_grad_ratio"], value_grad_target=2.0,
                 value_grad_met=bool(last["value_grad_ratio"] >= 2.0),
                 one_off_met=bool(last["forward_ratio_one_off"] >= TARGETS["B4"]
                                  and last["value_grad_ratio_one_off"] >= 2.0))
    looped = [r for r in rows if "loop_ratio_value_grad" in r]
    if looped:  # value+gradient against the loop's value+gradient (forward differences); forward alone beside it
        out["loop_ratio"] = looped[-1]["loop_ratio_value_grad"]
        out["loop_ratio_one_off"] = looped[-1]["loop_ratio_value_grad_one_off"]
        out["loop_ratio_forward"] = looped[-1]["loop_ratio_forward"]
        out["loop_galaxies"] = looped[-1]["galaxies"]
        out["loop_target"] = 1000.0
        out["loop_met"] = bool(out["loop_ratio"] >= 1000.0)
        out["loop_met_one_off"] = bool(out["loop_ratio_one_off"] >= 1000.0)
    ns = [r["ns_per_point_value_grad"] for r in rows]
    out["cost_per_point_ns"] = ns
    out["peak_rss_gib"] = peak_rss_gib()
    # jaxcoh alone at the largest size, in a process of its own (this one also holds the numpy baseline's arrays)
    p = subprocess.run([sys.executable, "-c", B4_MEMORY_SCRIPT, str(sizes[-1]), str(ROOT)], capture_output=True,
                       text=True)
    if p.returncode == 0:
        out["jaxcoh_process_peak_rss_gib"] = json.loads(p.stdout.strip().splitlines()[-1])["peak_rss_gib"]
        out["memory_target_gib"] = B4_MEMORY_TARGET_GIB
        out["memory_met"] = bool(out["jaxcoh_process_peak_rss_gib"] < B4_MEMORY_TARGET_GIB)
    else:
        out["jaxcoh_process_peak_rss_gib_error"] = p.stderr[-2000:]
    return out


# ---- B5: joint MAP fit with nuisance --------------------------------------------------------------------------------
def bench_b5(sparc_dir: str | None, dense_baseline: bool, repeats: int) -> dict:
    """The joint MAP fit of the RAR with 4 nuisance values per galaxy on all 175 SPARC galaxies, against scipy's
    ``least_squares`` with a sparse finite-difference Jacobian (the reference: the strong way to write it), and in
    full mode also with a dense one (the plain way). Both sides do the same work: one start per galaxy, a
    Levenberg-Marquardt-type solver to its optimum; jaxcoh's default settings (L-BFGS then LM, 8 starts per galaxy,
    the polish) are timed too and reported apart."""
    from jaxcoh.curves import CurveSettings, fit
    from jaxcoh.selection import apply_cuts
    from jaxcoh.sparc import load_sparc

    if sparc_dir is None:
        return {"skipped": "needs the SPARC directory (--sparc or $JAXCOH_SPARC_DIR)"}
    cat, _ = apply_cuts(load_sparc(sparc_dir), "none")
    same_work = CurveSettings(n_starts=1, errors=False, galaxy_starts=1, solver="block_lm")
    first, warm, fitted = timed(lambda: fit("rar", cat, same_work), repeats)
    d_first, d_warm, d_fitted = timed(lambda: fit("rar", cat, CurveSettings(n_starts=1, errors=False)), repeats)
    arrays = {k: np.asarray(getattr(cat, k)) for k in bl_joint.JOINT_FIELDS}
    base_s, sparse = wall(lambda: bl_joint.joint_map_rar(arrays, sparse_jacobian=True))
    details = {"n_params": fitted.n_params, "jaxcoh_objective": fitted.objective, "jaxcoh_status": fitted.status,
               "baseline_cost": sparse["cost"],
               "jaxcoh_objective_minus_baseline_cost": fitted.objective - sparse["cost"],
               "baseline": "scipy least_squares with a sparse finite-difference Jacobian (one start per galaxy)",
               "jaxcoh": "block-arrowhead Levenberg-Marquardt from one start per galaxy (RAR, 4 nuisance values "
                         "per galaxy)",
               "default_settings": {"warm_s": d_warm, "compile_s": d_first - d_warm, "objective": d_fitted.objective,
                                    "status": d_fitted.status, "ratio": base_s / d_warm,
                                    "settings": "L-BFGS then block LM, 8 starts per galaxy, polish"}}
    if dense_baseline:
        dense_s, dense = wall(lambda: bl_joint.joint_map_rar(arrays))
        details.update(dense_baseline_s=dense_s, dense_baseline_cost=dense["cost"],
                       ratio_vs_dense_baseline=dense_s / warm)
    return result(base_s, warm, first - warm, TARGETS["B5"], **details)


# ---- the suite ------------------------------------------------------------------------------------------------------
QUICK = dict(repeats=2, b2=(200, 5), b3=(3, 3), b4=[1000, 10000], b4_loop=1000, b5_dense=False)
FULL = dict(repeats=5, b2=(1000, 40), b3=(8, 16), b4=[1000, 10000, 100000, 1000000], b4_loop=10000, b5_dense=True)


def machine() -> dict:
    import optax
    import scipy

    from jaxcoh.version import __version__

    dev = jax.devices()[0]
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), "jax_backend": jax.default_backend(),
            "device": getattr(dev, "device_kind", str(dev)), "device_count": jax.device_count(),
            "versions": {"jaxcoh": __version__, "jax": jax.__version__, "jaxlib": jax.lib.__version__,
                         "optax": optax.__version__, "numpy": np.__version__, "scipy": scipy.__version__}}


def run_suite(sparc_dir: str | None, quick: bool, only: list[str] | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    cfg = QUICK if quick else FULL
    jax.config.update("jax_enable_x64", True)
    r = cfg["repeats"]
    jobs = {
        "B1": lambda: bench_b1(sparc_dir, r),
        "B2": lambda: bench_b2(sparc_dir, *cfg["b2"], r),
        "B3": lambda: bench_b3(sparc_dir, *cfg["b3"], max(r // 2, 1)),
        "B4": lambda: bench_b4(cfg["b4"], r, cfg["b4_loop"]),
        "B5": lambda: bench_b5(sparc_dir, cfg["b5_dense"], max(r // 2, 1)),
        "B6": lambda: b6_halos.bench_b6(sparc_dir, quick),
        "B7": lambda: b7_sampling.bench_b7(sparc_dir, quick),
    }
    out = {"machine": machine(), "mode": "quick" if quick else "full", "data": "SPARC" if sparc_dir else "mock",
           "dtype": "float64 (B4: float32)", "benchmarks": {}}
    for name, job in jobs.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        out["benchmarks"][name] = job()
        out["benchmarks"][name]["total_wall_s"] = time.perf_counter() - t0
        if progress is not None:
            progress(name)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sparc", default=os.environ.get("JAXCOH_SPARC_DIR"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--markdown", metavar="BENCH_JSON", help="print RESULTS.md for an existing bench.json and exit")
    ap.add_argument("--command", default="jaxcoh bench --sparc ../shared/data/sparc --out results/bench")
    a = ap.parse_args()
    if a.markdown:
        print(results_markdown(json.loads(Path(a.markdown).read_text()), a.command), end="")
        sys.exit(0)
    res = run_suite(a.sparc, a.quick)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "bench.json").write_text(json.dumps(res, indent=2, default=float))
    print(format_results(res))
