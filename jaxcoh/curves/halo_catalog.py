"""The halo catalogue of Li, Lelli, McGaugh & Schombert 2020 (ApJS 247, 31): every halo model of
:mod:`~jaxcoh.curves.halos` fitted to every galaxy, one row per galaxy and model, and the summary that compares them.

Each model is one :func:`jaxcoh.curves.fit` of the whole catalog (no shared parameters: every galaxy is its own
problem, solved side by side by the block Levenberg-Marquardt, from several starts per galaxy), with the model
built for the catalog's own points (:func:`~jaxcoh.curves.halos.make_halo_model`). Models are stored as they finish
(``out/models/``, :class:`jaxcoh.resumable.PartStore`): an interrupted catalogue resumes model by model.

Per galaxy: ``chi2_nu = chi2 / (n_points - n_params)`` with ``n_params`` the parameters that touch the galaxy's data
(V200, C200, Einasto's alpha, Upsilon_disk, Upsilon_bul only with a bulge, D, i: Li+20's count, which reproduces
their table's chi2_nu), NaN where ``n_points <= n_params`` (the published table leaves those blank), and
``bic = chi2 + n_params ln(n_points)``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..config import precision_name
from ..resumable import PartStore
from ..solvers import SolverOptions
from .comparison import catalog_digest
from .fitting import GALAXY_STARTS, CurveSettings, fit
from .halos import (
    dc14_x_held,
    derived_quantities,
    display_name,
    halo_model_names,
    make_halo_model,
    make_halo_stack,
    profile_and_prior,
)
from .inputs import stellar_mass
from .likelihood import Likelihood
from .models import get_model
from .nuisance import NUISANCE, Nuisance, apply_nuisance
from .objective import GALAXY_BLOCK
from .result import CurveFit
from .tables import curves_table

log = logging.getLogger("jaxcoh")

START_ITER, POLISH_ITER = 20, 60
HALO_SETTINGS = CurveSettings(
    likelihood=Likelihood(nuisance=True, loss="chi2"), n_starts=1, solver="block_lm",
    solver_options=(SolverOptions(max_iter=POLISH_ITER),), errors=True, galaxy_starts=GALAXY_STARTS["halo"],
    start_precision="float32", start_options=SolverOptions(max_iter=START_ITER), polish_off_bounds=True)
"""The catalogue's fits: MAP with the nuisance parameters, by the block Levenberg-Marquardt alone (no shared
parameters: an L-BFGS phase has nothing to do), 32 starts per galaxy, and a second polish from just inside a bound
for the galaxies whose best start is saturated at one (``polish_off_bounds``: on SPARC 2086 galaxy-models converged
instead of 2078, total chi^2 92807.14 instead of 92809.81, the warm catalogue 16.6 s in benchmark B6, 28.4x its scipy
loop; see benchmarks/RESULTS.md). Measured on SPARC (a fresh catalogue per number of starts; total chi^2 of the
twelve models above the lowest any of them found for each galaxy-model): 8 starts 705 above it, 12 galaxy-models by
more than 1 (ESO563-G021 under DC14-Flat 447.0 against 180.2, UGC11455 149.8 against 49.8); 16 starts 385; 32 starts
4.4 (2 by more than 1); 64 starts 1.5 (none); warm 5.6, 15.0 and 27.3 s for 8, 32 and 64. Every start of every
galaxy, the initial values first, gets 20 iterations in float32 (``start_options``, ``start_precision``), is compared
and tested in the catalog's precision, and the best start is polished by 60 more in it. Most galaxies settle within
15 iterations, the rest crawl toward a bound; 100 iterations for every start and solve cost about 4 times the time
for a total chi^2 lower by 15 (an earlier code's figure).

Measured on SPARC (twelve models, 175 galaxies, 2-core CPU, warm, all in one stacked fit): the float32 starts took
the catalogue from 13.4 s to 7.6 s with the total chi^2 lower by 11.5 (one galaxy-model 0.012
worse, three better, UGC02916 under Einasto-Flat by 10.5); with Einasto's finite-difference step of 1e-4 kept in
float32 (derivatives good to 1e-3) it was 13.6 higher, NGC2955 under Einasto-Flat 14.0 worse. Stacked with the
other models, Einasto's alpha took a dimension of every row's start design until it was declared inert on their
rows (:attr:`~jaxcoh.curves.models.CurveModel.inert_local`): the total chi^2 fell from 93754.0 to 93508.3, and a
catalogue fitted in two groups gives the one-group figures (93508.2655 against 93508.2636: the polish's last
iterations of galaxies still crawling). A polish of 20 + 60 iterations (the starts' 20 again, then 60 with the
damping reset) against 60 alone: warm in two groups 4.96-5.16 s against 5.49-5.8 s (4 runs each), total chi^2
93510.75 against 93508.25, 2074 galaxy-models CONVERGED against 2076 of 2100 (the crawlers, most of them not
stationary either way, get 20 + 60 iterations instead of 20 + 80)."""

COLUMNS = ("galaxy", "model", "upsilon_disk", "upsilon_bulge", "distance", "inclination", "V200", "C200", "rs",
           "log10_rho_s", "log10_M200", "alpha", "chi2", "chi2_nu", "n_points", "n_params", "bic", "status")
CURVE_COLUMNS = ("galaxy", "model", "R_kpc", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "V_bar", "V_model")
CURVE_DIGITS = 6  # significant digits of halo_curves.csv (12 models x every point: keep the file small)
BOUND_TOL = 1e-3  # a halo parameter within this relative distance of a bound is reported at it
CHI2_NU_GOOD = 2.0


def _galaxy_parameters(model_local: Sequence[str], cat: Catalog, nuisance: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(n_params [g], has_bulge [g])``: the parameters that touch each galaxy's points."""
    mask = np.asarray(cat.mask)
    has_disk = np.any(mask & (np.asarray(cat.V_disk) != 0), axis=1)
    has_bulge = np.any(mask & (np.asarray(cat.V_bul) != 0), axis=1)
    k = len(model_local) + (has_disk.astype(int) + has_bulge.astype(int) + 2 if nuisance else 0)
    return np.asarray(k, int) * np.ones(cat.n_galaxies, int), has_bulge


def _at_bound(fitted: CurveFit, spec, held: dict[str, np.ndarray | None]) -> np.ndarray:
    """``[g]`` the halo parameters of each galaxy within :data:`BOUND_TOL` of a bound, then the names of ``held``
    where it is True (DC14's X at an edge of its range), joined by '+'."""
    out = np.full(len(fitted.per_galaxy_points), "", dtype=object)
    flags = {}
    for p in spec:
        v = np.asarray(fitted.local[p.name], float)
        lo, hi = (math.log(p.lower), math.log(p.upper)) if p.scale == "log" else (p.lower, p.upper)
        y = np.log(v) if p.scale == "log" else v
        flags[p.name] = (np.abs(y - lo) <= BOUND_TOL * (hi - lo)) | (np.abs(y - hi) <= BOUND_TOL * (hi - lo))
    for name, near in {**flags, **{k: v for k, v in held.items() if v is not None}}.items():
        out = np.where(near, np.where(out == "", name, out + "+" + name), out)
    return out


def galaxy_rows(fitted: CurveFit, cat: Catalog, model, status: np.ndarray, improved: np.ndarray | None
                ) -> pd.DataFrame:
    """One row per galaxy with points (:data:`COLUMNS`, ``<parameter>_err`` for every fitted parameter, ``at_bound``
    and ``improved_by_starts``: whether the galaxy's first start settled in an optimum that another start beat, i.e.
    one start per galaxy would have missed it); ``status`` and ``improved`` are given for those galaxies only."""
    opts = fitted.likelihood
    k, has_bulge = _galaxy_parameters(model.local.names, cat, opts.nuisance)
    n = np.asarray(fitted.per_galaxy_points, int)
    chi2 = np.asarray(fitted.per_galaxy_chi2, float)
    nu = Nuisance(**{f: jnp.asarray(v, cat.dtype) for f, v in fitted.nuisance.items()})
    scaled = apply_nuisance(cat, nu)
    local = {k_: jnp.asarray(v, cat.dtype) for k_, v in fitted.local.items()}
    M_star = stellar_mass(scaled, nu.upsilon_disk, nu.upsilon_bulge)
    derived = derived_quantities(model, local, M_star, scaled.R_eff)
    dof = n - k
    cols: dict = {"galaxy": np.asarray(list(cat.names), dtype=object), "model": display_name(model)}
    for f in NUISANCE.names:
        cols[f] = np.asarray(fitted.nuisance[f], float)
    cols["upsilon_bulge"] = np.where(has_bulge, cols["upsilon_bulge"], np.nan)  # no bulge: not a parameter
    cols["V200"], cols["C200"] = np.asarray(fitted.local["V200"], float), np.asarray(fitted.local["C200"], float)
    cols.update({f: np.asarray(v, float) for f, v in derived.items()})
    cols.update(chi2=chi2, chi2_nu=np.where(dof > 0, chi2 / np.where(dof > 0, dof, 1), np.nan), n_points=n,
                n_params=k, bic=chi2 + k * np.log(np.maximum(n, 1)))
    for name in (*model.local.names, *(NUISANCE.names if opts.nuisance else ())):
        err = fitted.per_galaxy_stderr.get(name)
        err = np.full(len(n), np.nan) if err is None else np.asarray(err, float)
        cols[f"{name}_err"] = np.where(has_bulge, err, np.nan) if name == "upsilon_bulge" else err
    # (DC14's X at an edge of its range: a kink, where the stationarity test's gradient need not vanish)
    cols["at_bound"] = _at_bound(fitted, model.local, {"X": dc14_x_held(model, local, M_star)})
    table = pd.DataFrame(cols)[n > 0].reset_index(drop=True)
    table.insert(list(COLUMNS).index("status"), "status", status)
    table["improved_by_starts"] = improved if improved is not None else pd.NA
    return table


def model_curves(fitted: CurveFit, cat: Catalog, model) -> pd.DataFrame:
    """The fitted curve at every point (:data:`CURVE_COLUMNS`), to :data:`CURVE_DIGITS` significant digits."""
    table = curves_table(fitted, cat)[list(CURVE_COLUMNS)].copy()
    table["model"] = display_name(model)
    for c in CURVE_COLUMNS[2:]:
        v = table[c].to_numpy(float)
        table[c] = np.asarray([float(f"{x:.{CURVE_DIGITS}g}") for x in v]) if len(v) else v
    return table


def stack_catalog(cat: Catalog, n_models: int) -> Catalog:
    """``cat`` repeated ``n_models`` times along the galaxy axis (row ``m g + j`` is galaxy ``j``), padded to its
    longest curve: the catalog of a :func:`~jaxcoh.curves.halos.make_halo_stack` built for its first ``g`` rows."""
    return cat.take(np.tile(np.arange(cat.n_galaxies), n_models))


def model_slice(fitted: CurveFit, m: int, g: int, model) -> CurveFit:
    """Model ``m``'s rows ``[m g, (m + 1) g)`` of a stacked fit, as a :class:`CurveFit` of that model alone (its own
    per-galaxy parameters; the fit-level fields are the stack's)."""
    sl = slice(m * g, (m + 1) * g)
    ev = fitted.evaluation
    return dataclasses.replace(
        fitted, model=model.name, local={k: fitted.local[k][sl] for k in model.local.names},
        nuisance={k: v[sl] for k, v in fitted.nuisance.items()},
        per_galaxy_stderr={k: v[sl] for k, v in fitted.per_galaxy_stderr.items()},
        per_galaxy_chi2=fitted.per_galaxy_chi2[sl], per_galaxy_rms=fitted.per_galaxy_rms[sl],
        per_galaxy_points=fitted.per_galaxy_points[sl],
        evaluation=None if ev is None else type(ev)(*(np.asarray(a)[sl] for a in ev)),
        chi2=float(np.sum(fitted.per_galaxy_chi2[sl])), n_galaxies=g,
        n_points=int(np.sum(fitted.per_galaxy_points[sl])), description=model.description)


def _rows(flags: np.ndarray | None, m: int, g: int) -> np.ndarray | None:
    """Model ``m``'s entries ``[g]`` of a per-row array of a stacked fit."""
    return None if flags is None else np.asarray(flags)[m * g:(m + 1) * g]


def galaxy_status(fitted: CurveFit, m: int, g: int) -> np.ndarray:
    """``[g]`` each galaxy's status under model ``m``: CONVERGED where its own parameters pass the stationarity test
    of :mod:`~jaxcoh.curves.convergence` (the galaxies are independent problems: no shared parameters), else
    NOT_STATIONARY; the fit's own status where the test was not run."""
    conv = fitted.convergence
    stationary = _rows(None if conv is None else conv.galaxy_stationary(), m, g)
    if stationary is None:
        return np.full(g, fitted.status, dtype=object)
    return np.where(stationary, "CONVERGED", "NOT_STATIONARY").astype(object)


def model_parts(fitted: CurveFit, cat: Catalog, names: Sequence[str], wall_s: float
                ) -> dict[str, tuple[dict, dict[str, pd.DataFrame]]]:
    """What is stored of each model of a (stacked) fit: its fit statistics (JSON) and its rows and curves."""
    g = cat.n_galaxies
    starts, conv = fitted.galaxy_starts, fitted.convergence
    out = {}
    for m, name in enumerate(names):
        model = get_model(name)
        one = model_slice(fitted, m, g, model)
        multimodal = _rows(None if starts is None else starts.multimodal, m, g)
        improved = _rows(None if starts is None else starts.improved, m, g)
        status = galaxy_status(fitted, m, g)
        has_points = np.asarray(one.per_galaxy_points) > 0
        doc = {"name": name, "display_name": display_name(name), "fitted_with": list(names),
               "status": fitted.status, "wall_s": wall_s, "n_iter": fitted.n_iter, "objective": fitted.objective,
               "n_galaxies_multimodal": None if multimodal is None else int(np.sum(multimodal & has_points)),
               "n_galaxies_improved_by_starts": None if improved is None else int(np.sum(improved & has_points)),
               "n_galaxies_converged": int(np.sum((status == "CONVERGED") & has_points)),
               "galaxy_starts": None if starts is None else starts.to_dict(),
               "convergence": None if conv is None else conv.to_dict()}
        rows = galaxy_rows(one, cat, model, status[has_points], None if improved is None else improved[has_points])
        # the stationarity test's figure behind the status: the largest Newton step, in standard errors (one-sided
        # on DC14's kinks); CONVERGED at or below convergence.STATIONARITY_TOL
        step = _rows(None if conv is None else conv.galaxy_step, m, g)
        rows.insert(rows.columns.get_loc("status") + 1, "step_in_stderr",
                    np.full(int(has_points.sum()), np.nan) if step is None else np.asarray(step, float)[has_points])
        out[name] = (doc, {"rows": rows, "curves": model_curves(one, cat, model)})
    return out


@functools.lru_cache(maxsize=16)
def catalog_model(names: tuple[str, ...], shape: tuple[int, int], mask: bytes):
    """The curve model fitting ``names`` together to a catalog with real points ``mask`` (bytes of a ``[g, n]`` bool
    array): one halo model, or their stack, evaluated at the real points only. Kept, so that fitting the same
    catalog again reuses the compiled programs (a model is a static argument of the jitted solvers, hashed by
    identity)."""
    points = np.frombuffer(mask, dtype=bool).reshape(shape)
    model = (make_halo_model(*profile_and_prior(names[0]), points=points) if len(names) == 1
             else make_halo_stack(names, points))  # programs kept between processes: the names, points and code
    return dataclasses.replace(model, program=f"halo_catalog({names}, {shape}, {hashlib.sha256(mask).hexdigest()})")


# Relative cost of fitting one model of each profile, warm, in one of two threads (SPARC, every galaxy, float32
# starts, 2-core CPU; NFW = 1): estimated from the group times of five measured splits of the twelve models in two
# groups (4.1 and 6.05 s for the first, 5.0-5.5 s a group for the four balanced ones).
# Einasto's incomplete gamma (XLA's series and continued fraction, loops run to the slowest element, one core) and
# DC14's quadrature make the difference. DC14 lowered from 3.3 to 2.5 once its float32 quadrature took half the
# points (:data:`jaxcoh.halo_profiles.DC14_RULES`): the split then puts Einasto with Lucky13 and Burkert, 4.96-5.16 s
# warm (4 runs) against 5.17-6.14 s with 3.3's split (Einasto with coreNFW, pISO and Burkert).
PROFILE_COST = {"pISO": 1.0, "Burkert": 1.0, "NFW": 1.0, "Einasto": 3.6, "DC14": 2.5, "coreNFW": 1.0, "Lucky13": 1.0}


def fit_threads() -> int:
    """Groups of models fitted side by side: one per CPU core on the CPU backend (a fit's programs leave much of a
    second core idle: small loops, gathers), one on an accelerator (one device, one program at a time)."""
    if jax.default_backend() != "cpu":
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def balanced_groups(models: Sequence[str], k: int) -> list[list[str]]:
    """``models`` in at most ``k`` groups of about equal cost (:data:`PROFILE_COST`), a profile's models kept
    together (one copy of the profile's code per program), each group in the order of ``models``."""
    by_profile: dict[str, list[str]] = {}
    for m in models:
        by_profile.setdefault(profile_and_prior(m)[0], []).append(m)
    load, groups = [0.0] * k, [[] for _ in range(k)]
    for profile in sorted(by_profile, key=lambda p: -PROFILE_COST[p] * len(by_profile[p])):
        i = int(np.argmin(load))
        groups[i] += by_profile[profile]
        load[i] += PROFILE_COST[profile] * len(by_profile[profile])
    return [[m for m in models if m in g] for g in groups if g]


def fit_groups(models: Sequence[str], n_galaxies: int, models_per_fit: int | None, threads: int = 1
               ) -> list[list[str]]:
    """The models fitted together: ``models_per_fit`` at a time; None: in ``threads`` groups of about equal cost
    (:func:`balanced_groups`, all in one group with one thread) while a group's stacked catalog stays under the
    blocked objective's size, one at a time beyond."""
    if models_per_fit is None:
        if n_galaxies * len(models) >= 4 * GALAXY_BLOCK:
            models_per_fit = 1
        else:
            return balanced_groups(models, max(1, threads))
    k = max(1, int(models_per_fit))
    return [list(models[i:i + k]) for i in range(0, len(models), k)]


def fit_halo_models(cat: Catalog, models: Sequence[str] | None = None, settings: CurveSettings = HALO_SETTINGS, *,
                    out: str | Path | None = None, progress: Callable[[str], None] | None = None,
                    models_per_fit: int | None = None, threads: int | None = None) -> dict[str, dict]:
    """Fits every model of ``models`` (default: the twelve of Li et al.) to ``cat``; returns ``{name: {"doc":
    fit statistics, "rows": per-galaxy table, "curves": per-point table}}``.

    Models are fitted in groups (:func:`fit_groups`), each group one stacked fit
    (:func:`~jaxcoh.curves.halos.make_halo_stack`): the same problems solved side by side, compiled once, where
    twelve separate fits would compile twelve times (on a 2-core CPU each compilation costs more than the fit).
    ``threads`` groups are fitted at once, each in its own thread (default :func:`fit_threads`; the per-galaxy
    results do not depend on the grouping). With ``out``, each group's models are stored in ``out/models/`` when it
    finishes, and loaded from there when the same catalog and settings were fitted before (an interrupted catalogue
    resumes group by group; ``models_per_fit=1``: model by model)."""
    models = halo_model_names() if models is None else [get_model(m).name for m in models]
    for m in models:
        profile_and_prior(m)  # not a halo model: fails here, naming them
    threads = fit_threads() if threads is None else max(1, int(threads))
    store = PartStore(Path(out) / "models" if out is not None else None,
                      {"kind": "halos", "catalog": catalog_digest(cat), "settings": settings._asdict(),
                       "dtype": precision_name(cat.dtype), "models_per_fit": models_per_fit})
    cat = stack_catalog(cat, 1)  # padded to its longest curve, as every stack of it
    points = np.asarray(cat.mask, bool)
    parts = {name: loaded for name in models if (loaded := store.load(name, ("rows", "curves"))) is not None}
    groups = fit_groups(models, cat.n_galaxies, models_per_fit, threads)

    def fit_group(todo: list[str]) -> dict[str, tuple[dict, dict]]:
        model = catalog_model(tuple(todo), points.shape, points.tobytes())
        t0 = time.perf_counter()
        # groups side by side would share one progress line: per-iteration reports from the first group only
        report = settings.report and (workers == 1 or todo == pending[0])
        fitted = fit(model, stack_catalog(cat, len(todo)), settings._replace(report=report))
        done = model_parts(fitted, cat, todo, time.perf_counter() - t0)
        for name, (doc, tables) in done.items():
            store.save(name, doc, tables)
        return done

    pending = [todo for group in groups if (todo := [name for name in group if name not in parts])]
    workers = min(threads, len(pending))
    for name in models:
        if name in parts and progress is not None:
            progress(name)
    for done in _as_completed(workers, fit_group, pending):
        parts.update(done)
        if progress is not None:
            for name in done:
                progress(name)
    if store.resumed:
        log.info(f"resumed {', '.join(store.resumed)} from {store.directory}")
    return {name: {"doc": parts[name][0], **parts[name][1]} for name in models}


def _as_completed(workers: int, fn: Callable, jobs: list):
    """``fn(job)`` of every job, ``workers`` at a time in threads, yielded as each finishes (one worker: in the
    calling thread). Interrupted, no further job starts; those running finish (XLA cannot stop a running program)."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        for future in concurrent.futures.as_completed([pool.submit(fn, job) for job in jobs]):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def catalog_table(parts: dict[str, dict]) -> pd.DataFrame:
    """``halos.csv``: every model's rows, in the order fitted."""
    return pd.concat([p["rows"] for p in parts.values()], ignore_index=True)


def catalog_curves(parts: dict[str, dict]) -> pd.DataFrame:
    """``halo_curves.csv``: every model's fitted curve at every point."""
    return pd.concat([p["curves"] for p in parts.values()], ignore_index=True)


def _wins(bic: pd.DataFrame) -> dict[str, int]:
    """Galaxies each column has the lowest BIC of (rows with any NaN left out)."""
    full = bic.dropna()
    best = full.to_numpy().argmin(axis=1) if len(full) else np.zeros(0, int)
    return {m: int(np.sum(best == j)) for j, m in enumerate(bic.columns)}


def catalog_summary(parts: dict[str, dict], cat: Catalog | None = None) -> dict:
    """``halos.json``: per model N, median and mean chi2_nu, the fraction under 2, BIC wins (among every model and
    within its prior set), galaxies whose starts disagreed; the pairwise BIC preference matrix; cored against
    cuspy."""
    table = catalog_table(parts)
    names = {p["doc"]["display_name"]: n for n, p in parts.items()}
    bic = table.pivot(index="galaxy", columns="model", values="bic")[list(names)]
    chi2_nu = table.pivot(index="galaxy", columns="model", values="chi2_nu")[list(names)]
    wins = _wins(bic)
    by_prior = {}
    for prior in ("Flat", "LCDM"):
        cols = [d for d in names if d.endswith(f"-{prior}")]
        if cols:
            by_prior.update({f"{d}": w for d, w in _wins(bic[cols]).items()})
    models = {}
    for d, n in names.items():
        c = chi2_nu[d].to_numpy(float)
        ok = np.isfinite(c)
        doc = parts[n]["doc"]
        rows = parts[n]["rows"]
        models[d] = {
            "name": n, "N": int(ok.sum()), "n_galaxies": len(c), "n_without_dof": int((~ok).sum()),
            "median_chi2_nu": float(np.median(c[ok])) if ok.any() else math.nan,
            "mean_chi2_nu": float(np.mean(c[ok])) if ok.any() else math.nan,
            f"frac_chi2_nu_below_{CHI2_NU_GOOD:g}": float(np.mean(c[ok] < CHI2_NU_GOOD)) if ok.any() else math.nan,
            "wins_by_bic": wins[d], "wins_by_bic_within_prior_set": by_prior.get(d),
            "n_galaxies_improved_by_starts": doc.get("n_galaxies_improved_by_starts"),
            # (after the starts' own iterations, before polishing: includes starts still moving, an upper bound)
            "n_galaxies_starts_disagreed": doc.get("n_galaxies_multimodal"),
            "n_galaxies_converged": int((rows["status"] == "CONVERGED").sum()), "fitted_with": doc.get("fitted_with"),
            "n_at_bound": int((rows["at_bound"].fillna("") != "").sum()),
            "status_of_its_fit": doc["status"], "wall_s_of_its_fit": doc["wall_s"],
        }
    both = bic.dropna()
    prefer = {a: {b: int(np.sum(both[a] < both[b])) for b in names if b != a} for a in names}
    out = {"n_galaxies": int(bic.shape[0]), "n_galaxies_compared": int(both.shape[0]), "models": models,
           "pairwise_bic_preference": prefer,
           "pairwise_bic_preference_reads": "[a][b]: galaxies whose BIC under model a is lower than under b",
           "ranking_by_median_chi2_nu": sorted(models, key=lambda d: models[d]["median_chi2_nu"])}
    cored = [d for d in ("Burkert-Flat", "pISO-Flat", "DC14-Flat", "Lucky13-Flat") if d in names]
    if "NFW-Flat" in names and cored:
        out["cored_vs_nfw_flat"] = {d: {"better": prefer[d]["NFW-Flat"], "worse": prefer["NFW-Flat"][d]}
                                    for d in cored}
    if cat is not None:
        out.update(n_points=cat.n_points, dtype=precision_name(cat.dtype), data=cat.source)
    return out


def halo_catalog(cat: Catalog, models: Sequence[str] | None = None, settings: CurveSettings = HALO_SETTINGS, *,
                 out: str | Path | None = None, progress: Callable[[str], None] | None = None,
                 models_per_fit: int | None = None, threads: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Li et al.'s catalogue for ``cat``: ``(halos.csv table, halos.json summary)`` (see :func:`fit_halo_models`
    for ``out`` and resuming; :func:`catalog_curves` of the parts gives the fitted curves)."""
    parts = fit_halo_models(cat, models, settings, out=out, progress=progress, models_per_fit=models_per_fit,
                            threads=threads)
    summary = catalog_summary(parts, cat)
    summary["settings"] = {"solver": settings.solver, "galaxy_starts": settings.galaxy_starts,
                           "start_precision": settings.start_precision, "models_per_fit": models_per_fit,
                           "threads": threads,
                           "likelihood": settings.likelihood._asdict(), "errors": settings.errors}
    return catalog_table(parts), summary


def format_summary(summary: dict) -> str:
    """The catalogue's summary as a fixed-width table, best median chi2_nu first."""
    good = f"frac_chi2_nu_below_{CHI2_NU_GOOD:g}"
    lines = [f"{summary['n_galaxies']} galaxies, {summary.get('n_points', '?')} points, {summary.get('dtype', '')}",
             f"{'model':<14}{'N':>5}{'med chi2_nu':>13}{'mean':>9}{'<2':>7}{'BIC wins':>10}{'in set':>8}"
             f"{'improved':>10}{'at bound':>10}{'converged':>11}"]
    for d in summary["ranking_by_median_chi2_nu"]:
        m = summary["models"][d]
        mm = m["n_galaxies_improved_by_starts"]
        lines.append(f"{d:<14}{m['N']:>5}{m['median_chi2_nu']:>13.3f}{m['mean_chi2_nu']:>9.2f}{m[good]:>7.2f}"
                     f"{m['wins_by_bic']:>10}{m['wins_by_bic_within_prior_set'] or 0:>8}"
                     f"{'-' if mm is None else mm:>10}{m['n_at_bound']:>10}{m['n_galaxies_converged']:>11}")
    for d, v in summary.get("cored_vs_nfw_flat", {}).items():
        lines.append(f"{d} against NFW-Flat by BIC: better for {v['better']} galaxies, worse for {v['worse']}")
    return "\n".join(lines)
