"""Traced programs kept between processes (jaxcoh.tracecache): a fresh process reuses them without tracing and gets
the same numbers; anything that cannot be keyed safely is not stored."""

from __future__ import annotations

import ast
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SUITE_XLA_FLAGS
import jaxcoh
from jaxcoh import tracecache
from jaxcoh.fmissing import FitSettings, fit_data, get_model, starts
from jaxcoh.fmissing.fitting import solve_batch
from jaxcoh.solvers import SolverOptions

ROOT = Path(__file__).parents[1]

# Counts calls of the solver dispatcher, which runs only while solve_batch is being traced.
SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import jaxcoh
from jaxcoh.fmissing import FitSettings, Model, fit_data, get_model, starts
from jaxcoh.fmissing.fitting import solve_batch
from jaxcoh.solvers import SolverOptions

import jaxcoh.fmissing.fitting as fitting

def counted(module, name):  # module.name replaced by a wrapper counting its calls; returns the calls
    calls, real = [], getattr(module, name)
    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)
    setattr(module, name, counting)
    return calls

traced = counted(fitting, "solve")

cat = jaxcoh.mock_catalog(20, seed=4, n_max=10)
data = fit_data(jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc"))
w = jnp.ones_like(data.target)[None]
mc = get_model("mass_coherence")
out = {}
for n_starts in (4, 8):  # two shapes: two programs
    res = solve_batch(mc, "lm", SolverOptions(max_iter=30), starts(mc, FitSettings(n_starts=n_starts), cat.dtype), data, w)
    out[n_starts] = [float(x) for x in res.loss.ravel()]
n_builtin = len(traced)
# Under another transformation the call is traced as part of it: nothing stored, same numbers.
F = jax.jit(lambda e: jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(ell0=e), cat, "sparc").derivation.F_missing)
direct = jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(ell0=3.0), cat, "sparc").derivation.F_missing
assert bool(jnp.allclose(F(3.0), direct, rtol=1e-12, atol=0, equal_nan=True))  # catalog folded in as constants
# A model defined outside jaxcoh is never stored (the source digest does not cover its code).
mine = Model("mine", lambda p, x: p["a"] * x.v_flat / 100.0,
             jaxcoh.ParameterSpec([jaxcoh.Parameter("a", 1.0, 0.1, 10.0)]))
solve_batch(mine, "lm", SolverOptions(max_iter=5), starts(mine, FitSettings(n_starts=2), cat.dtype), data, w)
# A rotation-curve fit of a built-in model: its solver's program comes from disk in a later process; a model made
# outside jaxcoh (here with the built-in's own functions) is traced in every process.
from jaxcoh import curves
import jaxcoh.curves.fitting as curve_fitting

solved = counted(curve_fitting, "_solve_one")  # runs only while solve_joint is being traced
settings = curves.CurveSettings(n_starts=2, galaxy_starts=1, solver="block_lm", errors=False,
                                likelihood=curves.Likelihood(nuisance=False))
rar = curves.fit("rar", cat, settings)
n_curve_builtin = len(solved)
rar_model = curves.get_model("rar")
curves.fit(curves.CurveModel("rar_mine", rar_model.shared, rar_model.local, rar_model.speed2, pointwise=True), cat,
           settings)
print(json.dumps({"loss": out, "traced_builtin": n_builtin, "traced_total": len(traced), "rar": rar.objective,
                  "curve_traced_builtin": n_curve_builtin, "curve_traced_total": len(solved)}))
