"""The posterior of a rotation-curve model sampled with NUTS: every shared, per-galaxy and nuisance parameter (and
``sigma_int`` with ``Likelihood(intrinsic_scatter=True)``), marginalised jointly.

:func:`sample_curves` fits the MAP (:func:`jaxcoh.curves.fit`), starts ``n_chains`` chains there (jittered), adapts
step size and mass matrix (:func:`jaxcoh.sampling.warmup`) and draws in chunks (:func:`jaxcoh.sampling.run_nuts`)
on the log density of :mod:`jaxcoh.curves.posterior` (the fit's objective with its priors, in the unconstrained
coordinates ``z``, with the log-det-Jacobians). With ``out``, the MAP start, the sampler state after warm-up and
after every chunk, and every chunk's draws are stored under ``out/chunks/<key>-*`` (``key``: a hash of the data, the
model, the likelihood and the settings), so a re-run with the same arguments loads them and continues where an
interrupted run stopped: the draws are identical to an uninterrupted run's (one RNG key per draw). Draws are
returned in natural units (the parameters' values) with the galaxy names; the tables are ArviZ's summaries.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..catalog import Catalog
from ..results import arrays_digest, atomic_write_bytes, atomic_write_json, remove_other_keys
from ..resumable import run_key
from ..sampling import nuts
from .fitting import CurveSettings, at_joint_maximum, fit, starts
from .likelihood import CurveData, Likelihood, curve_data, evaluate, likelihood_model, prepare
from .models import CurveModel, get_model
from .nuisance import NUISANCE
from .posterior import log_density

log = logging.getLogger("jaxcoh")

PER_GALAXY = ("local", "nuisance")  # the groups of z with a galaxy axis
STARTS = ("map", "prior")
CURVE_QUANTILES = (0.05, 0.16, 0.5, 0.84, 0.95)
Z_START_CLIP = 10.0  # a MAP on a bound maps to |z| ~ 16, where the bijection is flat: start inside


class SampleSettings(NamedTuple):
    """How the posterior is sampled (NUTS, Stan's window adaptation); see :func:`jaxcoh.sampling.run_nuts`."""

    n_chains: int = 4
    n_warmup: int = 500
    n_draws: int = 500
    chunk_size: int = 100  # draws per chain stored (and resumable) at a time
    mass_matrix: str = "arrowhead"  # measured on SPARC's RAR: fewer gradients per draw, no r_hat warnings (README)
    seed: int = 0
    # 0.9, not Stan's 0.8: on SPARC's RAR (4 x (1000 + 1000), arrowhead, seed 2) 0.8 left two chains with 336 and 257
    # divergent draws and r_hat 1.19 (ESS of g_dagger 624); 0.9 gave none, r_hat <= 1.007, ESS 2605, in 1.2x the time
    target_accept: float = 0.9
    max_tree_depth: int = 10
    init_scale: float = 0.1  # chains start at the MAP + init_scale * N(0, 1) in z
    curve_draws: int = 200  # draws (thinned over all chains) behind the posterior curve bands
    start: str = "map"  # "map": chains start at the MAP fit; "prior": at the fit's own start (declared inits, prior
    # centres of the nuisance values), no fit (cheap, for small problems and tests: warm-up has further to go)


class PosteriorSample(NamedTuple):
    """What :func:`sample_curves` returns: draws in natural units as ArviZ InferenceData (``posterior`` with dim
    ``galaxy`` for per-galaxy parameters, ``sample_stats``), ArviZ summaries of the shared and the per-galaxy
    parameters, the posterior bands of the model curves, the run's facts (``info``: the content of sample.json) and
    the convergence warnings."""

    idata: Any
    summary: Any  # pandas DataFrame, one row per shared parameter
    per_galaxy: Any  # pandas DataFrame, one row per (per-galaxy parameter, galaxy)
    curves: Any  # pandas DataFrame, one row per point
    info: dict
    warnings: list[str]


# Compile time, apart from run time: jax reports every trace, lowering and backend compilation here.
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile_s = [0.0]


def _on_event(event: str, duration: float, **_: Any) -> None:
    if event in _COMPILE_EVENTS:
        _compile_s[0] += duration


jax.monitoring.register_event_duration_secs_listener(_on_event)


class _Clock:
    """Wall time of a phase and the part of it jax spent compiling."""

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), _compile_s[0]
        return self

    def __exit__(self, *exc):
        self.wall, self.compile = time.perf_counter() - self.t0, _compile_s[0] - self.c0


