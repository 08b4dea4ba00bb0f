"""Every table a result directory allows, for a paper: which files it holds decides which tables are made.

- ``jaxcoh reproduce``: ``reproduce.json`` -> ``f_missing`` (each model's published seed parameters, the refit with
  standard errors, the cross-validated RMS and r);
- ``jaxcoh compare``: ``compare.json`` -> ``models`` (chi^2, dof, BIC and AIC differences to the best model, the shared
  parameters with standard errors; ordered by BIC);
- ``jaxcoh fit``: ``fit.json`` -> ``fit`` (the parameters with standard errors, then the fit's statistics);
- ``jaxcoh halos``: ``halos.json`` -> ``halos`` (per model: galaxies, median and mean reduced chi^2, the fraction
  below 2, BIC wins, galaxies converged);
- ``jaxcoh sample``: ``summary.csv`` -> ``posterior`` (ArviZ's summary of the shared parameters: mean and sd, the
  94% HDI, bulk and tail ESS, R-hat);
- ``jaxcoh sweep``: ``sweep.json`` -> ``sweep`` (a bootstrap's intervals per parameter, a profile's interval; none for
  a grid).

Each table is written as LaTeX (a booktabs ``tabular``, through pandas' Styler) and as aligned plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from ..results import ResultFormatError, atomic_write_text, read_result_json, read_result_table
from ._measurement import escape, measurement, number, symbol

FORMATS = ("tex", "txt")
SUMMARY_COLUMNS = ("parameter", "mean", "sd", "hdi_3%", "hdi_97%", "ess_bulk", "ess_tail", "r_hat")
LOOKED_FOR = ("reproduce.json (jaxcoh reproduce), compare.json (jaxcoh compare), fit.json (jaxcoh fit), halos.json "
              "(jaxcoh halos), summary.csv (jaxcoh sample) or sweep.json (jaxcoh sweep, bootstrap or profile)")


def _fixed(value, decimals: int, latex: bool) -> str:
    if value is None or value != value:
        return "--"
    return f"${value:.{decimals}f}$" if latex else f"{value:.{decimals}f}"


def _cell(text: str, latex: bool) -> str:
    return escape(text) if latex else str(text)


def _parameters(params: dict, errors: dict, latex: bool, sep: str = "; ") -> str:
    return sep.join(f"{symbol(k, latex, unit=False)} = {measurement(v, (errors or {}).get(k), latex)}"
                    for k, v in params.items()) or "--"


def _statistics(m: dict, latex: bool) -> dict:
    chi2 = r"$\chi^2$" if latex else "chi2"
    return {chi2: _fixed(m["chi2"], 1, latex), r"$\nu$" if latex else "dof": str(m["dof"]),
            r"$\chi^2_\nu$" if latex else "chi2/nu": _fixed(m["chi2_nu"], 3, latex)}


def models_table(summary: dict, latex: bool = True) -> pd.DataFrame:
    """``jaxcoh compare``'s models, best BIC first."""
    models = sorted(summary["models"].items(), key=lambda kv: kv[1]["bic"])
    best_bic = min(m["bic"] for _, m in models)
    best_aic = min(m["aic"] for _, m in models)
    rows = []
    for name, m in models:
        rows.append({"Model": _cell(name, latex), "$k$" if latex else "k": str(m["n_params"]), **_statistics(m, latex),
                     r"$\Delta$BIC" if latex else "dBIC": _fixed(m["bic"] - best_bic, 1, latex),
                     r"$\Delta$AIC" if latex else "dAIC": _fixed(m["aic"] - best_aic, 1, latex),
                     "Shared parameters": _parameters(m["params"], m.get("stderr"), latex)})
    return pd.DataFrame(rows)


