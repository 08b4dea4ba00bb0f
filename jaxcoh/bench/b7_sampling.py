"""B7: effective samples per second of g_dagger, jaxcoh's NUTS on its joint log density against the same model
written as an ordinary numpyro model (:mod:`jaxcoh.bench.baselines.numpyro_rar`) under numpyro's NUTS, same process.

The workload: the RAR on SPARC's standard cuts (the mock catalog when SPARC is absent) with every galaxy's
Upsilon_disk, Upsilon_bulge, distance and inclination and the shared sigma_int. Both samplers start every chain
from jaxcoh's MAP (the MAP's time is reported apart, it is the same for both), adapt the step size and the mass
matrix by Stan's windows (at most 2^10 leapfrog steps), each with its defaults: numpyro the diagonal mass matrix and
target acceptance 0.8, jaxcoh those of ``jaxcoh sample`` (the arrowhead, from the Laplace approximation at the MAP,
``--mass-matrix`` chooses another; target acceptance 0.9), and run their chains one after another (the faster on CPU
for both). Each runs twice with different seeds: the first call includes tracing and compilation, the second reuses the compiled programs; compile time is the difference, ESS/s is the second run's
bulk ESS of g_dagger (ArviZ, over all chains) over its wall time, warm-up included. Before any timing the two log
densities are compared at the MAP and at perturbed points: they must differ by one constant.

Run ``jaxcoh bench --only B7 [--sparc DIR] [--quick]``, or
``python -m jaxcoh.bench.b7_sampling [--sparc DIR] [--quick] [--out FILE]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


TARGET = 5.0
WALL_GOAL_S = 600.0  # 4 chains x (1000 warm-up + 1000 draws) on SPARC, 2-core CPU
SIZES = {True: {"n_chains": 2, "n_warmup": 250, "n_draws": 250}, False: {"n_chains": 4, "n_warmup": 1000, "n_draws": 1000}}


def _result(baseline_s, jaxcoh_s, compile_s, target, **details) -> dict:
    from .timing import result

    return result(baseline_s, jaxcoh_s, compile_s, target, **details)


def _catalog(sparc_dir: str | None):
    from ..mock import mock_catalog
    from ..selection import apply_cuts
    from ..sparc import load_sparc

    if sparc_dir is not None:
        cat, _ = apply_cuts(load_sparc(sparc_dir), "standard")
        return cat, "SPARC, standard cuts"
    cat, _ = apply_cuts(mock_catalog(150, seed=0, kernel="rar", scatter_dex=0.05), "standard")
    return cat, "mock (kernel=rar, 150 galaxies, 0.05 dex scatter), standard cuts"


def check_densities(ld_jaxcoh, model, data, opts, flat: dict, z_map: dict, n_points: int = 4, seed: int = 0) -> dict:
    """jaxcoh's log density over its prior coordinates (``-objective``) against numpyro's log joint at the same
    values (constrained): their difference, after numpyro's ``1/x`` factors of Upsilon_disk, Upsilon_bulge, g_dagger
    and sigma_int, must be one constant. Points: the MAP and ``n_points - 1`` draws of ``z_map + 0.05 N(0, 1)``."""
    import jax
    import jax.numpy as jnp

    from ..curves.nuisance import NUISANCE
    from ..curves.objective import objective

    rng = np.random.default_rng(seed)
    diffs, values_j = [], []
    for k in range(n_points):
        z = z_map if k == 0 else jax.tree.map(lambda a: a + 0.05 * rng.standard_normal(np.shape(a)), z_map)
        shared, nu = model.shared.to_values(z["shared"]), NUISANCE.to_values(z["nuisance"])
        lq = -float(objective(z, model, data, opts))
        jac = float(jnp.sum(jnp.log(nu["upsilon_disk"])) + jnp.sum(jnp.log(nu["upsilon_bulge"]))
                    + jnp.log(shared["g_dagger"]) + jnp.log(shared["sigma_int"]))
        from .baselines import numpyro_rar

        lp = float(numpyro_rar.log_joint(flat, {**shared, **nu}))
        diffs.append(lp - (lq - jac))
        values_j.append(lq)
    spread = float(np.ptp(diffs))
    return {"constant": float(np.mean(diffs)), "spread": spread, "log_density_range": float(np.ptp(values_j)),
            "agree": bool(spread < 1e-6 * max(1.0, float(np.ptp(values_j))))}


def _ess(draws: np.ndarray, method: str = "bulk") -> float:
    # arviz through jaxcoh's module, which silences arviz's once-a-day FutureWarning on import
    from ..sampling.posterior import az

    return float(az.ess(np.asarray(draws), method=method))


def _ess_all(g_dagger: np.ndarray, sigma_int: np.ndarray) -> dict:
    """Bulk and tail ESS of g_dagger and sigma_int (``[chain, draw]`` each): the ratio is of g_dagger's bulk ESS;
    the others show that it does not come from one number alone (a bulk ESS above the draws, antithetic chains,
    says little of the tails)."""
    return {"ess": _ess(g_dagger), "ess_tail": _ess(g_dagger, "tail"), "ess_sigma_int": _ess(sigma_int),
            "ess_tail_sigma_int": _ess(sigma_int, "tail")}


def run_jaxcoh(ld, z_map, n_chains, n_warmup, n_draws, seed, mass_matrix: str | None = None) -> dict:
    """jaxcoh's side with the defaults of `jaxcoh sample` (``mass_matrix`` None: its mass matrix)."""
    from ..curves.baselines import RAR
    from ..curves.likelihood import INTRINSIC_SCATTER
    from ..curves.sampling import SampleSettings
    from ..sampling.nuts import run_nuts

    defaults = SampleSettings()
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_nuts(ld, z_map, seed=seed, n_chains=n_chains, n_warmup=n_warmup, n_draws=n_draws, chunk_size=n_draws,
                   mass_matrix=mass_matrix or defaults.mass_matrix, init_scale=0.01,
                   target_accept=defaults.target_accept)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    g = np.asarray(RAR.shared["g_dagger"].to_value(res.draws["shared"]["g_dagger"]))
    s = np.asarray(INTRINSIC_SCATTER.to_value(res.draws["shared"]["sigma_int"]))
    return {"wall_s": wall, "cpu_s": cpu, **_ess_all(g, s), "g_dagger": g,
            "divergences": int(np.sum(res.stats.diverging)), "grad_evals": int(np.sum(res.stats.n_steps)),
            "step_size": np.asarray(res.state.step_size).tolist()}


