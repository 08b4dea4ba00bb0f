"""Figures from synthetic result files of the documented shapes: axes, unit labels, non-blank PNGs, real PDFs, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from jaxcoh import plots  # noqa: E402
from jaxcoh.cli import main  # noqa: E402
from jaxcoh.cli.common import EXIT_DATA, EXIT_USAGE  # noqa: E402
from jaxcoh.results import sha256_files  # noqa: E402

DPI = 80
UNIT = re.compile(r"\[[^\]]+\]")
KMS2_PER_KPC_TO_MS2 = 1e6 / 3.0857e19
GALAXIES = ("NGC0001", "UGC0002", "DDO0003")
CURVE_MODELS = ("newtonian", "rar", "nfw")


# ---- synthetic results, in exactly the shapes the commands write ---------------------------------------------------
def make_curves(n_galaxies: int = 3, n_points: int = 8, models=CURVE_MODELS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    names = [*GALAXIES, *(f"G{i:04d}" for i in range(len(GALAXIES), n_galaxies))][:n_galaxies]
    for g, name in enumerate(names):
        R = np.linspace(0.5, 10.0 + g, n_points)
        v_flat = 80.0 + 40.0 * g
        V_obs = v_flat * (1 - np.exp(-R / 2.0)) + rng.normal(0, 3, n_points)
        for k, m in enumerate(models):
            V_gas = 0.3 * V_obs * (1 + 0.01 * k)
            V_disk = 0.6 * V_obs * np.exp(-R / 8)
            V_bul = 0.2 * V_obs * np.exp(-R) if g == 0 else np.zeros(n_points)
            V_bar2 = V_gas * np.abs(V_gas) + V_disk**2 + V_bul**2
            V_model = np.sqrt(V_bar2) * (1.0 if m == "newtonian" else 1.3 + 0.1 * k)
            to_si = KMS2_PER_KPC_TO_MS2 / R
            rows.append(pd.DataFrame({
                "galaxy": name, "model": m, "R_kpc": R, "V_obs": V_obs * (1 + 0.002 * k),
                "e_V_obs": np.full(n_points, 4.0),
                "V_gas": V_gas, "V_disk": V_disk, "V_bul": V_bul, "V_bar": np.sqrt(V_bar2), "V_model": V_model,
                "g_bar": V_bar2 * to_si, "g_obs": V_obs**2 * to_si, "g_model": V_model**2 * to_si}))
    return pd.concat(rows, ignore_index=True)


def make_predictions(n: int = 20, models=("mass_coherence", "power_law")) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(1)
    F = np.exp(rng.normal(1.0, 1.2, n))
    rows = [pd.DataFrame({"galaxy": [f"G{i}" for i in range(n)], "model": m, "F_missing": F,
                          "F_pred": F * np.exp(rng.normal(0, 0.3, n))}) for m in models]
    rep = {"sample_size": n, "dtype": "float64", "recipe": "legacy", "models": {
        m: {"seed": {"params": {"a": 1.0}, "rms": 2.5, "r": 0.7}, "at_seed_params": {"rms": 2.5, "r": 0.7},
            "fit": {"params": {"a": 1.1}, "stderr": {"a": 0.1}, "rms": 2.0, "r": 0.8}, "cv": {"rms": 2.4, "r": 0.75}}
        for m in models}}
    return pd.concat(rows, ignore_index=True), rep


PARAMS = ["K_max", "Psi0", "gamma", "f_R"]


def fitted_columns(rng, n: int) -> dict:
    return {"K_max": rng.normal(10, 1, n), "Psi0": 10 ** rng.uniform(-9, -6, n), "gamma": rng.normal(0.5, 0.05, n),
            "f_R": rng.uniform(1, 5, n), "loss": rng.uniform(1, 2, n), "rms": rng.uniform(1, 2, n),
            "r": rng.uniform(0.5, 0.9, n), "n": np.full(n, 80),
            "status": np.where(rng.uniform(size=n) < 0.9, "CONVERGED", "MAX_ITER")}


def make_grid() -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(2)
    axes = {"ell0": [2.0, 4.0, 8.0], "A0": [0.5, 1.0, 1.5], "gamma_rough": [0.05, 0.2]}
    pts = np.array(np.meshgrid(*axes.values(), indexing="ij")).reshape(3, -1).T
    table = pd.DataFrame(pts, columns=list(axes)).assign(**fitted_columns(rng, len(pts)))
    table["rms_rel"] = table["rms"] / 3.0
    summary = {"kind": "grid", "model": "mass_coherence", "params": PARAMS, "axes": list(axes), "n_rows": len(table)}
    return table, summary


def make_bootstrap(n: int = 50) -> tuple[pd.DataFrame, dict]:
    table = pd.DataFrame(fitted_columns(np.random.default_rng(3), n))
    return table, {"kind": "bootstrap", "model": "mass_coherence", "params": PARAMS, "axes": [], "n_rows": n}


def make_profile(n: int = 12) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(4)
    g = np.linspace(0.1, 3.0, n)
    table = pd.DataFrame({"gamma_fixed": g, **fitted_columns(rng, n)})
    table["gamma"] = g
    table["loss"] = 1.0 + (g - 1.2) ** 2
    table["delta_chi2"] = 80 * np.log(table["loss"] / table["loss"].min())
    summary = {"kind": "profile", "model": "mass_coherence", "params": PARAMS, "axes": ["gamma"], "n_rows": n,
               "interval_68_on_grid": [1.0, 1.4]}
    return table, summary


def write_compare(d, curves=None):
    d.mkdir(parents=True, exist_ok=True)
    (curves if curves is not None else make_curves()).to_csv(d / "curves.csv", index=False)
    (d / "compare.json").write_text(json.dumps({"cuts": "standard", "n_galaxies": 3, "n_points": 24, "models": {}}))
    return d


def write_reproduce(d):
    d.mkdir(parents=True, exist_ok=True)
    pred, rep = make_predictions()
    pred.to_csv(d / "predictions.csv", index=False)
    (d / "reproduce.json").write_text(json.dumps(rep))
    return d


def write_sweep(d, table, summary, name="sweep.csv"):
    d.mkdir(parents=True, exist_ok=True)
    table.to_csv(d / name, index=False)
    (d / "sweep.json").write_text(json.dumps({**summary, "table": name}))
    return d


# ---- checks ---------------------------------------------------------------------------------------------------------
def plot_axes(fig):
    """The data axes (colour bars excluded)."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