def fit_table(summary: dict, latex: bool = True) -> pd.DataFrame:
    """``jaxcoh fit``'s parameters (fixed ones marked), then its statistics."""
    rows = [(symbol(k, latex), measurement(v, (summary.get("stderr") or {}).get(k), latex))
            for k, v in summary["params"].items()]
    rows += [(symbol(k, latex), f"{number(v, latex=latex)} (fixed)") for k, v in (summary.get("fixed") or {}).items()]
    rows += list(_statistics(summary, latex).items())
    rows += [("BIC", _fixed(summary["bic"], 1, latex)),
             ("RAR scatter [dex]", _fixed(summary.get("rar_scatter_dex"), 3, latex)),
             ("Galaxies", str(summary["n_galaxies"])), ("Points", str(summary["n_points"])),
             ("Status", _cell(summary["status"], latex))]
    return pd.DataFrame(rows, columns=["Quantity", _cell(f"{summary['model']}", latex)])


def halos_table(summary: dict, latex: bool = True) -> pd.DataFrame:
    """``jaxcoh halos``'s models, in its order."""
    chi = r"$\chi^2_\nu$" if latex else "chi2/nu"
    rows = [{"Model": _cell(name, latex), "$N$" if latex else "N": str(m["N"]),
             f"median {chi}": _fixed(m["median_chi2_nu"], 3, latex), f"mean {chi}": _fixed(m["mean_chi2_nu"], 2, latex),
             r"$f(\chi^2_\nu < 2)$" if latex else "frac chi2/nu < 2": _fixed(m["frac_chi2_nu_below_2"], 2, latex),
             "BIC wins": str(m["wins_by_bic"]), "converged": str(m["n_galaxies_converged"])}
            for name, m in summary["models"].items()]
    return pd.DataFrame(rows)


def posterior_table(summary: pd.DataFrame, latex: bool = True) -> pd.DataFrame:
    """``jaxcoh sample``'s posterior summary of the shared parameters."""
    rows = []
    for _, r in summary.iterrows():
        hdi = f"[{number(r['hdi_3%'], latex=latex)}, {number(r['hdi_97%'], latex=latex)}]"
        rows.append({"Parameter": symbol(str(r["parameter"]), latex), "mean $\\pm$ sd" if latex else "mean +- sd":
                     measurement(r["mean"], r["sd"], latex), "94\\% HDI" if latex else "94% HDI":
                     hdi, "ESS bulk": _fixed(r["ess_bulk"], 0, latex),
                     "ESS tail": _fixed(r["ess_tail"], 0, latex), r"$\hat R$" if latex else "R-hat":
                     _fixed(r["r_hat"], 3, latex)})
    return pd.DataFrame(rows)


def f_missing_table(summary: dict, latex: bool = True) -> pd.DataFrame:
    """``jaxcoh reproduce``'s models: the seed's published fit, the refit, and its cross-validation."""
    rows = []
    for name, m in summary["models"].items():
        model = _cell(name, latex)
        seed, fit, cv = m["seed"], m["fit"], m.get("cv")
        rows.append((model, "seed (published)", _parameters(seed["params"], {}, latex), _fixed(seed["rms"], 2, latex),
                     _fixed(seed["r"], 3, latex)))
        rows.append((model, "refit", _parameters(fit["params"], fit.get("stderr"), latex), _fixed(fit["rms"], 2, latex),
                     _fixed(fit["r"], 3, latex)))
        if cv:
            folds = f"{cv['n_repeats']} x {cv['n_folds']}-fold CV"
            rows.append((model, folds, "--", measurement(cv["rms"], cv.get("rms_std"), latex),
                         measurement(cv["r"], cv.get("r_std"), latex)))
    return pd.DataFrame(rows, columns=["Model", "Fit", "Parameters", "RMS", "$r$" if latex else "r"])


