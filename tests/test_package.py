"""The installed package: the wheel holds every subpackage (the benchmarks and their baselines included) and nothing
else, its commands work from outside the source tree, and JAX's persistent compilation cache is set up as documented.

The wheel is built from a copy of the sources (no stale ``build/`` in the checkout can leak into it), offline and
without build isolation (setuptools>=70.1 comes with the test extra).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import SUITE_XLA_FLAGS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxcoh"


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JAXCOH_COMPILATION_CACHE",
                                                            "JAX_COMPILATION_CACHE_DIR", "XLA_FLAGS")}
    env.update(XLA_FLAGS=SUITE_XLA_FLAGS, **extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools", minversion="70.1")  # bdist_wheel built in
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("jaxcoh", "tests", "benchmarks"):  # tests and benchmarks/ copied too: the wheel must leave them out
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    (src / "data").mkdir()  # stands for SPARC placed next to the sources: never packaged
    (src / "data" / "table1.dat").write_text("not packaged\n")
    out = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-w", str(out), str(src)], capture_output=True, text=True, timeout=300, env=_env())
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    (whl,) = out.glob("jaxcoh-*.whl")
    return whl


def test_wheel_holds_every_subpackage_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    expected = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    packaged = {n for n in names if n.endswith(".py")}
    assert expected - packaged == set(), f"missing from the wheel: {sorted(expected - packaged)}"
    assert packaged - expected == set(), f"in the wheel but not in the sources: {sorted(packaged - expected)}"
    for sub in ("jaxcoh/bench/suite.py", "jaxcoh/bench/b6_halos.py", "jaxcoh/bench/baselines/__init__.py",
                "jaxcoh/bench/baselines/seed_pipeline.py", "jaxcoh/cli/bench.py", "jaxcoh/compilation_cache.py"):
        assert sub in names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"jaxcoh", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, tops
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "data/")) or n.endswith(".dat")]
    dist = next(n for n in tops if n.endswith(".dist-info"))
    zf = zipfile.ZipFile(wheel)
    assert "jaxcoh = jaxcoh.cli:main" in zf.read(f"{dist}/entry_points.txt").decode()
    meta = zf.read(f"{dist}/METADATA").decode()
    assert "Provides-Extra: bench" in meta and "numpyro" in meta


def test_installed_package_runs_outside_the_source_tree(wheel, tmp_path):
    """The wheel unpacked elsewhere, run from a directory that is not the checkout: jaxcoh comes from the wheel, the
    benchmark suite imports, and `jaxcoh bench --help` works (it used to need benchmarks/ of a source checkout)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = (
        "import json, sys, contextlib, io\n"
        "import jaxcoh, jaxcoh.bench.suite as suite, jaxcoh.bench.baselines.halos\n"
        "from jaxcoh.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(['bench', '--help'])\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "print(json.dumps({'jaxcoh': jaxcoh.__file__, 'suite': suite.__file__, 'code': code,\n"
        "                  'help': buf.getvalue(), 'targets': sorted(suite.TARGETS)}))\n"
    )
    p = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True, timeout=300,
                       env=_env(PYTHONPATH=str(site), JAXCOH_COMPILATION_CACHE="0"))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert Path(out["jaxcoh"]).is_relative_to(site) and Path(out["suite"]).is_relative_to(site)
    assert out["code"] == 0 and "--only" in out["help"] and "B6" in out["help"]
    assert out["targets"] == ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]


CACHE_SCRIPT = """
import contextlib, io, json, os, sys
import jax
from jaxcoh import compilation_cache as cc
from jaxcoh.cli import main

out = {"default": str(cc.default_directory())}
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    assert main(["info"]) == 0
out["info"] = [l for l in buf.getvalue().splitlines() if l.startswith("compilation cache")]
out["jax_dir"] = jax.config.jax_compilation_cache_dir
out["min_compile_time"] = jax.config.jax_persistent_cache_min_compile_time_secs
d = cc.current().directory
before = cc.usage(d)[0]
jax.jit(lambda x: x * 3.0 + 1.0)(2.0).block_until_ready()  # a program that compiles in milliseconds: kept too
out["files_added"] = cc.usage(d)[0] - before
out["mode"] = oct(os.stat(d).st_mode & 0o777)
os.environ[cc.ENV] = "0"
out["env_off"] = str(cc.configure().directory)
out["jax_dir_off"] = jax.config.jax_compilation_cache_dir
os.environ[cc.ENV] = sys.argv[1]
out["env_path"] = str(cc.configure().directory)
out["flag_wins"] = [str(cc.configure("off").directory), cc.resolve("off").source]
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    assert main(["info", "--compilation-cache", "off"]) == 0
out["info_off"] = [l for l in buf.getvalue().splitlines() if l.startswith("compilation cache")]
print(json.dumps(out))
"""


def test_compilation_cache_on_by_default_with_an_opt_out(tmp_path):
    """The command line turns JAX's persistent cache on in $XDG_CACHE_HOME/jaxcoh/jax (private), keeps even tiny
    programs, `jaxcoh info` shows it; $JAXCOH_COMPILATION_CACHE=0 and --compilation-cache off turn it off, a path
    moves it. In a subprocess: this test process keeps its own JAX settings."""
    xdg, other = tmp_path / "xdg", tmp_path / "other"
    p = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, str(other)], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300, env=_env(XDG_CACHE_HOME=str(xdg)))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    want = xdg / "jaxcoh" / "jax"
    assert out["default"] == str(want) and out["jax_dir"] == str(want)
    (line,) = out["info"]
    assert line.startswith(f"compilation cache: on, {want} (from default)") and "MiB" in line
    assert out["min_compile_time"] == 0.0 and out["files_added"] >= 1 and out["mode"] == "0o700"
    assert out["env_off"] == "None" and out["jax_dir_off"] is None
    assert out["env_path"] == str(other) and other.is_dir()
    assert out["flag_wins"] == ["None", "--compilation-cache"]
    (line,) = out["info_off"]
    assert line.startswith("compilation cache: off (--compilation-cache;")