def _data_digest(cat: Catalog) -> str:
    return arrays_digest([cat.R, cat.V_obs, cat.e_V_obs, cat.V_gas, cat.V_disk, cat.V_bul, cat.mask, cat.distance,
                          cat.inclination, cat.e_distance, cat.e_inclination], " ".join(map(str, cat.names)))


def _data_key(model: CurveModel, opts: Likelihood, cat: Catalog) -> str:
    """In-process cache key (the model by identity: models are static arguments, hashed so)."""
    return f"{id(model)} {opts} {_data_digest(cat)}"


_DENSITIES: dict[str, Callable] = {}  # one closure per (model, likelihood, data): the engine's programs are cached on it


def posterior_density(model: CurveModel, data: CurveData, opts: Likelihood) -> Callable[[dict], jax.Array]:
    """``z -> log posterior`` for the sampler. Padding galaxies (no real point) touch nothing, so their coordinates
    get a standard normal density instead of an improper flat one (they are dropped from the outputs)."""
    cat = data.cat
    key = _data_key(model, opts, cat)
    if key not in _DENSITIES:
        base, real = log_density(model, data, opts), cat.galaxy_mask

        def density(z: dict) -> jax.Array:
            pad = sum((jnp.sum(jnp.where(real, 0.0, -0.5 * x**2)) for k in PER_GALAXY if k in z
                       for x in jax.tree.leaves(z[k])), jnp.zeros(()))
            return base(z) + pad

        if len(_DENSITIES) >= 8:
            _DENSITIES.pop(next(iter(_DENSITIES)))
        _DENSITIES[key] = density
    return _DENSITIES[key]


def to_natural(model: CurveModel, z: dict) -> dict:
    """Draws ``z`` (``[..., g]`` per galaxy) in the parameters' values, same tree."""
    out = {"shared": model.shared.to_values(z["shared"]), "local": model.local.to_values(z["local"])}
    if "nuisance" in z:
        out["nuisance"] = NUISANCE.to_values(z["nuisance"])
    return jax.tree.map(np.asarray, out)


def map_position(model: CurveModel, result, dtype) -> dict:
    """The unconstrained ``z`` of a :class:`~jaxcoh.curves.CurveFit` (clipped to ``|z| <= Z_START_CLIP``)."""
    z = {"shared": model.shared.to_unconstrained({k: jnp.asarray(result.params[k], dtype) for k in model.shared.names}),
         "local": model.local.to_unconstrained({k: jnp.asarray(v, dtype) for k, v in result.local.items()})}
    if result.likelihood.nuisance:
        z["nuisance"] = NUISANCE.to_unconstrained({k: jnp.asarray(v, dtype) for k, v in result.nuisance.items()})
    return jax.tree.map(lambda a: jnp.clip(a, -Z_START_CLIP, Z_START_CLIP), z)


class _Store:
    """``out/chunks/<key>-*``: the MAP start (JSON), the sampler state (npz), each chunk of draws and statistics
    (npz, with its wall and compile time). Every file is written atomically; the state after a chunk is written
    after the chunk, so a state never points past the chunks on disk."""

    def __init__(self, out: str | Path | None, key: str, template: dict):
        self.dir = Path(out) / "chunks" if out is not None else None
        self.key, self.template = key, template
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            stale = remove_other_keys(self.dir, key)
            if stale:
                log.info(f"removed {stale} stored sampling files of a run with other arguments from {self.dir}")

    def path(self, name: str) -> Path | None:
        return self.dir / f"{self.key}-{name}" if self.dir is not None else None

    def load_json(self, name: str) -> dict | None:
        p = self.path(name)
        return json.loads(p.read_text()) if p is not None and p.is_file() else None

    def save_json(self, name: str, doc: dict) -> None:
        if self.dir is not None:
            atomic_write_json(self.path(name), doc)

    def load_state(self) -> nuts.SamplerState | None:
        p = self.path("state.npz")
        return nuts.load_state(p, self.template) if p is not None and p.is_file() else None

    def save_state(self, state: nuts.SamplerState) -> None:
        if self.dir is not None:
            nuts.save_state(self.path("state.npz"), state)

    def save_chunk(self, k: int, draws: Any, stats: nuts.SampleStats, meta: dict) -> None:
        if self.dir is None:
            return
        buf = io.BytesIO()
        leaves = [np.asarray(x) for x in jax.tree.leaves((draws, stats))]
        np.savez(buf, meta=np.asarray(json.dumps(meta)), **{f"leaf_{i}": x for i, x in enumerate(leaves)})
        atomic_write_bytes(self.path(f"chunk-{k:05d}.npz"), buf.getvalue())

    def load_chunk(self, k: int) -> tuple[Any, nuts.SampleStats, dict]:
        treedef = jax.tree.structure((self.template, nuts.SampleStats(*[0] * len(nuts.SampleStats._fields))))
        with np.load(self.path(f"chunk-{k:05d}.npz")) as f:
            leaves = [f[f"leaf_{i}"] for i in range(treedef.num_leaves)]
            meta = json.loads(str(f["meta"]))
        draws, stats = jax.tree.unflatten(treedef, leaves)
        return draws, stats, meta