def check_labels(axes, x_unit: bool = True, y_unit: bool = True):
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        if x_unit:
            assert UNIT.search(ax.get_xlabel()), ax.get_xlabel()
        if y_unit:
            assert UNIT.search(ax.get_ylabel()), ax.get_ylabel()


def check_saved(paths, stem=None):
    by_suffix = {p.suffix: p for p in paths}
    assert set(by_suffix) == {".png", ".pdf"}
    png, pdf = by_suffix[".png"], by_suffix[".pdf"]
    if stem:
        assert png.stem == stem
    assert png.stat().st_size > 0
    assert imread(png).std() > 0  # not a blank image
    assert pdf.read_bytes().startswith(b"%PDF")
    assert not list(png.parent.glob("*.tmp"))  # atomic: no temporary left behind


def render(fig, tmp_path, name):
    paths = plots.save_figure(fig, tmp_path / name, ("png", "pdf"), dpi=DPI)
    check_saved(paths, name)
    return paths


# ---- one test per figure ------------------------------------------------------------------------------------------
def test_f_missing_against_predictions(tmp_path):
    pred, rep = make_predictions()
    fig = plots.plot_f_missing(pred, rep)
    assert len(fig.axes) == 2
    check_labels(fig.axes, x_unit=False, y_unit=False)  # F_missing and F_pred are pure numbers
    for ax in fig.axes:
        assert ax.get_xscale() == "log"  # positive, spanning decades
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "1:1" in texts and any("RMS 2" in t and "r 0.800" in t for t in texts)
    render(fig, tmp_path, "f_missing")
    # without reproduce.json the legend's RMS and r are computed from the rows
    fig = plots.plot_f_missing(pred[pred["model"] == "power_law"])
    assert len(fig.axes) == 1 and any("RMS" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_rotation_curve_grid(tmp_path):
    curves = make_curves()
    fig = plots.plot_rotation_curves(curves, ncols=2)
    assert len(fig.axes) == 3
    check_labels(fig.axes)
    assert fig.axes[0].get_xlabel() == "R [kpc]" and fig.axes[0].get_ylabel() == "V [km/s]"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"observed", "gas", "disk", "bulge", "baryons", *CURVE_MODELS} <= set(labels)
    # data at rar's nuisance values (the first model but newtonian); nfw drawn as V_obs(rar) x V_model/V_obs (nfw)
    assert "rar's fitted" in fig._suptitle.get_text()
    nfw_line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "nfw")
    g0 = curves[curves.galaxy == GALAXIES[0]]
    rar, nfw = g0[g0.model == "rar"], g0[g0.model == "nfw"]
    np.testing.assert_allclose(nfw_line.get_xdata(), rar.R_kpc)
    np.testing.assert_allclose(nfw_line.get_ydata(), rar.V_obs.to_numpy() * (nfw.V_model / nfw.V_obs).to_numpy())
    render(fig, tmp_path, "rotation_curves")
    assert [ax.get_title() for ax in plots.plot_rotation_curves(curves, galaxies=["DDO0003"]).axes] == ["DDO0003"]
    assert len(plots.plot_rotation_curves(curves, galaxies=2).axes) == 2
    with pytest.raises(plots.UnknownGalaxies, match="NGC9999"):
        plots.plot_rotation_curves(curves, galaxies=["NGC9999"])