"""


def _run(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", tracecache.ENV)}
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), XLA_FLAGS=SUITE_XLA_FLAGS)
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_fresh_process_reuses_traced_programs(tmp_path):
    first = _run(tmp_path)
    stored = sorted((tmp_path / tracecache.SUBDIR).glob("*" + tracecache.SUFFIX))
    assert first["traced_builtin"] == 2  # traced once per shape
    assert first["traced_total"] == 3  # and the user's model traced as usual
    assert first["curve_traced_builtin"] == 1 and first["curve_traced_total"] == 2
    # derive_f_missing at the default hyperparameters, at ell0 = 3 (a direct call: the same program, as only shapes
    # key it) and the two shapes of solve_batch; the curve fit's solver and stationarity test; nothing for the
    # users' models or the call under jit
    assert len(stored) == 5
    second = _run(tmp_path)
    assert second["traced_builtin"] == 0  # nothing traced: both shapes came from disk
    assert second["traced_total"] == 1  # the user's model is traced in every process
    assert second["curve_traced_builtin"] == 0 and second["curve_traced_total"] == 1
    assert (second["loss"], second["rar"]) == (first["loss"], first["rar"])
    assert sorted((tmp_path / tracecache.SUBDIR).glob("*" + tracecache.SUFFIX)) == stored


def test_unreadable_program_is_exported_again(tmp_path):
    cat = jaxcoh.mock_catalog(6, seed=1, n_max=8)
    data = fit_data(jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc"))
    model = get_model("power_law")
    z0 = starts(model, FitSettings(n_starts=2), cat.dtype)
    w = jnp.ones_like(data.target)[None]
    static = {"model": model, "solver": "lm", "options": SolverOptions(max_iter=10)}
    leaves, tree = jax.tree_util.tree_flatten({"z0": z0, "data": data, "weights": w})
    path = tmp_path / f"broken{tracecache.SUFFIX}"
    path.write_bytes(b"not a program")
    program = tracecache._load_or_export(path, solve_batch.jitted, static, tree, leaves)
    assert program is not None and path.stat().st_size > 100
    got = jax.tree_util.tree_unflatten(program.out_tree, program.call(*leaves))
    want = solve_batch.jitted(**static, z0=z0, data=data, weights=w)
    np.testing.assert_array_equal(np.asarray(got.loss), np.asarray(want.loss))


def test_programs_idle_for_a_month_are_removed_and_loading_renews_them(tmp_path):
    """Every change of jaxcoh or JAX leaves the stored programs unreachable: storing one removes those neither loaded
    nor stored for MAX_IDLE_DAYS (other files stay), and loading one counts as use."""
    cat = jaxcoh.mock_catalog(6, seed=1, n_max=8)
    data = fit_data(jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc"))
    model = get_model("power_law")
    z0 = starts(model, FitSettings(n_starts=2), cat.dtype)
    static = {"model": model, "solver": "lm", "options": SolverOptions(max_iter=10)}
    leaves, tree = jax.tree_util.tree_flatten({"z0": z0, "data": data, "weights": jnp.ones_like(data.target)[None]})
    month = tracecache.MAX_IDLE_DAYS * 86400
    old = time.time() - month - 3600
    stale, recent, other = (tmp_path / f"stale{tracecache.SUFFIX}", tmp_path / f"recent{tracecache.SUFFIX}",
                            tmp_path / "notes.txt")
    for p, t in ((stale, old), (recent, old + 7200), (other, old)):
        p.write_bytes(b"x")
        os.utime(p, (t, t))
    path = tmp_path / f"program{tracecache.SUFFIX}"
    assert tracecache._load_or_export(path, solve_batch.jitted, static, tree, leaves) is not None  # stored
    assert path.is_file() and not stale.exists() and recent.exists() and other.exists()
    os.utime(path, (old, old))
    assert tracecache._load_or_export(path, solve_batch.jitted, static, tree, leaves) is not None  # loaded
    assert path.stat().st_mtime > time.time() - 600
    assert tracecache.evict_idle(tmp_path, month) == 0 and tracecache.evict_idle(tmp_path, -1.0) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_static_tokens():
    from jaxcoh.fmissing import Model
    from jaxcoh.parameters import Parameter, ParameterSpec

    mc = get_model("mass_coherence")
    token = tracecache._static_token(mc)
    assert token.startswith("Model(mass_coherence, jaxcoh.fmissing.models.") and "'Psi0'" in token
    # jaxcoh's own prediction with other bounds (re-registered under the same name): another program
    narrower = Model("mass_coherence", mc.predict, ParameterSpec(
        [Parameter(p.name, p.init, p.lower, p.upper * 0.5 if p.name == "K_max" else p.upper, p.scale)
         for p in mc.parameters]))
    assert tracecache._static_token(narrower) not in (None, token)
    assert tracecache._static_token(Model("x", lambda p, x: x.v_flat, get_model("power_law").parameters)) is None
    assert tracecache._static_token(SolverOptions(max_iter=3)).startswith("SolverOptions(3, ")
    assert tracecache._static_token(object()) is None
    # curve models: jaxcoh's registered ones by name and bounds; a halo model built for a catalog by its points (the
    # closure's content); a model with a fixed parameter (a closure over the value) or a user's model: never
    from jaxcoh import curves
    from jaxcoh.curves.halo_catalog import catalog_model

    rar = curves.get_model("rar")
    assert tracecache._static_token(rar).startswith("CurveModel(rar, builtin rar, [('g_dagger', ")
    assert tracecache._static_token(curves.fix_parameters("rar", g_dagger=1e-10)) is None
    assert tracecache._static_token(curves.CurveModel("mine", rar.shared, rar.local, rar.speed2)) is None
    points = np.ones((2, 3), bool)
    one = tracecache._static_token(catalog_model(("nfw_flat",), points.shape, points.tobytes()))
    points[1, 2] = False
    other = tracecache._static_token(catalog_model(("nfw_flat",), points.shape, points.tobytes()))
    assert None not in (one, other) and one != other and "halo_catalog(('nfw_flat',), (2, 3), " in one


class _Payload:
    """Unpickling this runs ``touch MARKER``: what a planted pickle would do to whoever loads it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_files_never_run_and_are_replaced(tmp_path, monkeypatch, caplog):
    """Files planted under the exact name of a stored program -- a pickle that runs a command, JSON naming
    ``os.system`` (directly and through a jaxcoh module's attribute) -- run nothing: each is rejected (logged at
    INFO), the program is exported again over it, and the numbers are right."""
    directory = tmp_path / tracecache.SUBDIR
    monkeypatch.setattr(tracecache, "cache_directory", lambda: directory)
    monkeypatch.setattr(tracecache, "_LOADED", {})
    monkeypatch.setattr(tracecache.log, "propagate", True)  # the CLI's logging setup may have turned it off
    cat = jaxcoh.mock_catalog(6, seed=1, n_max=8)
    want = np.asarray(jaxcoh.derive_f_missing.jitted(jaxcoh.Hyperparameters(), cat, "legacy").derivation.F_missing)
    jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "legacy")  # exported and stored
    (path,) = directory.glob("*" + tracecache.SUFFIX)
    magic, head, blob = path.read_bytes().split(b"\n", 2)
    assert magic + b"\n" == tracecache.MAGIC
    marker = tmp_path / "ran"
    payload = pickle.dumps({"exported": _Payload(marker), "out_tree": _Payload(marker)})

    def naming(module, qualname):
        desc = json.loads(head)
        desc["out_tree"].update(module=module, qualname=qualname)
        return tracecache.MAGIC + json.dumps(desc).encode() + b"\n" + blob

    main_imported = "jaxcoh.cli.__main__" in sys.modules
    planted = {"pickle": payload, "pickle after the header": tracecache.MAGIC + payload,
               "os.system": naming("os", "system"), "jaxcoh.results.os.system": naming("jaxcoh.results", "os.system"),
               "an unimported module": naming("jaxcoh.cli.__main__", "main")}
    for what, content in planted.items():
        path.write_bytes(content)
        path.with_suffix(".pkl").write_bytes(payload)  # the old format's name: never read
        tracecache._LOADED.clear()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="jaxcoh"):
            got = jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "legacy")
        assert not marker.exists(), what
        assert any(r.levelno == logging.INFO and "rejected" in r.getMessage() for r in caplog.records), what
        np.testing.assert_array_equal(np.asarray(got.derivation.F_missing), want)
        _, out_tree = tracecache._read(path)  # exported again, over the planted file
        assert path.read_bytes().split(b"\n", 2)[1] == head and out_tree == jax.tree_util.tree_structure(got), what
    assert ("jaxcoh.cli.__main__" in sys.modules) == main_imported  # looked up, never imported