def sample_curves(
    model: str | CurveModel,
    cat: Catalog,
    settings: SampleSettings = SampleSettings(),
    fit_settings: CurveSettings = CurveSettings(errors=False),
    *,
    out: str | Path | None = None,
    progress: Callable[[str, int], None] | None = None,
    key_extra: dict | None = None,
) -> PosteriorSample:
    """NUTS draws of the joint posterior of ``model`` on ``cat`` (already cut) under ``fit_settings.likelihood``,
    started from the MAP fitted with ``fit_settings`` (the joint MAP where its ``marginal`` is "auto"). ``out``:
    where chunks are stored and resumed from (see the module docstring). ``progress(phase, n)``: called with
    ``("warmup", n_warmup)`` once warm-up is done (or resumed) and ``("draws", n_done)`` after every chunk (draws per
    chain). ``key_extra``: more that identifies the data (e.g. its provenance) for the resume key."""
    fit_settings = at_joint_maximum(fit_settings)  # the start: the mode of the joint posterior that is sampled
    opts = fit_settings.likelihood
    base = get_model(model)
    lmodel = likelihood_model(base, opts)
    s = settings
    if s.n_chains < 1 or s.n_warmup < 1 or s.n_draws < 1 or s.chunk_size < 1:
        raise ValueError(f"n_chains, n_warmup, n_draws and chunk_size must be positive: {s}")
    if s.start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {s.start!r}")
    mass_matrix = s.mass_matrix
    if mass_matrix in ("structured", "arrowhead") and not len(lmodel.shared):
        log.info(f"{lmodel.name} has no shared parameter: diagonal mass matrix instead of {mass_matrix}")
        mass_matrix = "diagonal"
    data = prepare(curve_data(cat, opts.recipe), opts)
    digest = _data_digest(cat)
    fit_key = {k: v for k, v in fit_settings._asdict().items() if k not in ("report", "likelihood")}
    key = run_key({"model": lmodel.name, "shared": lmodel.shared.names, "local": lmodel.local.names,
                   "likelihood": opts._asdict(), "sample": s._replace(mass_matrix=mass_matrix)._asdict(),
                   "fit": fit_key, "data": digest, **(key_extra or {})})
    template = jax.tree.map(lambda a: a[0], starts(lmodel, data, opts, 1, 0))
    store = _Store(out, key, template)
    density = posterior_density(lmodel, data, opts)
    real = np.flatnonzero(np.asarray(cat.galaxy_mask))
    names = [str(cat.names[i]) for i in real]

    start, state = store.load_json("start.json"), store.load_state()
    resumed = state is not None and start is not None
    if not resumed:
        if s.start == "map":
            with _Clock() as c_fit:
                result = fit(base, cat, fit_settings)
            z0 = map_position(lmodel, result, cat.dtype)
            start = {"map": {"params": result.params, "objective": result.objective, "status": result.status},
                     "wall_s": {"map_fit": c_fit.wall}}
            log.info(f"MAP of {lmodel.name}: " + ", ".join(f"{k} = {v:.4g}" for k, v in result.params.items())
                     + f" ({result.status})")
        else:
            z0, start = template, {"map": None, "wall_s": {"map_fit": 0.0}}
        log.info(f"warm-up of {s.n_chains} chains x {s.n_warmup} steps")
        with _Clock() as c_warm:
            state = nuts.warmup(density, z0, seed=s.seed, n_chains=s.n_chains, n_warmup=s.n_warmup,
                                mass_matrix=mass_matrix, init_scale=s.init_scale, target_accept=s.target_accept,
                                max_tree_depth=s.max_tree_depth,
                                prior_draws=None if s.start == "map" else 0.0)  # the Laplace metric is the MAP's
            jax.block_until_ready(state)
        start["wall_s"].update(warmup=c_warm.wall, warmup_compile=c_warm.compile)
        store.save_state(state)
        store.save_json("start.json", start)  # last: a start.json means a saved warmed-up state
    else:
        log.info(f"resuming from {store.dir}: warm-up done, {int(state.n_done)} of {s.n_draws} draws per chain")
    if progress is not None:
        progress("warmup", s.n_warmup)

    chunks = []
    n_stored = -(-int(state.n_done) // s.chunk_size) if resumed else 0
    for k in range(n_stored):
        chunks.append(store.load_chunk(k))
    if progress is not None and n_stored:
        progress("draws", int(state.n_done))
    clock = [time.perf_counter(), _compile_s[0]]

    def on_chunk(draws, stats, st):
        wall, comp = time.perf_counter() - clock[0], _compile_s[0] - clock[1]
        meta = {"wall_s": wall, "compile_s": comp}
        k = (int(st.n_done) - 1) // s.chunk_size
        store.save_chunk(k, draws, stats, meta)
        store.save_state(st)
        chunks.append((draws, stats, meta))
        if progress is not None:
            progress("draws", int(st.n_done))
        clock[:] = [time.perf_counter(), _compile_s[0]]

    nuts.run_nuts(density, template, n_draws=s.n_draws, chunk_size=s.chunk_size, max_tree_depth=s.max_tree_depth,
                  resume_state=state, on_chunk=on_chunk, keep_draws=False)
    z, stats = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *[(d, st) for d, st, _ in chunks])
    return _assemble(lmodel, data, opts, cat, s._replace(mass_matrix=mass_matrix), z, stats, start,
                     [m for *_, m in chunks], n_stored, real, names, key)