def test_reproduce_gives_the_numbers_of_lone_fits_with_its_shared_programs():
    """`reproduce` fits every model and cross-validates it in programs that all its models share (their parameters
    padded to the longest model's, the model picked by an index): every number is the one a lone fit and
    cross-validation of that model give, to rounding (the padded programs round differently in the last digits:
    measured 2e-16 relative here), and the metrics at the seed's parameters are those of the plain (uncompiled)
    `evaluate`."""
    import jax.numpy as jnp
    import numpy as np

    import jaxcoh
    from jaxcoh.fmissing import FitSettings, cross_validate, derive_f_missing, fit, fit_data, get_model
    from jaxcoh.fmissing.objective import evaluate
    from jaxcoh.fmissing.reproduce import reproduce
    from jaxcoh.seed import SEED_FITS
    from jaxcoh.solvers import SolverOptions

    cat = jaxcoh.mock_catalog(30, seed=1, n_max=10)
    settings = FitSettings(n_starts=4, options=SolverOptions(max_iter=30))
    models = ("power_law", "power_law_sigma")  # 3 and 2 parameters: power_law_sigma runs padded
    res, _, pred = reproduce(cat, recipe="sparc", models=models, settings=settings, cv_folds=2, cv_repeats=1)
    assert list(res["models"]) == list(models) and list(dict.fromkeys(pred["model"])) == list(models)
    data = fit_data(derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc"))
    for name in models:
        lone = fit(name, data, settings)
        cv = cross_validate(name, data, settings._replace(n_starts=8), n_folds=2, n_repeats=1)
        got = res["models"][name]
        for key in ("params", "stderr"):  # NaN where an error is withheld
            assert list(got["fit"][key]) == list(getattr(lone, key))
            np.testing.assert_allclose(list(got["fit"][key].values()), list(getattr(lone, key).values()),
                                       rtol=1e-12)
        assert got["fit"]["rms"] == pytest.approx(lone.metrics["rms"], rel=1e-12)
        # fold fits stopped by the iteration cap (30) carry the rounding further: measured 1.5e-8 relative
        assert got["cv"]["rms"] == pytest.approx(cv.rms, rel=1e-6)
        assert got["fit"]["n_iter"] == lone.n_iter and got["fit"]["status"] == lone.status
        seed = {k: jnp.asarray(v) for k, v in SEED_FITS[name]["params"].items()}
        plain = evaluate(get_model(name), seed, data)
        for k in ("rms", "r", "spearman"):
            assert got["at_seed_params"][k] == pytest.approx(float(plain[k]), rel=1e-12, abs=1e-14)