@pytest.mark.parametrize("n_galaxies", [3, 60])  # points below 1000, then a 2D histogram above
def test_radial_acceleration_relation(tmp_path, n_galaxies):
    curves = make_curves(n_galaxies=n_galaxies, n_points=8 if n_galaxies == 3 else 20)
    fig = plots.plot_rar(curves)
    assert len(fig.axes) == len(CURVE_MODELS)
    check_labels(fig.axes)
    for ax in fig.axes:
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert "m s" in ax.get_xlabel() and "m s" in ax.get_ylabel()
        texts = " ".join(t.get_text() for t in ax.get_legend().get_texts())
        assert "1:1" in texts and "dex" in texts
    render(fig, tmp_path, "rar")


def test_residual_histograms(tmp_path):
    curves = make_curves()
    fig = plots.plot_residuals(curves)
    assert len(fig.axes) == len(CURVE_MODELS)
    check_labels(fig.axes, y_unit=False)  # the y axis counts points
    assert all("[dex]" in ax.get_xlabel() for ax in fig.axes)
    lr = np.log10(curves.g_obs / curves.g_model)[curves.model == "rar"]
    legend = fig.axes[1].get_legend().get_texts()[0].get_text()
    assert f"scatter {np.std(lr):.3f} dex" in legend
    render(fig, tmp_path, "residuals")


