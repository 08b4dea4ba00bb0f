"""B6: the halo catalogue of Li et al. (2020), twelve models x every SPARC galaxy, jaxcoh against the per-galaxy scipy
loop (:mod:`jaxcoh.bench.baselines.halos`) in the same run.

jaxcoh: :func:`jaxcoh.curves.halo_catalog.halo_catalog` with its default settings (the twelve models in stacked
fits, a group per CPU core side by side in threads, several starts per galaxy, errors), timed as a first call
(tracing and compilation included) and warm (the compiled programs reused; the median of 3 runs); compile time is
the difference.
Baseline: ``least_squares`` per galaxy and model from the same number of starts, with ``--quick`` timed on 3
galaxies spread over the sample and extrapolated linearly to the whole catalogue (its cost is a loop of independent
fits), otherwise on every galaxy (the per-galaxy cost varies: 12 galaxies spread over the sample gave 105 s for the
whole loop, 3 gave 122-135 s). Both sides' median reduced chi^2 per model on the subset are reported, to show they
solve the same problem, and both sides' CPU time (the baseline's loop runs on one core, jaxcoh's groups on every
core). Run ``jaxcoh bench --only B6`` or ``python -m jaxcoh.bench.b6_halos [--quick]``.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np

from .baselines import halos as bl_halos
from .timing import result

TARGET = 20.0
WALL_TARGET_S = 300.0  # the whole catalogue, first call included, on a 2-core CPU
WARM_REPEATS = 3  # the warm catalogue's median (as B1-B5): single runs of the same code spread 4.9-6.4 s
SUBSET = {True: 3, False: None}  # baseline galaxies (quick: 3, extrapolated; full: every galaxy)
SUMMARY_FIELDS = ("median_chi2_nu", "n_galaxies_starts_disagreed")  # what B6 reads of each model's summary


def bench_b6(sparc_dir: str | None, quick: bool) -> dict:
    """B6 in the result format of :func:`.timing.result` (baseline and jaxcoh seconds, compile apart, ratio,
    target), with the subset, both catalogues' median chi2_nu and the first-call wall time."""
    from jaxcoh.config import set_precision
    from jaxcoh.curves.halo_catalog import HALO_SETTINGS, halo_catalog
    from jaxcoh.sparc import load_sparc

    if sparc_dir is None:
        return {"skipped": "needs the SPARC directory (--sparc or $JAXCOH_SPARC_DIR)"}
    set_precision("float64")
    cat = load_sparc(sparc_dir)
    t0 = time.perf_counter()
    halo_catalog(cat)  # first call: tracing and compiling every program
    first = time.perf_counter() - t0
    runs = []
    for _ in range(WARM_REPEATS):  # warm: the same catalog, the models and compiled programs kept
        t0, c0 = time.perf_counter(), time.process_time()
        table, summary = halo_catalog(cat)
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    warm, warm_cpu = (statistics.median(r) for r in zip(*runs))
    g = cat.n_galaxies
    n_sub = SUBSET[quick] or g
    subset = np.unique(np.linspace(0, g - 1, n_sub).round().astype(int))
    arrays = {k: np.asarray(getattr(cat, k)) for k in bl_halos.FIELDS}
    K = HALO_SETTINGS.galaxy_starts
    t0, c0 = time.perf_counter(), time.process_time()
    rows = bl_halos.halo_catalog_loop(arrays, galaxies=subset, n_starts=K)
    base_sub, base_cpu = time.perf_counter() - t0, time.process_time() - c0
    names = [cat.names[int(j)] for j in subset]
    sub = table[table["galaxy"].isin(names)]
    base_med = {m: float(np.nanmedian([r["chi2_nu"] for r in rows if r["model"] == m])) for m in
                dict.fromkeys(r["model"] for r in rows)}
    ours_med = {m: float(np.nanmedian(sub.loc[sub["model"] == m, "chi2_nu"])) for m in base_med}
    base_chi2 = {(names[list(subset).index(r["galaxy"])], r["model"]): r["chi2"] for r in rows}
    ours_chi2 = {(gal, m): c for gal, m, c in zip(sub["galaxy"], sub["model"], sub["chi2"])}
    diff = np.array([ours_chi2[k] - v for k, v in base_chi2.items() if k in ours_chi2])
    out = result(base_sub / len(subset) * g, warm, first - warm, TARGET,
                 workload=f"{len(summary['models'])} halo models x {g} SPARC galaxies, {K} starts per galaxy and "
                          "model, errors",
                 baseline=f"scipy least_squares per galaxy and model ({K} starts), timed on {len(subset)} galaxies "
                          f"({', '.join(names)}), x{g / len(subset):.3g}",
                 jaxcoh="halo_catalog: the models in stacked fits, one group per core in threads (block "
                        "Levenberg-Marquardt, several starts per galaxy in float32, Hessian errors)",
                 jaxcoh_cpu_s=warm_cpu, baseline_cpu_s=base_cpu / len(subset) * g,
                 ratio_per_cpu_second=base_cpu / len(subset) * g / warm_cpu,
                 baseline_subset_s=base_sub, subset=names, first_call_s=first, wall_target_s=WALL_TARGET_S,
                 wall_met=bool(first < WALL_TARGET_S),
                 median_chi2_nu_subset={"jaxcoh": ours_med, "baseline": base_med},
                 chi2_jaxcoh_minus_baseline={"median": float(np.median(diff)), "min": float(diff.min()),
                                             "max": float(diff.max()),
                                             "frac_jaxcoh_lower_or_equal": float(np.mean(diff <= 1e-6))},
                 galaxies_starts_disagreed={m: v["n_galaxies_starts_disagreed"] for m, v in summary["models"].items()})
    out["median_chi2_nu"] = {m: v["median_chi2_nu"] for m, v in summary["models"].items()}
    return out


