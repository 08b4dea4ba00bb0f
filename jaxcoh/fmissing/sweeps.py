"""Batched sweeps of F_missing fits: bootstrap, hyperparameter grids, profiles and multi-start, chunked and resumable.

Each chunk is one jitted, vmapped call (replicates or grid points x starts); chunks run one after another so that a
sweep larger than memory streams through, each finished chunk is written atomically to ``DIR/chunks/``, and a re-run
with the same arguments loads the chunks it finds instead of recomputing them (an interrupted sweep resumes). The
replicate/grid axis of a chunk can be sharded over devices (:mod:`jaxcoh.sharding`); chunk contents do not depend on
the chunk size or the device count.

Tables have one row per replicate or grid point: the input columns, the fitted parameters, ``loss``, ``rms``, ``r``,
``n`` (galaxies counted) and ``status``.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax import Array

from ..catalog import Catalog
from ..coherence import Hyperparameters
from ..results import arrays_digest
from ..resumable import run_chunked, run_key
from ..sharding import gather, pad_rows, padded_size, shard_leading
from ..solvers import SolverOptions, Status, solve
from ..solvers.common import jit_with_options
from .derivation import FMissing, derive_f_missing
from .fitting import FitSettings, best_of_starts, fit, solve_batch, solve_starts_and_weights, starts
from .models import Model, get_model
from .objective import FitData, as_fit_data, evaluate, fit_data, unconstrained_residuals

log = logging.getLogger("jaxcoh")

KINDS = ("bootstrap", "grid", "profile", "multistart")
TABLE_FORMAT = 2  # bump when the columns of a chunk change: chunks of another format are not reused


def sweep_key(arguments: Mapping) -> str:
    """The resumable key of a sweep: its arguments and the table format (chunks of another are never reused)."""
    return run_key({**arguments, "table_format": TABLE_FORMAT})


def _trim(tree, n: int):
    return jax.tree_util.tree_map(lambda a: a[:n], tree)


def _rows(model: Model, inputs: Mapping[str, np.ndarray], values: Mapping[str, Array], best, metrics) -> pd.DataFrame:
    cols = {k: np.asarray(v) for k, v in inputs.items()}
    cols.update({k: np.asarray(values[k]) for k in model.parameters.names})
    for k, f in model.derived.items():  # the combinations the data constrain (degenerate parameters)
        cols[k] = np.asarray(jax.vmap(f)({p: jnp.asarray(values[p]) for p in model.parameters.names}))
    cols.update(loss=np.asarray(best.loss), rms=np.asarray(metrics["rms"]), r=np.asarray(metrics["r"]),
                n=np.asarray(metrics["n"]), n_iter=np.asarray(best.n_iter),
                status=[Status(int(s)).name for s in np.asarray(best.status)])
    if "F_mean" in metrics:  # grids: F_missing itself changes with the hyperparameters (it scales as 1/A0)
        cols["rms_rel"] = cols["rms"] / np.asarray(metrics["F_mean"])
    return pd.DataFrame(cols)


def summarize(table: pd.DataFrame, params: Sequence[str]) -> dict:
    """Per parameter: median, mean, std and the 68% and 95% central intervals over converged rows."""
    ok = table[table["status"] == "CONVERGED"]
    out = {"n_rows": len(table), "n_converged": len(ok), "intervals": {}}
    for p in params:
        v = ok[p].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        q = np.percentile(v, [2.5, 16, 50, 84, 97.5])
        out["intervals"][p] = {"median": q[2], "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                            "interval_68": [q[1], q[3]], "interval_95": [q[0], q[4]]}
    return out


# ---- bootstrap -----------------------------------------------------------------------------------------------------
def bootstrap_weights(sample: Array, replicates: Array, seed: int) -> Array:
    """``[B, g]`` resampling counts of the sample galaxies for the replicate numbers ``replicates`` ``[B]``.

    Replicate ``b`` draws ``n_sample`` galaxies with replacement from the key ``fold_in(PRNGKey(seed), b)``, so a
    replicate is the same whatever chunk or device computes it.
    """
    sample = jnp.asarray(sample, bool)
    idx = jnp.nonzero(sample, size=sample.shape[0], fill_value=0)[0]
    n = jnp.sum(sample)

    def one(b):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), b)
        draw = jax.random.randint(key, (sample.shape[0],), 0, n)
        live = jnp.arange(sample.shape[0]) < n
        return jnp.zeros(sample.shape[0], jnp.int32).at[idx[draw]].add(live.astype(jnp.int32))

    return jax.vmap(one)(jnp.asarray(replicates))


def chunk_rows(n_rows: int, chunk_size: int) -> int:
    """The rows every chunk of a sweep is padded to: one shape for all of them (the last, shorter chunk would
    otherwise compile its own programs, which costs more than computing the padding)."""
    return padded_size(min(chunk_size, n_rows))


@jit_with_options(static_argnames=("model", "solver"), options_argnames=("options",))
def _bootstrap_chunk(model, solver, options, z0, data: FitData, replicates: Array, seed: int):
    w = bootstrap_weights(data.sample, replicates, seed).astype(data.target.dtype)
    w = shard_leading(w)
    _, best = best_of_starts(solve_starts_and_weights(model, solver, options, z0, data, w))
    values = jax.vmap(model.parameters.to_values)(best.z)
    metrics = jax.vmap(lambda v, ww: evaluate(model, v, data, ww))(values, w)
    return values, best, metrics


@jit_with_options(static_argnames=("model", "solver"), options_argnames=("options",))
def _bootstrap_continue(model, solver, options, z: dict, data: FitData, replicates: Array, seed: int):
    """Resumes replicate ``b`` from its own ``z[b]`` (one start each): the second phase of :func:`bootstrap`."""
    w = shard_leading(bootstrap_weights(data.sample, replicates, seed).astype(data.target.dtype))
    res = jax.vmap(lambda zz, ww: solve(solver, zz, ww, options=options,
                                        residual_fn=lambda z_, w_: unconstrained_residuals(model, z_, data, w_)))(z, w)
    values = jax.vmap(model.parameters.to_values)(res.z)
    return values, res, jax.vmap(lambda v, ww: evaluate(model, v, data, ww))(values, w)


# Fractions of ``max_iter`` after which the rows still running are compacted and continued alone. With several
# starts per row, a short first phase picks each row's best start early, so that the rest of the solve runs one lane
# per row instead of one per start.
PHASES_ONE_START = (0.25,)
PHASES_MANY_STARTS = (0.05, 0.25)


def _in_phases(first_call, continue_call, options: SolverOptions, n_starts: int):
    """Under ``vmap`` every lane waits for the slowest: run a short first phase on every row, then continue only the
    unconverged rows from where they stopped (padded to a power of two, so the later calls compile for few shapes),
    at each fraction of :data:`PHASES_ONE_START` or, with several starts per row, :data:`PHASES_MANY_STARTS`, and a
    last time up to ``max_iter``.

    ``first_call(options) -> (values, best, metrics)`` for all rows; ``continue_call(options, idx, z)`` for the rows
    ``idx`` from their states ``z``; both return host arrays.
    """
    phases = PHASES_MANY_STARTS if n_starts > 1 else PHASES_ONE_START
    ends = sorted({max(int(options.max_iter * f), 1) for f in phases if f < 1} | {options.max_iter})
    values, best, metrics = first_call(options._replace(max_iter=ends[0]))
    done = ends[0]
    for end in ends[1:]:
        todo = np.nonzero(np.asarray(best.status) == Status.MAX_ITER)[0]
        if todo.size == 0:
            break
        idx = pad_rows(todo, padded_size(1 << int(np.ceil(np.log2(todo.size)))))
        z = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[idx]), best.z)
        v2, b2, m2 = continue_call(options._replace(max_iter=end - done), idx, z)
        b2 = b2._replace(n_iter=np.asarray(b2.n_iter) + done)

        def merge(a, b):
            a = np.array(a)
            a[todo] = np.asarray(b)[: todo.size]
            return a

        values, best, metrics = (jax.tree_util.tree_map(merge, values, v2), jax.tree_util.tree_map(merge, best, b2),
                                 jax.tree_util.tree_map(merge, metrics, m2))
        done = end
    return values, best, metrics


def _bootstrap_phases(model, solver, options, z0, data, reps: np.ndarray, seed):
    """The bootstrap chunk of replicates ``reps`` in phases (see :func:`_in_phases`)."""
    return _in_phases(
        lambda o: gather(_bootstrap_chunk(model, solver, o, z0, data, jnp.asarray(reps), seed)),
        lambda o, idx, z: gather(_bootstrap_continue(model, solver, o, z, data, jnp.asarray(reps[idx]), seed)),
        options, len(next(iter(z0.values()))))


def bootstrap(
    model: str | Model,
    fm: FMissing | FitData,
    *,
    n_boot: int = 1000,
    settings: FitSettings = FitSettings(n_starts=1),
    chunk_size: int = 1024,
    out: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """``n_boot`` bootstrap refits of ``model`` over galaxies (resampled with replacement, replicates drawn with
    ``settings.seed``), each from the full-sample best fit (plus ``settings.n_starts - 1`` Sobol starts, if asked:
    under vmap every start costs as much as the slowest). Returns the table (one row per replicate) and a summary."""
    model = get_model(model)
    data = as_fit_data(fm)
    dt = data.target.dtype
    solver, options, n_starts, seed = settings.solver, settings.options, settings.n_starts, settings.seed
    full = fit(model, data, settings._replace(n_starts=max(n_starts * 8, 64)))
    z0 = starts(model, settings, dt, init=full.params)
    args = {"kind": "bootstrap", "model": model.name, "n_boot": n_boot, "seed": seed, "n_starts": n_starts,
            "solver": solver, "options": options._asdict(), "data": _data_digest(data)}

    def compute(lo, hi):
        reps = pad_rows(np.arange(lo, hi), chunk_rows(n_boot, chunk_size))
        out = _trim(_bootstrap_phases(model, solver, options, z0, data, reps, seed), hi - lo)
        return _rows(model, {"replicate": np.arange(lo, hi)}, *out)

    table = run_chunked(n_boot, chunk_size, compute, out=out, key=sweep_key(args), progress=progress)
    summary = {"kind": "bootstrap", "model": model.name, "params": list(model.parameters.names), "axes": [],
               "full_sample_fit": full.params, "full_sample_rms": full.metrics["rms"],
               "derived": list(model.derived), **summarize(table, [*model.parameters.names, *model.derived]),
               "arguments": args}
    return table, summary


def _data_digest(data: FitData) -> str:
    return arrays_digest((data.target, data.sample, *data.x))


# ---- hyperparameter grids -------------------------------------------------------------------------------------------
GRID_AXES = ("ell0", "p", "n_coh", "A0", "gamma_rough", "beta_sigma", "delta_R", "alpha_geom")


def grid_points(axes: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """The Cartesian product of ``axes`` as flat columns (last axis fastest)."""
    bad = set(axes) - set(GRID_AXES)
    if bad:
        raise KeyError(f"unknown grid axes {sorted(bad)}; choose among {GRID_AXES}")
    names = list(axes)
    prod = np.array(list(itertools.product(*[np.asarray(axes[k], float) for k in names])), dtype=float)
    return {k: prod[:, i] for i, k in enumerate(names)}


@functools.partial(jax.jit, static_argnames=("recipe", "names"))
def _grid_data(recipe, names, base: Hyperparameters, columns: Array, cat: Catalog) -> FitData:
    """The fit data of every grid point (``[P, g]`` leaves): F_missing re-derived with the point's hyperparameters."""
    columns = shard_leading(columns)
    return jax.vmap(lambda col: fit_data(derive_f_missing(base._replace(**{k: col[i] for i, k in enumerate(names)}),
                                                          cat, recipe)))(columns)


