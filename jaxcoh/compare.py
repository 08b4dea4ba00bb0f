"""The unified kernel judged on the rotation curves, beside the standard baselines, on the same points and loss.

:func:`apply_cuts` makes the sample (``standard``: the cuts of McGaugh, Lelli & Schombert 2016), :func:`compare`
fits every model jointly (:func:`jaxcoh.joint.fit_curves`) and returns the ``compare.json`` summary, a per-galaxy
table and a per-point table of the fitted curves (for plots).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .catalog import Catalog
from .config import precision_name
from .constants import (G_DAGGER_MLS16, G_DAGGER_MLS16_ERR, KMS2_PER_KPC_TO_MS2, RAR_SCATTER_LI18_DEX,
                        RAR_SCATTER_MLS16_DEX)
from .joint import JointFit, JointOptions, fit_curves
from .nuisance import Nuisance, apply_nuisance
from .results import arrays_digest, atomic_write_json, atomic_write_table, read_table, remove_other_keys
from .sweeps import sweep_key

COMPARE_MODELS = ("newtonian", "rar", "unified_additive", "unified_multiplicative", "per_galaxy_amplitude", "nfw")
CUTS = ("standard", "none")
MAX_RELATIVE_ERROR = 0.1  # standard cuts keep points with errV / Vobs < 0.1
MLS16_SAMPLE = {"n_galaxies": 153, "n_points": 2693}  # what McGaugh, Lelli & Schombert (2016) kept
log = logging.getLogger("jaxcoh")


def apply_cuts(cat: Catalog, cuts: str = "standard") -> tuple[Catalog, dict]:
    """The sample of ``cuts`` and a report of what each cut removed.

    ``standard``: quality < 3, inclination >= 30 degrees, then points with ``errV / Vobs < 0.1`` (galaxies left
    without a point are dropped). ``none``: every galaxy and point.
    """
    if cuts not in CUTS:
        raise ValueError(f"cuts must be one of {CUTS}, got {cuts!r}")
    report = {"cuts": cuts, "input": {"n_galaxies": cat.n_galaxies, "n_points": cat.n_points}, "steps": []}
    if cuts == "standard":
        def step(label, new):
            report["steps"].append({"cut": label, "n_galaxies": new.n_galaxies, "n_points": new.n_points})
            return new

        cat = step("quality < 3", cat.select(quality_max=2))
        cat = step("inclination >= 30 deg", cat.select(inclination_min=30.0))
        V, e = np.asarray(cat.V_obs), np.asarray(cat.e_V_obs)
        precise = e < MAX_RELATIVE_ERROR * np.abs(np.where(V != 0, V, np.inf))
        cat = cat.select_points(precise)
        cat = step("errV / Vobs < 0.1", cat.select(min_points=1))
        report["published"] = {"reference": "McGaugh, Lelli & Schombert 2016", **MLS16_SAMPLE}
    report.update(n_galaxies=cat.n_galaxies, n_points=cat.n_points)
    return cat, report


def _model_summary(fit: JointFit) -> dict:
    """What compare.json says of one fit (``frac_better_than_newtonian`` is added once every model is fitted)."""
    stats = fit.statistics()
    galaxies = fit.per_galaxy_points > 0
    out = {
        "description": fit.description,
        "params": fit.params,
        "stderr": fit.stderr,
        **stats,
        "median_rms_kms": float(np.median(fit.per_galaxy_rms[galaxies])),
        "rar_scatter_dex": fit.rar_scatter_dex,
        "objective": fit.objective,
        "wall_s": fit.wall_s,
        "status": fit.status,
        "n_iter": fit.n_iter,
        "n_starts": fit.n_starts,
    }
    if fit.errors is not None:
        out["at_bound"] = [n for n in fit.errors.at_bound if "[" not in n]
        out["derived"] = fit.errors.derived
        out["degenerate_directions"] = [d for d in fit.errors.degenerate if not any("[" in k for k in d)]
        out["hessian_positive_definite"] = fit.errors.positive_definite
    if fit.options.nuisance:
        out["nuisance_median"] = {k: float(np.median(v[galaxies])) for k, v in fit.nuisance.items()}
    if fit.model == "rar":
        g, e = fit.params["g_dagger"], fit.stderr["g_dagger"]
        out["published"] = {
            "reference": "McGaugh, Lelli & Schombert 2016",
            "g_dagger": G_DAGGER_MLS16, "g_dagger_err": G_DAGGER_MLS16_ERR, "rar_scatter_dex": RAR_SCATTER_MLS16_DEX,
            "rar_scatter_dex_nuisance_fitted": RAR_SCATTER_LI18_DEX,
            "rar_scatter_reference": "0.13 dex with fixed Upsilon, D, i (McGaugh, Lelli & Schombert 2016); 0.057 dex "
                                     "with them fitted per galaxy (Li, Lelli, McGaugh & Schombert 2018)",
            "g_dagger_within_published_error": bool(abs(g - G_DAGGER_MLS16) <= G_DAGGER_MLS16_ERR),
            "g_dagger_pull": float((g - G_DAGGER_MLS16) / math.hypot(G_DAGGER_MLS16_ERR, e if e == e else 0.0)),
        }
    return out


def per_galaxy_table(fit: JointFit, names: Sequence[str]) -> pd.DataFrame:
    """One row per galaxy: nuisance values (and errors), per-galaxy parameters, chi^2, RMS [km/s], points."""
    keep = fit.per_galaxy_points > 0
    cols: dict = {"galaxy": np.asarray(list(names), dtype=object), "model": fit.model}
    for k, v in {**fit.nuisance, **fit.local}.items():
        cols[k] = v
        if k in fit.per_galaxy_stderr:
            cols[f"{k}_err"] = fit.per_galaxy_stderr[k]
    cols.update(chi2=fit.per_galaxy_chi2, rms_kms=fit.per_galaxy_rms, n_points=fit.per_galaxy_points)
    return pd.DataFrame(cols)[keep].reset_index(drop=True)


def curves_table(fit: JointFit, cat: Catalog) -> pd.DataFrame:
    """One row per point: the data at the fitted nuisance values (component speeds with sqrt(Upsilon) applied, so
    ``V_bar^2 = V_gas|V_gas| + V_disk^2 + V_bul^2``), the model, and the accelerations [m/s^2]."""
    ev = fit.evaluation
    mask = np.asarray(cat.mask)
    nu = Nuisance(**{k: jnp.asarray(v, cat.dtype) for k, v in fit.nuisance.items()})
    scaled = apply_nuisance(cat, nu)  # the fit's own rescaling of the components (distance)
    R = np.asarray(ev.R)
    V_obs, V_model, V_bar2 = np.asarray(ev.V_obs), np.asarray(ev.V_model), np.asarray(ev.V_bar2)
    to_si = KMS2_PER_KPC_TO_MS2
    cols = {
        "galaxy": np.broadcast_to(np.asarray(list(cat.names), dtype=object)[:, None], mask.shape),
        "model": np.full(mask.shape, fit.model, dtype=object),
        "R_kpc": R,
        "V_obs": V_obs,
        "e_V_obs": np.asarray(ev.e_V),
        "V_gas": np.asarray(scaled.V_gas),
        "V_disk": np.asarray(scaled.V_disk) * np.sqrt(fit.nuisance["upsilon_disk"])[:, None],
        "V_bul": np.asarray(scaled.V_bul) * np.sqrt(fit.nuisance["upsilon_bulge"])[:, None],
        "V_bar": np.sign(V_bar2) * np.sqrt(np.abs(V_bar2)),
        "V_model": V_model,
        "g_bar": V_bar2 / R * to_si,
        "g_obs": V_obs**2 / R * to_si,
        "g_model": np.sign(V_model) * V_model**2 / R * to_si,
    }
    return pd.DataFrame({k: np.asarray(v)[mask] for k, v in cols.items()})


def compare(
    cat: Catalog,
    *,
    models: Sequence[str] = COMPARE_MODELS,
    options: JointOptions = JointOptions(),
    n_starts: int = 4,
    seed: int = 0,
    solver: str = "auto",
    errors: bool = True,
    progress: Callable[[str], None] | None = None,
    out: str | Path | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Fits every model of ``models`` to ``cat`` (already cut) jointly; returns ``(compare.json content,
    per-galaxy table, per-point curves table)``. Newtonian is always fitted: it is every model's reference.

    With ``out``, each model's results are written atomically to ``out/models/`` as soon as it is fitted, and a
    re-run with the same catalog and arguments loads them instead of fitting again (an interrupted comparison
    resumes).
    """
    unknown = [m for m in models if m not in COMPARE_MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose among {COMPARE_MODELS}")
    order = ["newtonian", *[m for m in models if m != "newtonian"]]
    names = list(cat.names)
    store = _ModelStore(out, {"catalog": catalog_digest(cat), "options": options._asdict(), "n_starts": n_starts,
                              "seed": seed, "solver": solver, "errors": errors, "dtype": precision_name(cat.dtype)})
    parts: dict[str, dict] = {}
    for name in order:
        part = store.load(name)
        if part is None:
            fit = fit_curves(name, cat, options=options, n_starts=n_starts, seed=seed, solver=solver,
                             errors=errors)
            part = {"summary": _model_summary(fit), "per_galaxy_chi2": fit.per_galaxy_chi2,
                    "per_galaxy": per_galaxy_table(fit, names), "curves": curves_table(fit, cat)}
            store.save(name, part)
        parts[name] = part
        if progress is not None:
            progress(name)
    if store.resumed:
        log.info(f"resumed {', '.join(store.resumed)} from {store.directory}")
    galaxies = np.asarray(cat.galaxy_mask) & (np.asarray(cat.mask).sum(axis=1) > 0)
    reference = np.asarray(parts["newtonian"]["per_galaxy_chi2"])[galaxies]
    shown = [name for name in order if name in models]
    summary = {
        "n_galaxies": cat.n_galaxies,
        "n_points": cat.n_points,
        "dtype": precision_name(cat.dtype),
        "data": cat.source,
        "options": options._asdict(),
        "solver": solver,
        "n_starts": n_starts,
        "models": {name: {**parts[name]["summary"], "frac_better_than_newtonian": float(np.mean(
            np.asarray(parts[name]["per_galaxy_chi2"])[galaxies] < reference))} for name in shown},
    }
    ranked = sorted(summary["models"], key=lambda m: summary["models"][m]["bic"])
    summary["ranking_by_bic"] = ranked
    per_galaxy = pd.concat([parts[m]["per_galaxy"] for m in shown], ignore_index=True)
    curves = pd.concat([parts[m]["curves"] for m in shown], ignore_index=True)
    return summary, per_galaxy, curves


def catalog_digest(cat: Catalog) -> str:
    """A hash of a catalog's names and arrays: results computed from another catalog are never reused."""
    return arrays_digest(jax.tree_util.tree_leaves(cat), "\n".join(cat.names))


def _nan_for_null(obj):
    """JSON's null back to the NaN it stood for (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_for_null(v) for v in obj]
    return math.nan if obj is None else obj


class _ModelStore:
    """Per-model results of one comparison under ``out/models/<key>-<model>.*``: two tables, then the JSON summary,
    which marks the model as done (each file written atomically)."""

    def __init__(self, out: str | Path | None, arguments: dict):
        self.directory = Path(out) / "models" if out is not None else None
        self.key = sweep_key({"kind": "compare", **arguments})
        self.resumed: list[str] = []
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stale = remove_other_keys(self.directory, self.key)
            if stale:
                log.info(f"removed {stale} files of a comparison with other arguments from {self.directory}")

    def _path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{self.key}-{name}{suffix}"

    def load(self, name: str) -> dict | None:
        if self.directory is None or not self._path(name, ".json").is_file():
            return None
        saved = json.loads(self._path(name, ".json").read_text())
        self.resumed.append(name)
        return {"summary": _nan_for_null(saved["summary"]),
                "per_galaxy_chi2": np.asarray(saved["per_galaxy_chi2"], float),
                "per_galaxy": read_table(self._path(name, ".per_galaxy.csv")),
                "curves": read_table(self._path(name, ".curves.csv"))}

    def save(self, name: str, part: dict) -> None:
        if self.directory is None:
            return
        atomic_write_table(self._path(name, ".per_galaxy.csv"), part["per_galaxy"])
        atomic_write_table(self._path(name, ".curves.csv"), part["curves"])
        atomic_write_json(self._path(name, ".json"), {"summary": part["summary"],
                                                       "per_galaxy_chi2": part["per_galaxy_chi2"]})


def format_compare(summary: dict) -> str:
    """The comparison as a fixed-width table, best BIC first, with the sample and the published RAR beside it."""
    lines = [f"{summary['n_galaxies']} galaxies, {summary['n_points']} points, {summary['dtype']}, "
             f"nuisance {'fitted' if summary['options']['nuisance'] else 'fixed'}, loss {summary['options']['loss']}",
             f"{'model':<24}{'chi2/nu':>9}{'dBIC':>11}{'med RMS':>9}{'>Newt':>7}{'RAR dex':>9}{'wall s':>8}  status"]
    models = summary["models"]
    best = min(m["bic"] for m in models.values())
    for name in summary["ranking_by_bic"]:
        m = models[name]
        lines.append(f"{name:<24}{m['chi2_nu']:>9.3f}{m['bic'] - best:>11.1f}{m['median_rms_kms']:>9.2f}"
                     f"{m['frac_better_than_newtonian']:>7.2f}{m['rar_scatter_dex']:>9.3f}{m['wall_s']:>8.1f}  "
                     f"{m['status']}")
    if "rar" in models:
        m, p = models["rar"], models["rar"]["published"]
        lines.append(f"RAR g_dagger = {m['params']['g_dagger']:.3e} +- {m['stderr']['g_dagger']:.1e} m/s^2 "
                     f"(published {p['g_dagger']:.2e} +- {p['g_dagger_err']:.2e}); scatter {m['rar_scatter_dex']:.3f} "
                     f"dex (published {p['rar_scatter_dex']:.2f} with fixed Upsilon, D, i; "
                     f"{p['rar_scatter_dex_nuisance_fitted']:.3f} with them fitted)")
    for name, m in models.items():
        if m.get("at_bound"):
            lines.append(f"{name}: at a bound: {', '.join(m['at_bound'])}")
    return "\n".join(lines)


def format_fit(result: dict) -> str:
    """One fit's parameters with errors, statistics and what could not be determined."""
    lines = [f"{result['model']}: {result['n_galaxies']} galaxies, {result['n_points']} points, {result['dtype']}, "
             f"{result['status']} after {result['n_iter']} iterations ({result['wall_s']:.1f} s)",
             f"chi2 = {result['chi2']:.2f}, dof = {result['dof']}, chi2/nu = {result['chi2_nu']:.3f}, "
             f"BIC = {result['bic']:.1f}, RAR scatter = {result['rar_scatter_dex']:.3f} dex"]
    for k, v in result["params"].items():
        e = result["stderr"].get(k, math.nan)
        lines.append(f"  {k:<14}{v:>14.6g}  +- {e:.3g}" if e == e else f"  {k:<14}{v:>14.6g}  (not determined)")
    errors = result.get("errors") or {}
    for k, d in errors.get("derived", {}).items():
        lines.append(f"  {k:<14}{d['value']:>14.6g}  +- {d['stderr']:.3g}  (derived)")
    for d in errors.get("degenerate_directions", []):
        if not any("[" in k for k in d):
            lines.append("  degenerate: " + " + ".join(f"{c:g} {k}" for k, c in d.items()) + " = const")
    if errors.get("at_bound"):
        lines.append("  at a bound: " + ", ".join(errors["at_bound"]))
    return "\n".join(lines)