def run_numpyro(flat, map_values, n_chains, n_warmup, n_draws, seed) -> dict:
    import jax
    from numpyro.infer import MCMC, NUTS, init_to_value

    from .baselines import numpyro_rar

    kernel = NUTS(numpyro_rar.rar_model, target_accept_prob=0.8, max_tree_depth=10,
                  init_strategy=init_to_value(values=map_values))
    mcmc = MCMC(kernel, num_warmup=n_warmup, num_samples=n_draws, num_chains=n_chains, chain_method="sequential",
                progress_bar=False)
    t0, c0 = time.perf_counter(), time.process_time()
    mcmc.run(jax.random.key(seed), flat, extra_fields=("num_steps", "diverging"))
    samples = mcmc.get_samples(group_by_chain=True)
    g = np.asarray(samples["g_dagger"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    extra = mcmc.get_extra_fields()
    return {"wall_s": wall, "cpu_s": cpu, **_ess_all(g, np.asarray(samples["sigma_int"])), "g_dagger": g,
            "divergences": int(np.sum(extra["diverging"])),
            "grad_evals": int(np.sum(extra["num_steps"]))}


def bench_b7(sparc_dir: str | None, quick: bool, mass_matrix: str | None = None) -> dict:
    """B7 in the suite's result format: ``baseline_s`` and ``jaxcoh_s`` are seconds per effective sample of g_dagger
    (so ``ratio`` is jaxcoh's ESS/s over numpyro's), ``compile_s`` jaxcoh's; with both sides' ESS/s, compile
    seconds, wall times, draws, chains, gradient evaluations and posterior of g_dagger."""
    import jax

    from ..config import set_precision
    from ..curves import CurveSettings, curve_data, fit
    from ..curves.baselines import RAR
    from ..curves.likelihood import Likelihood, likelihood_model
    from ..curves.nuisance import NUISANCE
    from ..curves.posterior import log_density
    from ..curves.sampling import SampleSettings
    from ..sampling.nuts import DEFAULT_CHAIN_METHOD
    from .baselines import numpyro_rar  # numpyro: the bench extra, imported only when B7 runs

    mass_matrix = mass_matrix or SampleSettings().mass_matrix  # jaxcoh's side: the defaults of `jaxcoh sample`
    set_precision("float64")
    size = SIZES[quick]
    cat, source = _catalog(sparc_dir)
    if not bool(np.all(np.asarray(cat.galaxy_mask))):
        raise ValueError("the baseline model has no padded galaxies: the catalog must have none either")
    opts = Likelihood(nuisance=True, intrinsic_scatter=True)
    model = likelihood_model(RAR, opts)
    data = curve_data(cat)
    t0 = time.perf_counter()
    # One start: the MAP only places both samplers' chains, and the same for both.
    m = fit(RAR, cat, CurveSettings(likelihood=opts, errors=False, n_starts=1, galaxy_starts=1))
    map_s = time.perf_counter() - t0
    print(f"MAP {dict(m.params)} in {map_s:.1f} s", file=sys.stderr, flush=True)
    shared = {k: jax.numpy.asarray(m.params[k]) for k in model.shared.names}
    nu = {k: jax.numpy.asarray(m.nuisance[k]) for k in NUISANCE.names}
    z_map = {"shared": model.shared.to_unconstrained(shared), "local": {}, "nuisance": NUISANCE.to_unconstrained(nu)}
    arrays = {k: np.asarray(getattr(cat, k)) for k in ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "mask",
                                                       "distance", "e_distance", "inclination", "e_inclination")}
    flat = {k: jax.numpy.asarray(v) for k, v in numpyro_rar.flatten(arrays).items()}
    ld = log_density(RAR, data, opts)
    check = check_densities(ld, model, data, opts, flat, z_map)
    if not check["agree"]:
        raise AssertionError(f"the two log densities differ by more than a constant: {check}")
    map_values = {**{k: float(v) for k, v in shared.items()}, **{k: np.asarray(v) for k, v in nu.items()}}
    runs = []
    for label, fn, args in (("jaxcoh", run_jaxcoh, (ld, z_map)), ("jaxcoh", run_jaxcoh, (ld, z_map)),
                            ("numpyro", run_numpyro, (flat, map_values)), ("numpyro", run_numpyro, (flat, map_values))):
        kw = {"mass_matrix": mass_matrix} if label == "jaxcoh" else {}
        runs.append(fn(*args, **size, seed=len(runs) % 2 + 1, **kw))
        print(f"{label} run {len(runs)}: {runs[-1]['wall_s']:.1f} s, ESS {runs[-1]['ess']:.0f}", file=sys.stderr,
              flush=True)
    j1, j2, n1, n2 = runs
    ours, base = j2["ess"] / j2["wall_s"], n2["ess"] / n2["wall_s"]
    draws = size["n_chains"] * size["n_draws"]

    def side(a, b):
        return {"ess_per_s": b["ess"] / b["wall_s"], "ess_bulk": b["ess"], "ess_tail": b["ess_tail"],
                "ess_bulk_sigma_int": b["ess_sigma_int"], "ess_tail_sigma_int": b["ess_tail_sigma_int"],
                "wall_s": b["wall_s"],
                "cpu_s": b["cpu_s"], "ess_per_cpu_s": b["ess"] / b["cpu_s"],
                "first_call_s": a["wall_s"], "compile_s": max(a["wall_s"] - b["wall_s"], 0.0),
                "divergences": b["divergences"], "grad_evals": b["grad_evals"],
                "us_per_grad": 1e6 * b["wall_s"] / max(b["grad_evals"], 1),
                "g_dagger_mean": float(np.mean(b["g_dagger"])), "g_dagger_sd": float(np.std(b["g_dagger"]))}

    import numpyro

    out = _result(1.0 / base, 1.0 / ours, max(j1["wall_s"] - j2["wall_s"], 0.0), TARGET,
                  workload=f"NUTS on the RAR with nuisance and sigma_int, {source}: {cat.n_galaxies} galaxies, "
                           f"{cat.n_points} points, {len(model.shared) + 4 * cat.n_galaxies} parameters; "
                           f"{size['n_chains']} chains x ({size['n_warmup']} warm-up + {size['n_draws']} draws)",
                  baseline=f"numpyro {numpyro.__version__} NUTS on an ordinary numpyro model (sample per parameter, "
                           "plates over galaxies and points), diagonal mass matrix, chains sequential",
                  jaxcoh=f"jaxcoh.sampling.run_nuts (blackjax) on jaxcoh.curves.posterior.log_density, {mass_matrix} "
                         f"mass matrix, chains {DEFAULT_CHAIN_METHOD}",
                  units="seconds per effective sample of g_dagger (bulk ESS, warm-up included)",
                  jaxcoh_detail=side(j1, j2), baseline_detail=side(n1, n2), map_s=map_s, chains=size["n_chains"],
                  warmup=size["n_warmup"], draws=draws, density_check=check, source=source,
                  wall_4x1000_s=j1["wall_s"] if not quick else None, wall_goal_s=WALL_GOAL_S)
    out["ess_per_s"] = {"jaxcoh": ours, "baseline": base}
    # the same comparison per CPU second: what is left of the ratio without the chains' threads (numpyro runs its
    # chains one after another on a one-device CPU, the way its users get them)
    out["ratio_per_cpu_s"] = (j2["ess"] / j2["cpu_s"]) / (n2["ess"] / n2["cpu_s"])
    out["ratio_by"] = {k: (j2[k] / j2["wall_s"]) / (n2[k] / n2["wall_s"])
                       for k in ("ess", "ess_tail", "ess_sigma_int", "ess_tail_sigma_int")}
    return out


def format_b7(r: dict) -> str:
    j, b = r["jaxcoh_detail"], r["baseline_detail"]
    lines = [
        (f"B7 NUTS, ESS/s of g_dagger: jaxcoh {j['ess_per_s']:.3g} (ESS {j['ess_bulk']:.0f} in {j['wall_s']:.1f} s, "
         f"compile {j['compile_s']:.1f} s, {j['us_per_grad']:.0f} us/gradient, {j['divergences']} divergences), "
         f"numpyro {b['ess_per_s']:.3g} (ESS {b['ess_bulk']:.0f} in {b['wall_s']:.1f} s, compile "
         f"{b['compile_s']:.1f} s, {b['us_per_grad']:.0f} us/gradient, {b['divergences']} divergences): "
         f"{r['ratio']:.2f}x (target {r['target']:g}x: {'met' if r['met'] else 'not met'})"),
        (f"  per CPU second (all threads): jaxcoh {j['ess_per_cpu_s']:.3g} (CPU {j['cpu_s']:.1f} s), numpyro "
         f"{b['ess_per_cpu_s']:.3g} (CPU {b['cpu_s']:.1f} s): {r['ratio_per_cpu_s']:.2f}x"),
        ("  ESS/s ratios, bulk and tail: g_dagger {ess:.2f}x and {ess_tail:.2f}x, sigma_int {ess_sigma_int:.2f}x and "
         "{ess_tail_sigma_int:.2f}x (ESS bulk/tail: jaxcoh {jb:.0f}/{jt:.0f} and {js:.0f}/{jst:.0f}, numpyro "
         "{bb:.0f}/{bt:.0f} and {bs:.0f}/{bst:.0f})").format(
            **r["ratio_by"], jb=j["ess_bulk"], jt=j["ess_tail"], js=j["ess_bulk_sigma_int"],
            jst=j["ess_tail_sigma_int"], bb=b["ess_bulk"], bt=b["ess_tail"], bs=b["ess_bulk_sigma_int"],
            bst=b["ess_tail_sigma_int"]),
        (f"  {r['workload']}; MAP {r['map_s']:.1f} s; log densities agree up to a constant: "
         f"{r['density_check']['agree']} (spread {r['density_check']['spread']:.2e})"),
        (f"  g_dagger: jaxcoh {j['g_dagger_mean']:.4g} +- {j['g_dagger_sd']:.2g}, "
         f"numpyro {b['g_dagger_mean']:.4g} +- {b['g_dagger_sd']:.2g} m/s^2"),
    ]
    if r.get("wall_4x1000_s") is not None:
        lines.append(f"  first call (compile included) {r['wall_4x1000_s']:.1f} s, goal {r['wall_goal_s']:g} s")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json
    import os

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sparc", default=os.environ.get("JAXCOH_SPARC_DIR"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mass-matrix", default=None, help="default: that of jaxcoh sample")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    a = ap.parse_args()
    res = bench_b7(a.sparc, a.quick, a.mass_matrix)
    res["command"] = " ".join(["python", *sys.argv])
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2, default=float))
    print(format_b7(res))
