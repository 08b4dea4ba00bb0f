"""The seed's table, reproduced and then beaten: at the seed's parameters, by jaxcoh's global fit, and held out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..coherence import Hyperparameters
from ..config import precision_name
from ..seed import SEED_FITS
from .crossval import cross_validation, fit_and_cross_validate, fold_weights
from .derivation import FMissing, derive_f_missing, f_missing_table
from .fitting import FitSettings, fit_result, starts
from .models import get_model
from .objective import fit_data
from .union import ModelUnion, evaluate_compiled, predict

SEED_MODELS = tuple(SEED_FITS)


def reproduce(
    catalog: Catalog,
    *,
    recipe: str = "legacy",
    hyper: Hyperparameters = Hyperparameters(),
    models: Sequence[str] = SEED_MODELS,
    settings: FitSettings = FitSettings(n_starts=128),
    cv_folds: int = 5,
    cv_repeats: int = 5,
    progress: Callable[[str], None] | None = None,  # called with each model's name once it is done
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Runs the seed's comparison on ``catalog``; returns the ``reproduce.json`` content, the F_missing table and the
    predictions table (``galaxy, model, F_missing, F_pred``: every in-sample galaxy at each model's best fit)."""
    cv_settings = settings._replace(n_starts=max(settings.n_starts // 4, 8))
    fm: FMissing = derive_f_missing(hyper, catalog, recipe)
    data = fit_data(fm)
    table = f_missing_table(fm, catalog)
    ones = jnp.ones_like(data.target)  # unit weights: the metrics at the seed's parameters share the fit's program
    out = {
        "sample_size": int(jnp.sum(data.sample)),
        "dtype": precision_name(catalog.dtype),
        "recipe": recipe,
        "data": catalog.source,
        "n_galaxies": catalog.n_galaxies,
        "n_points": catalog.n_points,
        "hyperparameters": {k: float(v) for k, v in Hyperparameters(*hyper)._asdict().items()},
        "references": {"sigma_ref": float(data.x.sigma_ref), "R_ref": float(data.x.R_ref)},
        "solver": {"name": settings.solver, "n_starts": settings.n_starts, **settings.options._asdict()},
        "cv_design": {"n_folds": cv_folds, "n_repeats": cv_repeats, "seed": settings.seed,
                      "n_starts": cv_settings.n_starts},
        "models": {},
    }

    # Every model's fit and cross-validation run the same programs (:class:`ModelUnion`): compiled once, not twice
    # per model (a first run's compilation was most of its time).
    union = ModelUnion(tuple(get_model(name) for name in models))
    held = jnp.asarray(fold_weights(np.asarray(data.sample), cv_folds, cv_repeats, cv_settings.seed))

    def one(name: str) -> tuple[dict, pd.DataFrame]:
        model = get_model(name)
        i = union.index(model)
        entry: dict = {"formula": model.formula}
        published = SEED_FITS.get(name)
        if published is not None:
            entry["seed"] = {"params": published["params"], "rms": published["rms"], "r": published["r"]}
            at = evaluate_compiled(union, model, published["params"], data, ones)
            entry["at_seed_params"] = {k: float(v) for k, v in at.items()}
        t0 = time.perf_counter()  # the fit's wall time includes the cross-validation solved beside it
        z_fit = starts(model, settings, catalog.dtype)
        z_cv = starts(model, cv_settings, catalog.dtype)
        res, scores = fit_and_cross_validate(union, settings.solver, settings.options, i, union.pack(model, z_fit),
                                             union.pack(model, z_cv), data, held)
        res = res._replace(z=union.unpack(model, res.z))
        result = fit_result(model, data, settings, z_fit, ones, res, t0=t0, names=list(catalog.names), union=union)
        entry["fit"] = result.to_dict()
        F_pred = np.asarray(predict(union, i, union.pack(model, {k: np.asarray(v, catalog.dtype)
                                                                 for k, v in result.params.items()}), data))
        keep = np.asarray(data.sample)
        prediction = pd.DataFrame({"galaxy": np.asarray(list(catalog.names), dtype=object)[keep], "model": name,
                                   "F_missing": np.asarray(data.target)[keep], "F_pred": F_pred[keep]})
        if published is not None:
            entry["fit"]["rms_minus_seed_rms"] = result.metrics["rms"] - entry["at_seed_params"]["rms"]
        entry["cv"] = cross_validation(scores, cv_folds, cv_repeats).to_dict()
        return entry, prediction

    predictions = []
    for name in models:
        out["models"][name], prediction = one(name)
        predictions.append(prediction)
        if progress:
            progress(name)
    return out, table, pd.concat(predictions, ignore_index=True)


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def format_table(result: dict) -> str:
    """The seed's table beside jaxcoh's, one row per model, readable at a glance.

    On the mock catalog the seed's columns are its published SPARC figures: labelled so and bracketed, and a line
    above the table says the run checks the pipeline against a known truth, so nobody reads them as a failed
    reproduction."""
    kind = result.get("data_kind")
    reference_only = kind not in (None, "sparc")  # the mock, or a user's tables (--data): not the seed's sample
    seed_rms = "SPARC (seed) RMS" if reference_only else "seed RMS"
    wr, wc = len(seed_rms), 7

    def seed_col(x, digits: int, width: int) -> str:
        text = _fmt(x, digits)
        return (f"[{text}]" if reference_only and x is not None else text).rjust(width)

    head = (f"{'model':<20} {seed_rms:>{wr}} {'seed r':>{wc}} | {'at seed RMS':>11} {'r':>6} | "
            f"{'jaxcoh fit RMS':>14} {'r':>6} | {'held-out RMS':>12} {'r':>6}")
    lines = [
        f"F_missing models on {result['data']}: {result['sample_size']} galaxies in the fit sample, "
        f"recipe '{result['recipe']}', {result['dtype']}",
    ]
    if kind == "mock":
        lines += ["Mock catalog: this run checks the pipeline end to end against a known truth. The [bracketed]",
                  "SPARC (seed) columns are the seed's published SPARC figures, for reference only: not comparable",
                  "with the mock numbers beside them. Give --sparc DIR to reproduce the seed's table."]
    elif reference_only:
        lines += ["Galaxies from --data tables. The [bracketed] SPARC (seed) columns are the seed's published SPARC",
                  "figures, for reference only: comparable only if these tables hold SPARC itself."]
    lines += [head, "-" * len(head)]
    notes = []
    for name, e in result["models"].items():
        seed = e.get("seed", {})
        at = e.get("at_seed_params", {})
        fit, cv = e["fit"], e["cv"]
        lines.append(
            f"{name:<20} {seed_col(seed.get('rms'), 2, wr)} {seed_col(seed.get('r'), 3, wc)} | "
            f"{_fmt(at.get('rms')):>11} {_fmt(at.get('r')):>6} | {_fmt(fit['rms'], 4):>14} {_fmt(fit['r']):>6} | "
            f"{_fmt(cv['rms']) + ' +- ' + _fmt(cv['rms_std'], 2):>12} {_fmt(cv['r']):>6}"
        )
        for d in fit.get("degenerate_directions", []):
            combo = ", ".join(f"{c:+.3g} {k}" for k, c in d.items())
            notes.append(f"  {name}: the data do not constrain the direction ({combo}); individual errors withheld")
        for k, v in fit.get("derived", {}).items():
            err = v.get("stderr")
            err_txt = f"+- {err:.3g}" if err is not None and math.isfinite(err) else "(error not identifiable)"
            notes.append(f"  {name}: identifiable combination {k} = {v['value']:.4g} {err_txt}")
        if fit.get("at_bound"):
            notes.append(f"  {name}: at a bound of the seed's range: {', '.join(fit['at_bound'])}")
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)
