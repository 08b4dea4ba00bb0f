"""Tables for a paper (jaxcoh.tables, `jaxcoh table`): PDG rounding, each result kind's table, the command."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcoh.cli import main
from jaxcoh.cli.common import EXIT_DATA
from jaxcoh.tables import measurement, models_table, number, result_tables, sweep_table, write_tables


@pytest.mark.parametrize("value, error, latex, text", [
    # PDG: the error's three leading digits 100-354 -> two significant digits, 355-949 -> one, 950-999 -> 1000 (two)
    (1.2006e-10, 3.56e-13, r"$(1.201 \pm 0.004) \times 10^{-10}$", "(1.201 +- 0.004)e-10"),
    (0.757, 0.0123, r"$0.757 \pm 0.012$", "0.757 +- 0.012"),
    (7.70088, 0.96107, r"$7.7 \pm 1.0$", "7.7 +- 1.0"),
    (3592.07, 35.4, r"$3592 \pm 35$", "3592 +- 35"),
    (5.5e-12, float("nan"), r"$5.5 \times 10^{-12}$", "5.5e-12"),  # no usable error: 4 significant digits
    (2.0, 0.0, "$2$", "2"),
    (None, 0.1, "--", "--"),
])
def test_measurement_rounds_by_the_pdg_rule(value, error, latex, text):
    assert measurement(value, error) == latex
    assert measurement(value, error, latex=False) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v != 0 and abs(v) > 1e-6),
       st.floats(1e-3, 10.0, allow_nan=False))
def test_a_rounded_measurement_keeps_its_value_and_error(value, relative):
    """Read back, the rounded value is within half a unit of the error's last digit of the value, and the rounded
    error within that of the error (PDG: the error keeps one or two significant digits)."""
    error = abs(value) * relative
    m = re.fullmatch(r"\(?(-?[\d.]+) \+- ([\d.]+)\)?(?:e([+-]?\d+))?", measurement(value, error, latex=False))
    assert m, measurement(value, error, latex=False)
    scale = 10.0 ** int(m.group(3) or 0)
    v, e = float(m.group(1)) * scale, float(m.group(2)) * scale
    digits = m.group(2).split(".")[1] if "." in m.group(2) else ""
    unit = 10.0 ** -len(digits) * scale
    assert abs(v - value) <= 0.5 * unit * (1 + 1e-9)
    assert abs(e - error) <= 0.5 * unit * (1 + 1e-9) + 0.05 * error  # (950-999 round up to the next power of ten)
    assert 1 <= len(m.group(2).replace(".", "").lstrip("0")) <= 2


def _compare_summary() -> dict:
    return {"models": {
        "rar": {"params": {"g_dagger": 1.2006e-10}, "stderr": {"g_dagger": 3.56e-13}, "chi2": 5809.25, "dof": 2484,
                "chi2_nu": 2.3387, "aic": 6741.25, "bic": 9532.39, "n_params": 466},
        "newtonian": {"params": {}, "stderr": {}, "chi2": 9000.0, "dof": 2485, "chi2_nu": 3.62, "aic": 9930.0,
                      "bic": 12700.0, "n_params": 465},
        "nfw": {"params": {}, "stderr": {}, "chi2": 5000.0, "dof": 2197, "chi2_nu": 2.276, "aic": 6506.0,
                "bic": 10900.5, "n_params": 753}}}


def test_the_models_table_orders_by_bic_and_gives_the_differences():
    t = models_table(_compare_summary(), latex=False)
    assert list(t["Model"]) == ["rar", "nfw", "newtonian"]
    assert list(t["dBIC"]) == ["0.0", "1368.1", "3167.6"] and list(t["dAIC"]) == ["235.2", "0.0", "3424.0"]
    assert list(t["chi2"]) == ["5809.2", "5000.0", "9000.0"] and t["Shared parameters"][0] == (
        "g_dagger = (1.201 +- 0.004)e-10")
    tex = models_table(_compare_summary())
    assert tex["Shared parameters"][0] == r"$g_\dagger$ = $(1.201 \pm 0.004) \times 10^{-10}$"


def test_every_result_kind_is_tabulated_and_the_command_writes_them(tmp_path, capsys):
    d = tmp_path / "run"
    d.mkdir()
    (d / "compare.json").write_text(json.dumps(_compare_summary()))
    (d / "fit.json").write_text(json.dumps({
        "model": "rar", "params": {"g_dagger": 1.2e-10}, "stderr": {"g_dagger": 2.4e-12}, "fixed": {"p": 0.757},
        "chi2": 100.0, "dof": 90, "chi2_nu": 1.111, "bic": 130.0, "rar_scatter_dex": 0.0647, "n_galaxies": 10,
        "n_points": 100, "status": "CONVERGED"}))
    (d / "halos.json").write_text(json.dumps({"models": {"NFW-Flat": {
        "N": 20, "median_chi2_nu": 2.4166, "mean_chi2_nu": 2.835, "frac_chi2_nu_below_2": 0.35, "wins_by_bic": 2,
        "n_galaxies_converged": 20}}}))
    pd.DataFrame({"parameter": ["g_dagger"], "mean": [5.451e-12], "sd": [6.57e-13], "hdi_3%": [4.3008e-12],
                  "hdi_97%": [6.7065e-12], "ess_bulk": [76.5], "ess_tail": [100.9], "r_hat": [1.0297]}
                 ).to_csv(d / "summary.csv", index=False)
    (d / "reproduce.json").write_text(json.dumps({"models": {"power_law": {
        "seed": {"params": {"A": 10.02, "alpha": 0.1, "beta": 0.312}, "rms": 10.28, "r": 0.405},
        "fit": {"params": {"A": 3.1107, "alpha": 0.1, "beta": 0.4312},
                "stderr": {"A": 0.2583, "alpha": None, "beta": 0.0712}, "rms": 2.9012, "r": 0.4977},
        "cv": {"rms": 2.9271, "rms_std": 0.0051, "r": 0.4869, "r_std": 0.0025, "n_folds": 5, "n_repeats": 5}}}}))
    text = result_tables(d, latex=False)
    assert list(text) == ["f_missing", "models", "fit", "halos", "posterior"]
    assert text["f_missing"].values.tolist() == [
        ["power_law", "seed (published)", "A = 10.02; alpha = 0.1; beta = 0.312", "10.28", "0.405"],
        ["power_law", "refit", "A = 3.11 +- 0.26; alpha = 0.1; beta = 0.43 +- 0.07", "2.90", "0.498"],
        ["power_law", "5 x 5-fold CV", "--", "2.927 +- 0.005", "0.4869 +- 0.0025"]]
    fit = dict(zip(text["fit"]["Quantity"], text["fit"]["rar"], strict=True))
    assert fit["g_dagger [m s-2]"] == "(1.200 +- 0.024)e-10" and fit["p"] == "0.757 (fixed)"
    assert fit["chi2/nu"] == "1.111" and fit["Status"] == "CONVERGED"
    assert text["halos"].iloc[0].tolist() == ["NFW-Flat", "20", "2.417", "2.83", "0.35", "2", "20"]
    assert text["posterior"].iloc[0].tolist() == ["g_dagger [m s-2]", "(5.5 +- 0.7)e-12", "[4.301e-12, 6.707e-12]",
                                                  "76", "101", "1.030"]

    assert main(["table", str(d), "--quiet"]) == 0
    for name in ("f_missing", "models", "fit", "halos", "posterior"):
        tex = (d / "tables" / f"{name}.tex").read_text()
        assert tex.startswith(f"% made by jaxcoh from {d}") and r"\toprule" in tex and r"\bottomrule" in tex
        assert (d / "tables" / f"{name}.txt").read_text().strip()
    tex = (d / "tables" / "models.tex").read_text()
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 4 and all(line.count("&") == 7 for line in rows)  # header + 3 models, 8 columns each
    assert json.loads((d / "tables" / "provenance.json").read_text())["command"].startswith(f"jaxcoh table {d}")
    capsys.readouterr()

    (d / "fit.json").write_text(json.dumps({"model": "rar"}))  # a malformed result names its file
    assert main(["table", str(d), "--out", str(tmp_path / "t")]) == EXIT_DATA
    assert f"{d / 'fit.json'}: not as its command writes it" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["table", str(empty)]) == EXIT_DATA
    assert "no result to tabulate" in capsys.readouterr().err
    with pytest.raises(ValueError, match="table formats"):
        write_tables(d, formats=["docx"])


def test_number_keeps_significant_digits():
    assert number(92807.14) == "$9.281 \\times 10^{4}$" and number(0.0647, latex=False) == "0.0647"
    assert number(float("nan")) == "--" and math.isfinite(float(number(1.5, latex=False)))


def test_sweep_tables_give_a_bootstraps_intervals_and_a_profiles_and_no_grid():
    boot = {"kind": "bootstrap", "axes": [], "n_rows": 64, "full_sample_fit": {"gamma": 0.88149},
            "intervals": {"gamma": {"median": 0.87941, "std": 0.1712, "interval_68": [0.72503, 1.1012],
                                    "interval_95": [0.66151, 1.2641]},
                          "Psi0_fR3": {"median": 5.667e-9, "std": 1.4e-8, "interval_68": [4.193e-9, 8.323e-9],
                                       "interval_95": [3.212e-9, 2.468e-8]}}}
    t = sweep_table(boot, latex=False)
    assert t.values.tolist() == [["gamma", "0.8815", "0.8794", "[0.725, 1.101]", "[0.6615, 1.264]", "0.17"],
                                 ["Psi0_fR3", "--", "5.667e-09", "[4.193e-09, 8.323e-09]", "[3.212e-09, 2.468e-08]",
                                  "1.4e-08"]]
    assert sweep_table(boot)["Parameter"].tolist() == [r"$\gamma$", r"$\Psi_0 f_R^3$"]
    profile = {"kind": "profile", "axes": ["Psi0"], "n_rows": 12, "best": {"Psi0": 1e-10},
               "interval_68_on_grid": [1e-10, 6.579e-9]}
    assert sweep_table(profile, latex=False).values.tolist() == [["Psi0", "1e-10", "[1e-10, 6.579e-09]", "12"]]
    assert sweep_table({"kind": "grid", "axes": ["ell0", "A0"]}) is None