@jit_with_options(static_argnames=("model", "solver"), options_argnames=("options",))
def _grid_fit(model, solver, options, data: FitData, z0, rows: Array | None = None):
    """Every grid point of ``data`` refitted from the starts ``z0`` (``[S]`` leaves), or, with ``rows`` ``[P']``,
    the points ``rows`` each continued from its own state (``[P']`` leaves, one start each). Derived once per chunk
    (:func:`_grid_data`): the later phases only select rows of it."""
    if rows is not None:
        data = jax.tree_util.tree_map(lambda a: a[rows], data)
        z0 = jax.tree_util.tree_map(lambda a: a[:, None], z0)
    data = jax.tree_util.tree_map(shard_leading, data)

    def one(d, starts_):
        res = jax.vmap(lambda z: solve(solver, z, d, options=options,
                                       residual_fn=lambda zz, dd: unconstrained_residuals(model, zz, dd)))(starts_)
        _, best = best_of_starts(res)
        values = model.parameters.to_values(best.z)
        metrics = evaluate(model, values, d)
        metrics["F_mean"] = jnp.sum(jnp.where(d.sample, d.target, 0.0)) / jnp.maximum(jnp.sum(d.sample), 1)
        return values, best, metrics

    return jax.vmap(one, in_axes=(0, 0 if rows is not None else None))(data, z0)


