"""Traced programs kept between processes (jaxcoh.tracecache): a fresh process reuses them without tracing and gets
the same numbers; anything that cannot be keyed safely is not stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

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

traced = []
real_solve = fitting.solve
def counting_solve(*a, **k):
    traced.append(1)
    return real_solve(*a, **k)
fitting.solve = counting_solve

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
print(json.dumps({"loss": out, "traced_builtin": n_builtin, "traced_total": len(traced)}))
"""


def _run(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_fresh_process_reuses_traced_programs(tmp_path):
    first = _run(tmp_path)
    stored = sorted((tmp_path / tracecache.SUBDIR).glob("*.pkl"))
    assert first["traced_builtin"] == 2  # traced once per shape
    assert first["traced_total"] == 3  # and the user's model traced as usual
    # derive_f_missing at the default hyperparameters, at ell0 = 3 (a direct call: the same program, as only shapes
    # key it) and the two shapes of solve_batch; nothing for the user's model or the call under jit
    assert len(stored) == 3
    second = _run(tmp_path)
    assert second["traced_builtin"] == 0  # nothing traced: both shapes came from disk
    assert second["traced_total"] == 1  # the user's model is traced in every process
    assert second["loss"] == first["loss"]
    assert sorted((tmp_path / tracecache.SUBDIR).glob("*.pkl")) == stored


def test_unreadable_program_is_exported_again(tmp_path):
    cat = jaxcoh.mock_catalog(6, seed=1, n_max=8)
    data = fit_data(jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc"))
    model = get_model("power_law")
    z0 = starts(model, FitSettings(n_starts=2), cat.dtype)
    w = jnp.ones_like(data.target)[None]
    static = {"model": model, "solver": "lm", "options": SolverOptions(max_iter=10)}
    leaves, tree = jax.tree_util.tree_flatten({"z0": z0, "data": data, "weights": w})
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"not a program")
    program = tracecache._load_or_export(path, solve_batch.jitted, static, tree, leaves)
    assert program is not None and path.stat().st_size > 100
    got = jax.tree_util.tree_unflatten(program.out_tree, program.call(*leaves))
    want = solve_batch.jitted(**static, z0=z0, data=data, weights=w)
    np.testing.assert_array_equal(np.asarray(got.loss), np.asarray(want.loss))


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