def _select(z: dict, real: np.ndarray) -> dict:
    """Per-galaxy leaves ``[c, n, g]`` restricted to the real galaxies."""
    return {k: (jax.tree.map(lambda a: np.asarray(a)[:, :, real], v) if k in PER_GALAXY else v) for k, v in z.items()}


def _assemble(model, data, opts, cat, s: SampleSettings, z, stats, start, metas, n_resumed, real, names, key):
    from ..sampling.posterior import convergence_warnings, summary_table, to_inference_data

    natural = _select(to_natural(model, z), real)
    per_galaxy_vars = [n for g in PER_GALAXY for n in natural.get(g, {})]
    attrs = {"model": model.name, "mass_matrix": s.mass_matrix, "intrinsic_scatter": int(opts.intrinsic_scatter)}
    idata = to_inference_data(natural, stats, galaxy_names=names, per_galaxy=PER_GALAXY, attrs=attrs)
    shared_names = list(model.shared.names)
    summary = summary_table(idata, shared_names) if shared_names else _empty_summary()
    per_galaxy = summary_table(idata, per_galaxy_vars) if per_galaxy_vars else _empty_summary()
    warnings = convergence_warnings(idata, _concat(summary, per_galaxy))
    st = jax.tree.map(np.asarray, stats)
    depth, n_div = st.tree_depth, int(st.diverging.sum())
    walls = [m["wall_s"] for m in metas]
    compiles = [m["compile_s"] for m in metas]
    wall = dict(start["wall_s"])
    wall.update(sampling=float(sum(walls)), sampling_compile=float(sum(compiles)))
    wall["compile"] = wall.get("warmup_compile", 0.0) + wall["sampling_compile"]
    wall["total"] = wall.get("map_fit", 0.0) + wall.get("warmup", 0.0) + wall["sampling"]
    wall["total_excluding_compile"] = wall["total"] - wall["compile"]
    info = {
        "model": model.name, "key": key, "n_galaxies": len(names), "n_points": cat.n_points,
        "n_dims": int(jax.flatten_util.ravel_pytree(jax.tree.map(lambda a: a[0, 0], z))[0].size),
        "n_chains": s.n_chains, "n_warmup": s.n_warmup, "n_draws": s.n_draws, "mass_matrix": s.mass_matrix,
        "chain_method": nuts.DEFAULT_CHAIN_METHOD,
        "n_draws_total": int(st.diverging.size), "divergences": n_div,
        "divergence_fraction": n_div / max(st.diverging.size, 1),
        "step_size": [float(x) for x in st.step_size[:, 0]],
        "tree_depth": {"mean": float(depth.mean()), "max": int(depth.max()),
                       "at_max_tree_depth": int((depth >= s.max_tree_depth).sum())},
        "n_steps_mean": float(st.n_steps.mean()), "acceptance_rate_mean": float(st.acceptance_rate.mean()),
        "wall_s": wall, "chunks_resumed": n_resumed, "map": start["map"],
        "config": {"sample": s._asdict(), "likelihood": opts._asdict()}, "warnings": warnings,
    }
    curves = posterior_curves(model, z, data, opts, cat, s.curve_draws)
    return PosteriorSample(idata, summary, per_galaxy, curves, info, warnings)