def test_sweep_heatmaps(tmp_path):
    table, summary = make_grid()
    fig = plots.plot_sweep_heatmaps(table, summary)
    assert len(fig.axes) == 3 + 1  # three pairs of three axes, one colour bar
    data_axes = plot_axes(fig)
    assert len(data_axes) == 3
    assert [ax.get_xlabel() for ax in data_axes] == ["ell0 [kpc]", "ell0 [kpc]", "A0"]
    assert data_axes[0].get_xscale() == "log"  # 2, 4, 8: a log-spaced axis
    check_labels(data_axes[:1], y_unit=False)  # A0 is a pure number
    cbar = [ax for ax in fig.axes if hasattr(ax, "_colorbar")][0]
    assert "RMS" in cbar.get_ylabel()
    # the (ell0, A0) panel maps the lowest rms_rel over gamma_rough
    mesh = data_axes[0].collections[0]
    expect = table.groupby(["ell0", "A0"])["rms_rel"].min().unstack("A0").to_numpy().T
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(expect.shape), expect)
    render(fig, tmp_path, "sweep_heatmaps")
    one = plots.plot_sweep_heatmaps(table, {**summary, "axes": ["ell0"]})
    assert len(one.axes) == 1 and one.axes[0].get_xlabel() == "ell0 [kpc]"


def test_profile_curve(tmp_path):
    table, summary = make_profile()
    fig = plots.plot_profile(table, summary)
    assert len(fig.axes) == 2  # loss, and Delta chi^2
    for ax in fig.axes:
        assert ax.get_xlabel() == "gamma" and ax.get_ylabel()
    assert "loss" in fig.axes[0].get_ylabel()
    render(fig, tmp_path, "sweep_profile")
    fig = plots.plot_profile(table.drop(columns="delta_chi2"), summary)
    assert len(fig.axes) == 1


def test_bootstrap_corner(tmp_path):
    table, summary = make_bootstrap()
    fig = plots.plot_corner(table, summary["params"], model="mass_coherence")
    d = len(PARAMS)
    assert len(fig.axes) == d * (d + 1) // 2
    bottom = fig.axes[-d:]
    assert [ax.get_xlabel() for ax in bottom] == PARAMS
    assert bottom[1].get_xscale() == "log" and bottom[0].get_xscale() == "linear"  # Psi0 spans three decades
    left = [ax for ax in fig.axes if ax.get_subplotspec().colspan.start == 0]
    assert [ax.get_ylabel() for ax in left] == ["replicates", *PARAMS[1:]]
    diag = fig.axes[0]
    converged = table.loc[table.status == "CONVERGED", "K_max"]
    lines = sorted(line.get_xdata()[0] for line in diag.get_lines())
    np.testing.assert_allclose(lines, np.percentile(converged, [16, 50, 84]))
    assert "converged" in fig._suptitle.get_text()
    render(fig, tmp_path, "sweep_corner")


def test_units_come_from_the_model_declaration():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"F_max": rng.uniform(5, 15, 30), "v_ref": rng.uniform(100, 300, 30)})
    fig = plots.plot_corner(table, ["F_max", "v_ref"], model="velocity_coherence")
    assert len(fig.axes) == 3
    assert fig.axes[-1].get_xlabel() == "v_ref [km/s]"


def test_save_figure_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="tiff"):
        plots.save_figure(plots.plot_residuals(make_curves()), tmp_path / "x", ("png", "tiff"))


# ---- result directories and the command -----------------------------------------------------------------------------
def test_plot_result_dir_makes_every_plot_its_files_allow(tmp_path, caplog):
    d = write_reproduce(tmp_path / "all")
    write_compare(d)
    write_sweep(d, *make_bootstrap())
    assert plots.available_plots(d)["sweep_heatmaps"] == "sweep.json is a bootstrap sweep"
    with caplog.at_level("INFO", logger="jaxcoh"):
        written = plots.plot_result_dir(d, formats=("png",), dpi=DPI)
    assert set(written) == {"f_missing", "rotation_curves", "rar", "residuals", "sweep_corner"}
    assert all(p.parent == d / "plots" and p.suffix == ".png" and p.stat().st_size > 0
               for ps in written.values() for p in ps)
    assert "skipped" not in caplog.text  # the other sweep kinds' plots are not news
    d = write_sweep(tmp_path / "partial", *make_profile())
    (d / "reproduce.json").write_text(json.dumps(make_predictions()[1]))
    caplog.clear()
    with caplog.at_level("INFO", logger="jaxcoh"):
        assert list(plots.plot_result_dir(d, formats=("png",), dpi=DPI)) == ["sweep_profile"]
    assert "skipped f_missing: reproduce.json is here but predictions.csv" in caplog.text
    assert "skipped rotation_curves, rar, residuals: curves.csv not found" in caplog.text