def hyperparameter_grid(
    model: str | Model,
    catalog: Catalog,
    axes: Mapping[str, Sequence[float]],
    *,
    recipe: str = "legacy",
    base: Hyperparameters = Hyperparameters(),
    settings: FitSettings = FitSettings(n_starts=16),
    chunk_size: int = 256,
    out: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """For every point of the grid ``axes`` (derivation hyperparameters), re-derive F_missing on ``catalog`` and
    refit ``model`` from the starts of ``settings``; one row per grid point (the sample size ``n`` varies with it).

    ``rms`` is in units of that point's F_missing, which scales as 1/A0; compare points by ``rms_rel``
    (RMS / mean F_missing) or ``r``. The summary's best row is the lowest ``rms_rel``."""
    model = get_model(model)
    pts = grid_points(axes)
    names = tuple(pts)
    n = len(next(iter(pts.values())))
    dt = catalog.dtype
    cols = np.stack([pts[k] for k in names], axis=1)
    solver, options, n_starts, seed = settings.solver, settings.options, settings.n_starts, settings.seed
    z0 = starts(model, settings, dt)
    base = Hyperparameters(*base).astype(dt)
    args = {"kind": "grid", "model": model.name, "axes": {k: list(map(float, v)) for k, v in axes.items()},
            "recipe": recipe, "base": base._asdict(), "n_starts": n_starts, "seed": seed, "solver": solver,
            "options": options._asdict(), "data": catalog.source, "n_points": catalog.n_points}

    def compute(lo, hi):
        c = pad_rows(cols[lo:hi], chunk_rows(n, chunk_size))
        data = _grid_data(recipe, names, base, jnp.asarray(c, dt), catalog)
        out = _in_phases(
            lambda o: gather(_grid_fit(model, solver, o, data, z0)),
            lambda o, idx, z: gather(_grid_fit(model, solver, o, data, z, jnp.asarray(idx))),
            options, n_starts)
        return _rows(model, {k: pts[k][lo:hi] for k in names}, *_trim(out, hi - lo))

    table = run_chunked(n, chunk_size, compute, out=out, key=sweep_key(args), progress=progress)
    i = int(table["rms_rel"].idxmin())  # plain RMS is in units of each point's own F_missing
    summary = {"kind": "grid", "model": model.name, "params": list(model.parameters.names), "axes": list(names),
               "n_rows": n, "best": table.iloc[i].to_dict(), "arguments": args}
    return table, summary


# ---- profiles ------------------------------------------------------------------------------------------------------
@jit_with_options(static_argnames=("model", "name", "solver"), options_argnames=("options",))
def _profile_chunk(model, name, solver, options, fixed_values: Array, z0, data: FitData):
    spec = model.parameters
    fixed_values = shard_leading(fixed_values)

    def one(v):
        zf = spec[name].to_unconstrained(v)

        def residual_fn(z, d):
            return unconstrained_residuals(model, {**z, name: zf}, d)

        res = jax.vmap(lambda z: solve(solver, z, data, residual_fn=residual_fn, options=options))(z0)
        _, best = best_of_starts(res)
        values = spec.to_values({**best.z, name: zf})
        return values, best, evaluate(model, values, data)

    return jax.vmap(one)(fixed_values)


def profile(
    model: str | Model,
    fm: FMissing | FitData,
    name: str,
    values: Sequence[float],
    *,
    settings: FitSettings = FitSettings(n_starts=16),
    chunk_size: int = 256,
    out: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The loss profile along parameter ``name``: at each value, the other parameters refitted."""
    model = get_model(model)
    spec = model.parameters
    if name not in spec.names:
        raise KeyError(f"{model.name} has no parameter {name!r}; it has {spec.names}")
    data = as_fit_data(fm)
    dt = data.target.dtype
    solver, options, n_starts, seed = settings.solver, settings.options, settings.n_starts, settings.seed
    others = [p for p in spec if p.name != name]
    z_all = starts(model, settings, dt)
    z0 = {p.name: z_all[p.name] for p in others}
    vals = np.asarray(values, float)
    args = {"kind": "profile", "model": model.name, "param": name, "values": vals.tolist(), "n_starts": n_starts,
            "seed": seed, "solver": solver, "options": options._asdict(), "data": _data_digest(data)}

    def compute(lo, hi):
        v = jnp.asarray(pad_rows(vals[lo:hi], chunk_rows(len(vals), chunk_size)), dt)
        out = _trim(gather(_profile_chunk(model, name, solver, options, v, z0, data)), hi - lo)
        return _rows(model, {f"{name}_fixed": vals[lo:hi]}, *out)

    table = run_chunked(len(vals), chunk_size, compute, out=out, key=sweep_key(args), progress=progress)
    n_eff = float(jnp.sum(data.sample))
    # Least squares with unknown noise: 2 delta(log L) = n log(SSR / SSR_min) (profile likelihood ratio).
    table["delta_chi2"] = n_eff * np.log(table["loss"] / table["loss"].min())
    inside = table.loc[table["delta_chi2"] <= 1.0, f"{name}_fixed"]
    summary = {"kind": "profile", "model": model.name, "params": list(spec.names), "axes": [name],
               "n_rows": len(table), "best": table.iloc[int(table["loss"].idxmin())].to_dict(),
               "interval_68_on_grid": [float(inside.min()), float(inside.max())] if len(inside) else None,
               "arguments": args}
    return table, summary


# ---- multi-start -----------------------------------------------------------------------------------------------------
def multistart(
    model: str | Model,
    fm: FMissing | FitData,
    settings: FitSettings = FitSettings(n_starts=256),
) -> tuple[pd.DataFrame, dict]:
    """Every start of a global fit, as rows (where each start ended), to see the loss landscape's basins."""
    model = get_model(model)
    data = as_fit_data(fm)
    n_starts = settings.n_starts
    z0 = starts(model, settings, data.target.dtype)
    w = jnp.ones_like(data.target)[None]
    res = jax.tree_util.tree_map(lambda a: a[0], solve_batch(model, settings.solver, settings.options, z0, data, w))
    values = jax.vmap(model.parameters.to_values)(res.z)
    metrics = jax.vmap(lambda v: evaluate(model, v, data))(values)
    start_values = model.parameters.to_values(z0)
    table = _rows(model, {f"{k}_start": np.asarray(v) for k, v in start_values.items()}, values, res, metrics)
    table.insert(0, "start", np.arange(n_starts))
    best = int(table["loss"].idxmin())
    at_best = int(np.sum(table["loss"] <= table["loss"].min() * (1 + 1e-6)))
    summary = {"kind": "multistart", "model": model.name, "params": list(model.parameters.names), "axes": [],
               "n_rows": n_starts, "best": table.iloc[best].to_dict(), "n_at_best": at_best}
    return table, summary
