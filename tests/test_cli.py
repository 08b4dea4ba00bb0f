"""The command line: help, info, reproduce (files and their shape), configs, and errors a user can act on."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from jaxcoh.cli import main
from jaxcoh.cli.common import EXIT_DATA, EXIT_USAGE

QUICK = ["--n-starts", "8", "--cv-folds", "2", "--cv-repeats", "1", "--mock-galaxies", "40"]


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "jaxcoh.cli", "--help"], capture_output=True, text=True, check=True)
    assert "reproduce" in out.stdout and "exit codes" in out.stdout


def test_reproduce_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--sparc DIR" in text and "examples:" in text and "--config" in text


def test_info(capsys, monkeypatch):
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "jax " in text and "cpu" in text.lower() and "mock catalog" in text and "mass_coherence" in text


def test_reproduce_on_mock_writes_the_documented_files(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "r"
    assert main(["reproduce", *QUICK, "--models", "power_law_sigma,mass_coherence", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "mock catalog" in printed.err and "power_law_sigma" in printed.out
    result = json.loads((out / "reproduce.json").read_text())
    assert result["dtype"] == "float64" and result["recipe"] == "legacy" and result["data_kind"] == "mock"
    assert 0 < result["sample_size"] <= 40
    m = result["models"]["mass_coherence"]
    assert set(m) >= {"seed", "at_seed_params", "fit", "cv"}
    assert set(m["seed"]) == {"params", "rms", "r"} and m["seed"]["rms"] == 11.05
    assert set(m["fit"]) >= {"params", "stderr", "rms", "r"} and set(m["fit"]["params"]) == {"K_max", "Psi0", "gamma", "f_R"}
    assert m["fit"]["stderr"]["Psi0"] is None  # degenerate with f_R: withheld (null), not invented
    assert set(m["cv"]) >= {"rms", "r"}
    table = pd.read_csv(out / "f_missing.csv")
    assert list(table.columns[:9]) == ["galaxy", "n_points", "sigma_v", "Xi_mean", "K_rough", "C_mean", "A_emp",
                                       "F_missing", "in_sample"]
    assert len(table) == 40 and table.in_sample.sum() == result["sample_size"]
    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov["versions"]) >= {"jaxcoh", "jax", "jaxlib", "optax"} and prov["dtype"] == "float64"
    assert prov["data"]["kind"] == "mock" and len(prov["data"]["sha256"]) == 64
    # Re-running from the saved config reproduces the numbers.
    again = tmp_path / "again"
    assert main(["reproduce", "--config", str(out / "config.toml"), "--out", str(again), "--quiet"]) == 0
    r2 = json.loads((again / "reproduce.json").read_text())
    assert r2["models"]["power_law_sigma"]["fit"]["rms"] == result["models"]["power_law_sigma"]["fit"]["rms"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_reproduce_on_sparc_prints_the_seed_table(tmp_path, sparc_dir, capsys):
    out = tmp_path / "s"
    assert main(["reproduce", "--sparc", str(sparc_dir), "--models", "power_law_sigma", "--n-starts", "8",
                 "--cv-folds", "2", "--cv-repeats", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "158 galaxies in the fit sample" in text and "10.493" in text
    result = json.loads((out / "reproduce.json").read_text())
    assert result["sample_size"] == 158
    assert round(result["models"]["power_law_sigma"]["at_seed_params"]["rms"], 2) == 10.49


@pytest.mark.parametrize("content,needle", [
    ('n_start = 4\n', "unknown key 'n_start'"),
    ('n_starts = "many"\n', "'n_starts'"),
    ('recipe = "physical"\n', "'recipe' must be one of"),
    ('command = "compare"\n', "not 'jaxcoh reproduce'"),
    ('n_starts = [\n', "not valid TOML"),
])
def test_bad_configs_are_rejected_before_compute(tmp_path, capsys, content, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    assert main(["reproduce", "--config", str(cfg), "--out", str(tmp_path / "never")]) == EXIT_USAGE
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_bad_flag_values_are_rejected(tmp_path, capsys):
    assert main(["reproduce", "--n-starts", "0", "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "'n_starts'" in capsys.readouterr().err
    assert main(["reproduce", "--models", "nope", "--out", str(tmp_path / "x")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "'models' must be one of mass_coherence" in err and "got nope" in err


def test_missing_sparc_dir_is_a_data_error(tmp_path, capsys):
    assert main(["reproduce", "--sparc", str(tmp_path / "absent"), "--out", str(tmp_path / "x")]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "does not exist" in err and "JAXCOH_SPARC_DIR" in err


MOCK = ["--mock-galaxies", "12", "--mock-seed", "3"]


def test_compare_on_mock_and_rerun_from_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "c"
    args = ["compare", *MOCK, "--models", "newtonian,rar", "--solver", "block_lm", "--no-errors", "--cuts", "none",
            "--n-starts", "1", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "rar" in text and "chi2/nu" in text and "g_dagger" in text
    summary = json.loads((out / "compare.json").read_text())
    assert summary["cuts"] == "none" and summary["n_galaxies"] == 12 and set(summary["models"]) == {"newtonian", "rar"}
    assert summary["models"]["rar"]["chi2"] < summary["models"]["newtonian"]["chi2"]
    per_galaxy = pd.read_csv(out / "per_galaxy.csv")
    assert len(per_galaxy) == 24 and {"galaxy", "model", "upsilon_disk", "distance", "chi2", "rms_kms"} <= set(
        per_galaxy.columns)
    curves = pd.read_csv(out / "curves.csv")
    assert {"R_kpc", "V_obs", "V_model", "g_bar", "g_obs"} <= set(curves.columns)
    assert main(["compare", "--config", str(out / "config.toml"), "--out", str(tmp_path / "again"), "--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "compare.json").read_text())
    assert again["models"]["rar"]["params"] == summary["models"]["rar"]["params"]


def test_fit_with_fixed_parameters(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "f"
    assert main(["fit", *MOCK, "--model", "per_galaxy_amplitude", "--fix", "p=0.757,n_coh=0.5", "--nuisance", "none",
                 "--cuts", "none",
                 "--solver", "block_lm", "--n-starts", "1", "--out", str(out)]) == 0
    result = json.loads((out / "fit.json").read_text())
    assert set(result["params"]) == {"ell0"} and result["fixed"] == {"p": 0.757, "n_coh": 0.5}
    assert result["n_params"] == 1 + 12 and result["status"] == "CONVERGED"
    assert "ell0" in capsys.readouterr().out


@pytest.mark.parametrize("flags,needle", [
    (["--fix", "ell=3"], "has no shared parameter 'ell'"),
    (["--fix", "ell0"], "is not NAME=VALUE"),
    (["--loss", "cauchy"], "'loss' must be one of"),
])
def test_fit_rejects_bad_flags_before_compute(tmp_path, capsys, flags, needle):
    out = tmp_path / "never"
    assert main(["fit", *MOCK, "--model", "per_galaxy_amplitude", *flags, "--out", str(out)]) == EXIT_USAGE
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_sweep_interrupted_then_resumed(tmp_path, capsys, monkeypatch):
    """Ctrl-C during a sweep: exit 130, finished chunks kept, no table written; the same command resumes."""
    import jaxcoh.fmissing.sweeps as sweeps

    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "s"
    args = ["sweep", "--mock-galaxies", "30", "--kind", "bootstrap", "--n-boot", "6", "--chunk-size", "3",
            "--n-starts", "2", "--format", "csv", "--out", str(out)]
    real = sweeps._bootstrap_chunk
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sweeps, "_bootstrap_chunk", interrupted)
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err
    assert len(list((out / "chunks").glob("*.csv"))) == 1 and not (out / "sweep.csv").exists()
    assert not list(out.rglob("*.tmp"))
    calls.clear()
    monkeypatch.setattr(sweeps, "_bootstrap_chunk", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    assert main(args + ["--verbose"]) == 0
    assert len(calls) == 1  # only the unfinished chunk was computed
    assert "resumed 3 of 6 rows" in capsys.readouterr().err
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.replicate) == list(range(6))
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["kind"] == "bootstrap" and summary["params"] == ["K_max", "Psi0", "gamma", "f_R"]


def test_sweep_rejects_unknown_grid_axis(tmp_path, capsys):
    assert main(["sweep", "--kind", "grid", "--axes", "ell=1:2:3", "--out", str(tmp_path / "x")]) == EXIT_USAGE
    assert "NAME among" in capsys.readouterr().err


def test_bench_writes_ratios(tmp_path, capsys, monkeypatch):
    from jaxcoh.cli.bench import load_suite

    suite = load_suite()
    monkeypatch.setitem(suite.QUICK, "b4", [64])
    monkeypatch.setitem(suite.QUICK, "b4_loop", 64)
    out = tmp_path / "b"
    assert main(["bench", "--quick", "--only", "B4", "--out", str(out)]) == 0
    res = json.loads((out / "bench.json").read_text())
    assert {"platform", "cpu_count", "versions", "device"} <= set(res["machine"])
    b4 = res["benchmarks"]["B4"]
    assert {"baseline_s", "jaxcoh_s", "compile_s", "ratio", "target", "met"} <= set(b4)
    assert b4["ratio"] == pytest.approx(b4["baseline_s"] / b4["jaxcoh_s"])
    row = b4["sizes"][0]  # the same loss as the numpy baseline (float32), prepared once or from the raw catalog
    assert row["rel_diff_vs_numpy"] < 1e-5 and row["rel_diff_one_off"] < 1e-5
    assert b4["loop_ratio"] == pytest.approx(row["loop_value_grad_s"] / row["jaxcoh_value_grad_s"])
    assert "B4" in capsys.readouterr().out