def sweep_table(summary: dict, latex: bool = True) -> pd.DataFrame | None:
    """``jaxcoh sweep``'s parameter intervals: a bootstrap's (or multi-start's) full-sample fit, median, 68% and 95%
    intervals and standard deviation per parameter; a profile's best value and 68% interval on its grid; None for a
    grid (its result is a map: ``jaxcoh plot``)."""
    def interval(pair) -> str:
        return f"[{number(pair[0], latex=latex)}, {number(pair[1], latex=latex)}]"

    if "intervals" in summary:
        full = summary.get("full_sample_fit") or {}
        rows = [{"Parameter": symbol(k, latex), "full sample": number(full.get(k), latex=latex),
                 "median": number(v["median"], latex=latex), "68% interval" if not latex else "68\\% interval":
                 interval(v["interval_68"]), "95% interval" if not latex else "95\\% interval":
                 interval(v["interval_95"]), "sd": number(v["std"], 2, latex=latex)}
                for k, v in summary["intervals"].items()]
        return pd.DataFrame(rows)
    if summary["kind"] == "profile":
        (axis,) = summary["axes"]
        return pd.DataFrame([{"Parameter": symbol(axis, latex), "best": number(summary["best"][axis], latex=latex),
                              "68% interval on the grid" if not latex else "68\\% interval on the grid":
                              interval(summary["interval_68_on_grid"]), "grid points": str(summary["n_rows"])}])
    return None


# (file, table name, builder, reader) in the order tables are made
SOURCES: tuple[tuple[str, str, Callable, Callable], ...] = (
    ("reproduce.json", "f_missing", f_missing_table, read_result_json),
    ("compare.json", "models", models_table, read_result_json),
    ("fit.json", "fit", fit_table, read_result_json),
    ("halos.json", "halos", halos_table, read_result_json),
    ("summary.csv", "posterior", posterior_table, lambda p: read_result_table(p, SUMMARY_COLUMNS)),
    ("sweep.json", "sweep", sweep_table, read_result_json),
)


def result_tables(result_dir: str | Path, latex: bool = True) -> dict[str, pd.DataFrame]:
    """Every table ``result_dir`` allows, by name; :class:`ResultFormatError` naming the file for a malformed one,
    and when there is none."""
    return {name: tables[latex] for name, tables in _tables(Path(result_dir), (latex,)).items()}


def _tables(result_dir: Path, styles: Sequence[bool]) -> dict[str, dict[bool, pd.DataFrame]]:
    """``{name: {latex: table}}`` for each style of ``styles``, each result file read once."""
    tables: dict[str, dict[bool, pd.DataFrame]] = {}
    for file, name, build, read in SOURCES:
        path = result_dir / file
        if path.is_file():
            result = read(path)
            try:
                built = {latex: build(result, latex) for latex in styles}
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                raise ResultFormatError(f"{path}: not as its command writes it (missing or malformed {e})") from None
            if all(t is not None for t in built.values()):
                tables[name] = built
    if not tables:
        raise ResultFormatError(f"{result_dir}: no result to tabulate; looked for {LOOKED_FOR}")
    return tables


def to_latex(table: pd.DataFrame, source: str) -> str:
    """A booktabs ``tabular`` (``\\usepackage{booktabs}``), headed by a comment naming its source."""
    body = table.style.hide(axis="index").to_latex(hrules=True, column_format="l" * table.shape[1])
    return f"% made by jaxcoh from {source}\n{body}"


def write_tables(result_dir: str | Path, out: str | Path | None = None, formats: Sequence[str] = FORMATS
                 ) -> dict[str, list[Path]]:
    """Writes every table of ``result_dir`` into ``out`` (default ``result_dir/tables``) as ``NAME.tex`` and/or
    ``NAME.txt``, atomically. Returns the files written per table."""
    result_dir = Path(result_dir)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"table formats {bad}: choose from {', '.join(FORMATS)}")
    tables = _tables(result_dir, [f == "tex" for f in formats])
    out = Path(out) if out is not None else result_dir / "tables"
    out.mkdir(parents=True, exist_ok=True)
    sources = {name: file for file, name, _, _ in SOURCES}
    written: dict[str, list[Path]] = {}
    for name, styles in tables.items():
        for latex, table in styles.items():
            text = (to_latex(table, str(result_dir / sources[name])) if latex
                    else table.to_string(index=False) + "\n")
            written.setdefault(name, []).append(atomic_write_text(out / f"{name}.{'tex' if latex else 'txt'}", text))
    return written