def format_b6(r: dict) -> str:
    if "skipped" in r:
        return f"B6 skipped: {r['skipped']}"
    whole = math.isclose(r["baseline_s"], r["baseline_subset_s"], rel_tol=1e-9)
    timed = (f"timed on all {len(r['subset'])} galaxies" if whole else
             f"extrapolated from {r['baseline_subset_s']:.1f} s on {len(r['subset'])} galaxies")
    lines = [f"B6 halo catalogue: baseline {r['baseline_s']:.1f} s ({timed}), jaxcoh {r['jaxcoh_s']:.1f} s warm + {r['compile_s']:.1f} s compile "
             f"(first call {r['first_call_s']:.1f} s): {r['ratio']:.1f}x, per CPU second "
             f"{r['ratio_per_cpu_second']:.1f}x (target {r['target']:g}x: "
             f"{'met' if r['met'] else 'not met'}; first call under {r['wall_target_s']:g} s: "
             f"{'met' if r['wall_met'] else 'not met'})",
             f"chi2 jaxcoh - baseline on the subset: median {r['chi2_jaxcoh_minus_baseline']['median']:.3g}, "
             f"range [{r['chi2_jaxcoh_minus_baseline']['min']:.3g}, {r['chi2_jaxcoh_minus_baseline']['max']:.3g}]"]
    for m, v in r["median_chi2_nu_subset"]["jaxcoh"].items():
        b = r["median_chi2_nu_subset"]["baseline"][m]
        lines.append(f"  {m:<14} median chi2_nu on the subset: jaxcoh {v:.3f}, baseline {b:.3f}"
                     + ("" if math.isfinite(v) else " (no degrees of freedom)"))
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json
    import os

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sparc", default=os.environ.get("JAXCOH_SPARC_DIR"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    a = ap.parse_args()
    res = bench_b6(a.sparc, a.quick)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2, default=float))
    print(format_b6(res))
