"""The command line: help, info, reproduce (files and their shape), configs, and errors a user can act on."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import subprocess
import sys

import jax
import pandas as pd
import pytest

from jaxcoh.cli import COMMANDS, main
from jaxcoh.cli.common import EXIT_DATA, EXIT_USAGE
from jaxcoh.cli.options import ConfigError, Option

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
    assert "jax " in text and f"backend: {jax.default_backend()}" in text and "mock catalog" in text
    assert "mass_coherence" in text
    for value, off in (("0", True), ("1", False)):  # whether traced programs are kept (the suite keeps none)
        monkeypatch.setenv("JAXCOH_TRACE_CACHE", value)
        assert main(["info"]) == 0
        assert ("none kept now: $JAXCOH_TRACE_CACHE=0" in capsys.readouterr().out) == off


def test_reproduce_on_mock_writes_the_documented_files(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "r"
    assert main(["reproduce", *QUICK, "--models", "power_law_sigma,mass_coherence", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "mock catalog" in printed.err and "power_law_sigma" in printed.out
    # The seed's SPARC figures are labelled and bracketed, never printed as if comparable with the mock's.
    assert "SPARC (seed) RMS" in printed.out and "[11.05]" in printed.out and "known truth" in printed.out
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
    assert result["skipped_galaxies"] == [] and prov["data"]["skipped_galaxies"] == []
    umask = os.umask(0o022)
    os.umask(umask)
    for f in ("reproduce.json", "f_missing.csv", "predictions.csv", "config.toml", "provenance.json"):
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o666 & ~umask, f  # as open() would make them
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
    ('seed = 1.5\n', "'seed' 1.5 is not an integer"),
    ('n_starts = true\n', "'n_starts' True is not an integer"),
    ('max_iter = "200"\n', "'max_iter' '200' is not an integer"),
    ('cv_folds = 2.5\n', "'cv_folds' 2.5 is not an integer"),
    ('recipe = 1\n', "'recipe' 1 is not a string"),
    ('models = true\n', "'models' True is not a list of names"),
    ('lenient = 1\n', "'lenient' 1 is not true or false"),
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
            "--n-starts", "1", "--galaxy-starts", "1", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "rar" in text and "chi2/nu" in text and "g_dagger" in text
    summary = json.loads((out / "compare.json").read_text())
    # stderr is no terminal here: no per-iteration reports (their callbacks would keep the solvers out of the
    # persistent cache), a log line per solver stage from the host instead
    done = re.findall(r"(\w+): block_lm from 1 start\(s\): (\d+) iterations, objective ([\d.e+-]+)", captured.err)
    assert [d[0] for d in done] == ["newtonian", "rar"], captured.err
    for name, iteration, objective in done:
        assert int(iteration) > 1
        assert float(objective) == pytest.approx(summary["models"][name]["objective"], rel=1e-5)
    assert "iteration 1," not in captured.err
    assert summary["cuts"] == "none" and summary["n_galaxies"] == 12 and set(summary["models"]) == {"newtonian", "rar"}
    assert summary["models"]["rar"]["chi2"] < summary["models"]["newtonian"]["chi2"]
    per_galaxy = pd.read_csv(out / "per_galaxy.csv")
    assert len(per_galaxy) == 24 and {"galaxy", "model", "upsilon_disk", "distance", "chi2", "rms_kms"} <= set(
        per_galaxy.columns)
    curves = pd.read_csv(out / "curves.csv")
    assert {"R_kpc", "V_obs", "V_model", "g_bar", "g_obs"} <= set(curves.columns)
    assert main(["table", str(out), "--quiet", "--format", "txt"]) == 0  # the comparison as a table for a paper
    table = pd.read_fwf(out / "tables" / "models.txt", dtype=str).set_index("Model")
    assert table.loc["rar", "chi2"] == f"{summary['models']['rar']['chi2']:.1f}" and table.loc["rar", "dof"] == str(
        summary["models"]["rar"]["dof"])
    assert not (out / "tables" / "models.tex").exists()
    assert main(["compare", "--config", str(out / "config.toml"), "--out", str(tmp_path / "again"), "--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "compare.json").read_text())
    assert again["models"]["rar"]["params"] == summary["models"]["rar"]["params"]


def test_progress_in_a_log_with_verbose_has_a_line_per_stage_start_and_end(caplog):
    from jaxcoh.cli.common import per_iteration
    from jaxcoh.cli.reporting import _Reporter

    assert not per_iteration({"quiet": False, "verbose": False})  # (pytest's stderr is no terminal)
    assert per_iteration({"quiet": False, "verbose": True}) and not per_iteration({"quiet": True, "verbose": True})
    from jaxcoh import progress
    from jaxcoh.cli.common import log

    r = _Reporter("[0/2 models] ", terminal=False)
    with caplog.at_level("INFO", logger="jaxcoh"), progress.listening(r):
        t0 = r.t0
        progress.started()  # a fit begins: the lines are timed as its own
        assert r.t0 > t0
        for i in range(1, 6):
            r("lbfgs", i, 100.0 / i, 1.0 / i)
        progress.finished()  # the host has the stage's result: its last line comes before what the host logs
        log.info("the host's line")
        r("block_lm", 1, 100.0, 1.0)
        for solve, n in enumerate((2, 3)):  # a lax.map of solves (a galaxy's starts): each from iteration 0
            for i in range(n):
                r("galaxy starts", i, 10.0 - solve - i, 1.0)
        r.relabel("[1/2 models] ")
        r("block_lm", 1, 7.0, 0.5)
        r("block_lm", 3, 6.0, 0.25)
        r.close()
    lines = [m.split(" (")[0] for m in caplog.messages]
    assert lines == ["[0/2 models] lbfgs: iteration 1, objective 100, gradient norm 1",
                     "[0/2 models] lbfgs: iteration 5, objective 20, gradient norm 0.2, stage done",
                     "the host's line",
                     "[0/2 models] block_lm: iteration 1, objective 100, gradient norm 1",  # one iteration: one line
                     "[0/2 models] galaxy starts: iteration 0, objective 10, gradient norm 1",
                     "[0/2 models] galaxy starts, solve 2: iteration 2, objective 7, gradient norm 1, stage done",
                     "[1/2 models] block_lm: iteration 1, objective 7, gradient norm 0.5",
                     "[1/2 models] block_lm: iteration 3, objective 6, gradient norm 0.25, stage done"]


def test_progress_line_on_a_terminal_is_rewritten_in_place(capsys):
    from jaxcoh.cli.reporting import _Reporter

    r = _Reporter("rar ", terminal=True)
    r("lbfgs", 1, 10.0, 1.0)
    r.end_of_stage()  # the host is about to log: the line is cleared for it
    line = "rar lbfgs: iteration 1, objective 10, gradient norm 1"
    assert capsys.readouterr().err == "\r" + line + "\r" + " " * len(line) + "\r"
    for i in range(1, 4):
        r("lbfgs", i, 10.0 / i, 1.0 / i)
    r.close()
    err = capsys.readouterr().err
    assert err.startswith("\rrar lbfgs: iteration 1, objective 10") and err.endswith("\r")  # cleared at the end
    assert "stage done" not in err  # (log lines are for logs)


def test_fit_with_fixed_parameters(tmp_path, capsys, monkeypatch):
    """Fixed parameters, and the shared one from the Laplace marginal (each galaxy's amplitude integrated out)."""
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "f"
    assert main(["fit", *MOCK, "--model", "per_galaxy_amplitude", "--fix", "p=0.757,n_coh=0.5", "--nuisance", "none",
                 "--cuts", "none", "--marginal", "laplace",
                 "--solver", "block_lm", "--n-starts", "1", "--out", str(out)]) == 0
    result = json.loads((out / "fit.json").read_text())
    assert set(result["params"]) == {"ell0"} and result["fixed"] == {"p": 0.757, "n_coh": 0.5}
    assert result["n_params"] == 1 + 12 and result["status"] == "CONVERGED"
    assert result["marginal"] == "laplace" and result["laplace"]["converged"]
    # one amplitude per galaxy, no nuisance: the first Newton step is already below 0.01 standard errors
    assert result["laplace"]["iterations"] == 0 and result["laplace"]["step_in_stderr"] <= 0.01
    captured = capsys.readouterr()
    assert "ell0" in captured.out and "from the Laplace marginal" in captured.out
    # the fit's stages, one log line each from the host, in order
    stages = [re.search(pattern, captured.err) for pattern in (
        r"per_galaxy_amplitude: block_lm from 1 start\(s\): \d+ iterations, objective [\d.e+-]+ \(",
        r"per_galaxy_amplitude: 8 starts per galaxy: \d+ galaxies improved",
        r"per_galaxy_amplitude: block_lm polish: \d+ iterations, objective [\d.e+-]+ \(",
        r"per_galaxy_amplitude: Laplace marginal after")]
    assert all(stages) and [m.start() for m in stages] == sorted(m.start() for m in stages), captured.err


@pytest.mark.parametrize("flags,needle", [
    (["--fix", "ell=3"], "has no shared parameter 'ell'"),
    (["--fix", "ell0"], "is not NAME=VALUE"),
    (["--loss", "cauchy"], "'loss' must be one of"),
    (["--marginal", "full"], "'marginal' must be one of"),
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
    from jaxcoh.tables import sweep_table

    intervals = sweep_table(summary, latex=False).set_index("Parameter")  # the bootstrap's table for a paper
    assert intervals.loc["gamma", "median"] == f"{summary['intervals']['gamma']['median']:.4g}"


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


def test_typed_values_from_configs_and_flags():
    """A TOML value must have its option's type (a bool is not an int, 1.5 is not an int, "2" is not a number);
    flags are text and are parsed."""
    n, floor = Option("n", 1, "", type="int"), Option("floor", 0.0, "", type="nonneg_float")
    assert n.convert(3, "c") == 3 and n.convert(3.0, "c") == 3 and n.convert("3", "flag", text=True) == 3
    assert floor.convert(2, "c") == 2.0 and floor.convert("0.5", "flag", text=True) == 0.5
    for option, value in ((n, True), (n, 1.5), (n, "3"), (floor, "2"), (floor, False), (floor, float("inf"))):
        with pytest.raises(ConfigError, match=f"c: '{option.name}' "):
            option.convert(value, "c")
    for option, text in ((n, "1.5"), (n, "x"), (floor, "nan"), (floor, "-1")):
        with pytest.raises(ConfigError, match=f"'{option.name}'"):
            option.convert(text, "flag", text=True)


def test_compare_config_rejects_a_string_number(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('error_floor = "2"\n')
    assert main(["compare", "--config", str(cfg), "--out", str(tmp_path / "never")]) == EXIT_USAGE
    assert "'error_floor' '2' is not a number" in capsys.readouterr().err


def _never_run(monkeypatch, name):
    def run(values):
        raise AssertionError(f"jaxcoh {name} started computing")

    monkeypatch.setitem(COMMANDS, name, dataclasses.replace(COMMANDS[name], run=run))


OUT_COMMANDS = [["reproduce"], ["fit"], ["compare"], ["sweep"], ["bench"], ["plot", "."], ["table", "."], ["export"]]


@pytest.mark.parametrize("command", OUT_COMMANDS, ids=lambda c: c[0])
def test_unusable_out_fails_before_compute(tmp_path, capsys, monkeypatch, command):
    _never_run(monkeypatch, command[0])
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a directory")
    for out, needle in ((a_file, "exists and is not a directory"), (a_file / "sub", f"{a_file} is a file")):
        assert main([*command, "--out", str(out)]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f"'out': {out}" in err and needle in err
    assert a_file.read_text() == "not a directory"


def test_read_only_out_fails_before_compute(tmp_path, capsys, monkeypatch):
    _never_run(monkeypatch, "reproduce")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who may write into a read-only directory (root): mode bits not enforced")
        for out in (locked, locked / "new"):
            assert main(["reproduce", "--out", str(out)]) == EXIT_USAGE
            assert f"'out': {out} is not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


def test_plot_checks_its_default_out(tmp_path, capsys, monkeypatch):
    _never_run(monkeypatch, "plot")
    (tmp_path / "plots").write_text("in the way")
    assert main(["plot", str(tmp_path)]) == EXIT_USAGE
    assert f"'out': {tmp_path / 'plots'} exists and is not a directory" in capsys.readouterr().err


def test_too_few_mock_galaxies_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAXCOH_SPARC_DIR", raising=False)
    out = tmp_path / "never"
    assert main(["reproduce", "--mock-galaxies", "3", "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "'mock_galaxies': 3 galaxies cannot fill 5 cross-validation folds" in err and "--mock-galaxies 5" in err
    assert main(["reproduce", "--mock-galaxies", "3", "--cv-folds", "3", "--n-starts", "1", "--cv-repeats", "1",
                 "--models", "power_law_sigma", "--out", str(out), "--quiet"]) == 0  # enough for 3 folds
    # Cuts that leave nothing to fit (mock seed 3's only galaxy fails them).
    assert main(["compare", "--mock-galaxies", "1", "--mock-seed", "3", "--out", str(tmp_path / "c")]) == EXIT_USAGE
    assert "'cuts': --cuts standard leaves no galaxy of 1" in capsys.readouterr().err


def test_fit_sample_must_fill_the_folds():
    import jaxcoh
    from jaxcoh.cli.reproduce import check_sample

    cat = jaxcoh.mock_catalog(6, seed=0)
    with pytest.raises(ConfigError, match="'cv_folds': 6 of 6 galaxies are in the fit sample, too few for 7"):
        check_sample({"recipe": "legacy", "cv_folds": 7}, cat, {"kind": "mock"})
    check_sample({"recipe": "legacy", "cv_folds": 6}, cat, {"kind": "mock"})


def test_result_files_respect_the_umask(tmp_path):
    from jaxcoh.cli.rundir import write_run

    old = os.umask(0o027)
    try:
        out = write_run(tmp_path / "r", "info", (), {}, dtype="float64", data={"kind": "mock"},
                        files={"a.json": {"x": 1}, "b.txt": "text"})
        kept = out / "b.txt"
        kept.chmod(0o604)  # an existing file keeps its mode, as with open()
        write_run(out, "info", (), {}, dtype="float64", data={"kind": "mock"}, files={"b.txt": "again"})
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {"a.json": 0o640, "b.txt": 0o604, "config.toml": 0o640, "provenance.json": 0o640}


def test_lenient_skips_are_recorded_in_every_result(tmp_path, capsys):
    from test_sparc import BAD_CASES, rotmod_text, write_sparc

    from jaxcoh import SparcDataWarning

    good = rotmod_text([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0])
    write_sparc(tmp_path / "sparc", {"GOOD1": good, "GOOD2": good, "BROKEN": BAD_CASES["non-numeric"][0]})
    out = tmp_path / "s"
    args = ["sweep", "--sparc", str(tmp_path / "sparc"), "--kind", "multistart", "--n-starts", "2", "--max-iter", "20",
            "--format", "csv", "--out", str(out)]
    assert main(args) == EXIT_DATA  # strict by default: the malformed file stops the run, named
    assert "BROKEN_rotmod.dat" in capsys.readouterr().err
    with pytest.warns(SparcDataWarning, match="BROKEN"):
        assert main([*args, "--lenient"]) == 0
    assert "1 skipped by --lenient" in capsys.readouterr().err
    result, prov = (json.loads((out / f).read_text()) for f in ("sweep.json", "provenance.json"))
    (skipped,) = result["skipped_galaxies"]
    assert skipped["galaxy"] == "BROKEN" and "BROKEN_rotmod.dat" in skipped["reason"] and "'Vobs'" in skipped["reason"]
    assert prov["data"]["skipped_galaxies"] == [skipped] and result["data_kind"] == "sparc"


def test_write_run_adds_the_skipped_galaxies_to_every_json(tmp_path):
    from jaxcoh.cli.rundir import write_run

    skipped = [{"galaxy": "X", "reason": "bad"}]
    out = write_run(tmp_path, "sweep", (), {}, dtype="float64", data={"kind": "sparc", "skipped_galaxies": skipped},
                    files={"sweep.json": {"n_rows": 1}, "table.csv": pd.DataFrame({"a": [1]})})
    assert json.loads((out / "sweep.json").read_text()) == {"n_rows": 1, "skipped_galaxies": skipped}
    assert json.loads((out / "provenance.json").read_text())["data"]["skipped_galaxies"] == skipped


def test_mock_table_marks_the_seed_columns_as_reference():
    from jaxcoh.fmissing.reproduce import format_table

    entry = {"seed": {"rms": 11.05, "r": 0.5}, "at_seed_params": {"rms": 5.66, "r": 0.4},
             "fit": {"rms": 5.0, "r": 0.6}, "cv": {"rms": 5.5, "rms_std": 0.1, "r": 0.5}}
    result = {"data": "mock", "sample_size": 40, "recipe": "legacy", "dtype": "float64", "models": {"m": entry}}
    mock = format_table({**result, "data_kind": "mock"})
    head = mock.splitlines()[4]
    assert "for reference only" in mock and "known truth" in mock and "SPARC (seed) RMS" in head
    assert "[11.05]" in mock and "[0.500]" in mock and " 11.05 " not in mock
    sparc = format_table({**result, "data_kind": "sparc"})
    assert "seed RMS" in sparc and "[" not in sparc and "reference only" not in sparc
    tables = format_table({**result, "data_kind": "tables"})  # a user's --data: not the seed's sample either
    assert "--data tables" in tables and "[11.05]" in tables and "known truth" not in tables