def _empty_summary():
    import pandas as pd

    from ..sampling.posterior import SUMMARY_COLUMNS

    return pd.DataFrame(columns=["parameter", *SUMMARY_COLUMNS])


def _concat(a, b):
    import pandas as pd

    return pd.concat([t for t in (a, b) if len(t)], ignore_index=True) if len(a) or len(b) else a


_SPEEDS: dict[str, Callable] = {}


def _speeds_program(model: CurveModel, opts: Likelihood, data: CurveData) -> Callable:
    """Jitted ``z [b, ...] -> model speed [b, g, n]`` in the table's inclination frame (cached per data)."""
    cat = data.cat
    key = _data_key(model, opts, cat)
    if key not in _SPEEDS:
        def one(zi):
            ev = evaluate(model, zi, data, opts)
            incl = NUISANCE.to_values(zi["nuisance"])["inclination"] if "nuisance" in zi else cat.inclination
            return ev.V_model * (jnp.sin(jnp.deg2rad(incl)) / jnp.sin(jnp.deg2rad(cat.inclination)))[:, None]

        _SPEEDS.clear()  # one data set at a time: the catalog is a constant of the program
        _SPEEDS[key] = jax.jit(jax.vmap(one))
    return _SPEEDS[key]


def posterior_curves(model: CurveModel, z: dict, data: CurveData, opts: Likelihood, cat: Catalog,
                     n_curves: int = 200, batch: int = 25):
    """Quantiles (:data:`CURVE_QUANTILES`) of the model speed at every real point over ``n_curves`` draws thinned
    evenly from ``z`` (``[chain, draw, ...]``), in the table's frame: each draw's model speed is taken back from its
    inclination to the table's (``V sin(i) / sin(i_table)``: what the observed speeds are compared with), at the
    table's radii. Columns ``galaxy, R_kpc, V_obs, e_V_obs, V_model_q05, ..., V_model_q95``."""
    import pandas as pd

    c, n = np.shape(jax.tree.leaves(z)[0])[:2]
    idx = np.unique(np.linspace(0, c * n - 1, min(n_curves, c * n)).round().astype(int))
    pad = (-len(idx)) % batch  # equal batches: one compiled program
    idx = np.concatenate([idx, np.repeat(idx[-1:], pad)])
    flat = jax.tree.map(lambda a: np.asarray(a).reshape(c * n, *np.shape(a)[2:])[idx], z)
    speeds = _speeds_program(model, opts, data)
    V = np.concatenate([np.asarray(speeds(jax.tree.map(lambda a, i=i: a[i:i + batch], flat)))
                        for i in range(0, len(idx) + pad, batch)])[:len(idx)]
    q = np.quantile(V, CURVE_QUANTILES, axis=0)  # [5, g, n]
    mask = np.asarray(cat.mask)
    gi, pi = np.nonzero(mask)
    table = {"galaxy": [str(cat.names[i]) for i in gi], "R_kpc": np.asarray(cat.R)[gi, pi],
             "V_obs": np.asarray(cat.V_obs)[gi, pi], "e_V_obs": np.asarray(cat.e_V_obs)[gi, pi]}
    for p, qq in zip(CURVE_QUANTILES, q):
        table[f"V_model_q{round(100 * p):02d}"] = qq[gi, pi]
    return pd.DataFrame(table)