def test_stored_files_hold_no_code():
    """The module never imports a deserialiser that can run code, and output structures round-trip through JSON
    only for jaxcoh's own classes."""
    tree = ast.parse(Path(tracecache.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                     if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"pickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}
    cat = jaxcoh.mock_catalog(3, seed=0, n_max=8)
    treedef = jax.tree_util.tree_structure(jax.eval_shape(
        lambda c: jaxcoh.derive_f_missing.jitted(jaxcoh.Hyperparameters(), c, "sparc"), cat))
    desc = json.loads(json.dumps(tracecache.describe_tree(treedef)))
    assert tracecache.rebuild_tree(desc) == treedef
    assert tracecache.describe_tree(jax.tree_util.tree_structure({"a": (1, [2, None])})) is not None
    assert tracecache.describe_tree(jax.tree_util.tree_structure({1: 2})) is None  # not a JSON key
    for module, qualname in (("os", "system"), ("jaxcoh.tracecache", "log"), ("jaxcoh.results", "os.system"),
                             ("jaxcoh.tracecache", "Path"), ("jaxcoh.coherence", "__import__")):
        with pytest.raises(tracecache.Rejected):
            tracecache.rebuild_tree({"node": "namedtuple", "module": module, "qualname": qualname, "children": []})
    with pytest.raises(tracecache.Rejected):  # a registered dataclass named as a NamedTuple
        tracecache.rebuild_tree({"node": "namedtuple", "module": "jaxcoh.properties", "qualname": "GalaxyProperties",
                                 "children": []})


def test_sobol_points_are_scipys_and_are_kept_with_the_compiled_programs(tmp_path, monkeypatch):
    """The starts' Sobol points are scipy's; with the persistent cache on they are stored at the first draw and read
    back afterwards (scipy.stats, a second to import, is then not needed); a damaged file is drawn again."""
    from scipy.stats import qmc

    from jaxcoh import sobol

    want = qmc.Sobol(3, scramble=True, seed=5).random_base2(5)[:20]
    monkeypatch.setattr(sobol, "_cache_root", lambda: None)
    np.testing.assert_array_equal(sobol.sobol_points(3, 20, 5), want)
    assert not list(tmp_path.rglob("*"))
    monkeypatch.setattr(sobol, "_cache_root", lambda: str(tmp_path))
    np.testing.assert_array_equal(sobol.sobol_points(3, 20, 5), want)
    (stored,) = tmp_path.rglob("*.npy")
    with monkeypatch.context() as m:  # read back: scipy is not asked again
        m.setattr(qmc, "Sobol", lambda *a, **k: pytest.fail("drawn again"))
        np.testing.assert_array_equal(sobol.sobol_points(3, 20, 5), want)
        np.testing.assert_array_equal(sobol.sobol_points(3, 17, 5), want[:17])  # the same power of two
    stored.write_bytes(b"not an array")
    np.testing.assert_array_equal(sobol.sobol_points(3, 20, 5), want)
    np.testing.assert_array_equal(np.load(stored), qmc.Sobol(3, scramble=True, seed=5).random_base2(5))


def test_trace_cache_can_be_turned_off_alone(monkeypatch, tmp_path):
    """``JAXCOH_TRACE_CACHE=0`` keeps no traced program; JAX's compiled ones are kept as configured."""
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    try:
        for value, want in (("0", None), ("off", None), ("1", tmp_path / tracecache.SUBDIR),
                            ("", tmp_path / tracecache.SUBDIR)):
            monkeypatch.setenv(tracecache.ENV, value)
            assert tracecache.cache_directory() == want, value
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