@pytest.mark.parametrize("kind", ["grid", "profile"])
def test_plot_result_dir_sweeps(tmp_path, kind):
    table, summary = make_grid() if kind == "grid" else make_profile()
    d = write_sweep(tmp_path / kind, table, summary)
    written = plots.plot_result_dir(d, out=tmp_path / "figs", formats=("png", "pdf"), dpi=DPI)
    name = "sweep_heatmaps" if kind == "grid" else "sweep_profile"
    assert list(written) == [name]
    check_saved(written[name], name)


def test_cli_plot(tmp_path, capsys):
    d = write_compare(tmp_path / "compare")
    write_reproduce(d)
    assert main(["plot", str(d), "--quiet", "--dpi", str(DPI)]) == 0
    for name in ("f_missing", "rotation_curves", "rar", "residuals"):
        check_saved([d / "plots" / f"{name}.png", d / "plots" / f"{name}.pdf"], name)
    assert sorted(p.name for p in (d / "plots").iterdir()) == sorted(
        [f"{n}.{f}" for n in ("f_missing", "rotation_curves", "rar", "residuals") for f in ("png", "pdf")]
        + ["provenance.json"])
    prov = json.loads((d / "plots" / "provenance.json").read_text())  # what the figures were drawn from
    assert prov["data"]["path"] == str(d) and "compare.json" in prov["data"]["files"]
    assert prov["data"]["sha256"] == sha256_files(sorted(p for p in d.iterdir() if p.is_file()))
    assert capsys.readouterr().out == ""  # --quiet
    out = tmp_path / "figs"
    assert main(["plot", str(d), "--out", str(out), "--format", "png", "--galaxies", "UGC0002", "--dpi",
                 str(DPI)]) == 0
    assert "wrote 4 files" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["f_missing.png", "provenance.json", "rar.png", "residuals.png",
                                                    "rotation_curves.png"]
    assert "--galaxies UGC0002" in json.loads((out / "provenance.json").read_text())["command"]


def test_cli_plot_without_known_files_names_what_it_looked_for(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    assert main(["plot", str(empty), "--quiet"]) == EXIT_DATA
    err = capsys.readouterr().err
    for needle in ("nothing to plot", "predictions.csv", "curves.csv", "sweep.json"):
        assert needle in err
    assert not (empty / "plots").exists()
    assert main(["plot", str(tmp_path / "absent")]) == EXIT_DATA
    assert "not found" in capsys.readouterr().err


def test_cli_plot_rejects_malformed_files_and_unknown_galaxies(tmp_path, capsys):
    d = write_compare(tmp_path / "bad", make_curves().drop(columns=["g_model"]))
    assert main(["plot", str(d)]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "curves.csv" in err and "g_model" in err
    assert not (d / "plots").exists()  # checked before any figure is written
    d = write_compare(tmp_path / "good")
    assert main(["plot", str(d), "--galaxies", "NGC9999"]) == EXIT_USAGE
    assert "NGC9999" in capsys.readouterr().err
    assert main(["plot", str(d), "--format", "png,tiff"]) == EXIT_USAGE
    assert "tiff" in capsys.readouterr().err


def test_missing_matplotlib_gives_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(plots.PlotsUnavailable, match=r'pip install "jaxcoh\[plots\]"'):
        plots.plot_rar(make_curves())
    assert main(["plot", str(write_compare(tmp_path / "c")), "--quiet"]) == EXIT_USAGE
    assert 'pip install "jaxcoh[plots]"' in capsys.readouterr().err


def test_core_package_never_imports_matplotlib():
    code = "import sys, jaxcoh, jaxcoh.cli, jaxcoh.plots; assert 'matplotlib' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
