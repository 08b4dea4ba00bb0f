"""Several starts per galaxy: the per-galaxy problems of a joint fit are independent once the shared parameters are
fixed, and each can be multimodal (a halo's low- and high-concentration solutions, degenerate with Upsilon and D).

From the joint fit's solution, every galaxy's own and nuisance parameters are refitted from ``K`` starts (the
solution itself, or the initial values where nothing is shared and no joint solve comes first; then a Sobol design:
model parameters over their start ranges, nuisance values over +-3 prior standard deviations of each galaxy's own
priors) with the shared parameters held fixed; each galaxy keeps its best start. The ``K`` solves are a ``lax.map``
of the separable block Levenberg-Marquardt (every galaxy with its own damping), so memory is that of one solve.
Measured on SPARC with the standard cuts, one start left NFW's UGC02916 at objective 211.24 instead of 151.80
(Upsilon_disk 1.14, D 91.7 Mpc, c200 at its bound), which flipped the models' ranking by BIC.

A galaxy counts as multimodal when two of its starts that have settled end at objectives that differ. Settled: every
Newton step along one of the galaxy's own coordinates, with the exact diagonal of its Hessian, is below the
convergence test's ``STATIONARITY_TOL`` standard errors (the projected gradient at bounds, as in
:mod:`~jaxcoh.curves.convergence`). Starts still on their way after a short solve (the halo catalogue gives each 20
iterations; an earlier one, 15) are not modes: counted, they made every SPARC galaxy "multimodal" under eleven of the
twelve halo models. (The exact diagonal, not the Gauss-Newton one of the convergence test: at a mode where the
residuals' Jacobian vanishes, the Gauss-Newton step stays finite.) The test runs in the data's precision even where
the starts were solved in float32: at a bound, float32 rounds the bound's sigmoid slope to zero, so a start whose
gradient points inward (1e-12, with a Hessian diagonal of -1e-12, not an optimum) would pass as settled (on SPARC, 144
of pISO-Flat's 1400 starts).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..config import canonical_dtype
from ..sobol import sobol_points
from ..solvers import SolverOptions, solve
from ..solvers.common import jit_with_options
from ..tracecache import persistent
from .convergence import BOUND_U, STATIONARITY_TOL
from .folding import galaxy_objective_terms, lm_residuals
from .likelihood import CurveData, Likelihood, per_galaxy_groups
from .models import CurveModel
from .nuisance import nuisance_at_scores

SPREAD_SIGMA = 3.0  # nuisance starts span +-3 standard deviations of each galaxy's priors
DISAGREE_ABS = 1e-2  # objective (chi^2 / 2) by which two starts' optima must differ to count as different modes


class GalaxyStarts(NamedTuple):
    """What the starts per galaxy found: how many galaxies had starts that ended in different optima, and for how
    many a start beat the joint fit's own solution."""

    n_starts: int
    n_multimodal: int
    n_improved: int
    multimodal: np.ndarray | None = None  # [g] bool: two of its settled starts ended in different optima
    improved: np.ndarray | None = None  # [g] bool: its first start (the joint fit's solution, or the initial values
    # where nothing is shared) settled in an optimum that one of its other starts beat

    def to_dict(self) -> dict:
        return {"n_starts": self.n_starts, "n_multimodal": self.n_multimodal, "n_improved": self.n_improved}


def start_design(model: CurveModel, data: CurveData, opts: Likelihood, n: int, seed: int) -> dict:
    """``n`` starts of every galaxy's own parameters, unconstrained ``{group: {name: [n, g]}}``.

    A galaxy's starts are the Sobol design of its own parameters: those the model declares inert on it
    (:attr:`~jaxcoh.curves.models.CurveModel.inert_local`, e.g. Einasto's alpha on the other models' rows of a stack
    of halo models) stay at their initial values and take no dimension of the design, so each row of a stack starts
    where its model fitted alone would."""
    kinds = per_galaxy_groups(model, opts)
    cat = data.cat
    g = cat.n_galaxies
    inert = model.inert_local(g) if model.inert_local is not None else {}
    active = np.stack([~np.asarray(inert.get(p.name, np.zeros(g, bool))) if group == "local" else np.ones(g, bool)
                       for group, p in kinds])  # [kinds, g]
    u = np.zeros((n, len(kinds), g))
    for pattern in np.unique(active, axis=1).T:  # the galaxies with the same active kinds share a design
        if not pattern.any():
            continue
        on = np.all(active == pattern[:, None], axis=0)
        u[:, pattern, :] += sobol_points(int(pattern.sum()), n, seed)[:, :, None] * on
    out: dict = {"local": {}, **({"nuisance": {}} if opts.nuisance else {})}  # the layout of z
    init = model.local.init_values(g, dtype=cat.dtype)
    for j, (group, p) in enumerate(kinds):
        uj = jnp.asarray(u[:, j], cat.dtype)  # [n, g]: each galaxy's design point, in its own units
        if group == "local":
            values = jnp.where(jnp.asarray(active[j]), p.start_value(uj), init[p.name])
        else:
            values = nuisance_at_scores(p.name, SPREAD_SIGMA * (2 * uj - 1), cat)
        out[group][p.name] = p.to_unconstrained(values.astype(cat.dtype))
    return out


def gradient_and_hessian_diagonal(terms_of, own: dict, groups: list) -> tuple:
    """``(terms [g], gradient [c, g], Hessian diagonal [c, g])`` of per-galaxy terms ``terms_of(own) [g]`` whose
    galaxy ``j`` depends on its own parameters alone, along each parameter kind ``c`` of ``groups`` (the
    ``(group, Parameter)`` of :func:`~jaxcoh.curves.likelihood.per_galaxy_groups`, in ``own``'s layout).

    A tangent along one kind on every galaxy at once, differentiated twice in forward mode, gives every galaxy's
    gradient component and Hessian diagonal along that kind: one nested JVP per kind, vmapped (one copy of the model).
    Measured on the twelve-model halo stack of SPARC: 321 ms and 23 s of compilation, against 476 ms and 38 s for a
    Hessian-vector product per kind (forward over reverse)."""
    kinds = [(grp, p.name) for grp, p in groups]
    tangents = {grp: {name: jnp.stack([jnp.full_like(v, float((grp, name) == k)) for k in kinds])
                      for name, v in leaves.items()} for grp, leaves in own.items()}

    def second_order(t):
        (terms, d1), (_, d2) = jax.jvp(lambda o: jax.jvp(terms_of, (o,), (t,)), (own,), (t,))
        return terms, d1, d2

    terms, d1, d2 = jax.vmap(second_order)(tangents)  # [kinds, g] each
    return terms[0], d1, d2


def _judge(model: CurveModel, opts: Likelihood, shared_z: dict, own: dict, data: CurveData,
           test_settled: bool) -> tuple:
    """``(objective terms [g], settled [g])`` of every galaxy at its own parameters ``own`` (see the module's notes;
    all settled without ``test_settled``, whose derivatives then are not computed)."""
    terms_of = lambda o: galaxy_objective_terms(model, {"shared": shared_z, **o}, data, opts)  # noqa: E731
    if not test_settled:
        terms = terms_of(own)
        return terms, jnp.ones(terms.shape, bool)
    groups = per_galaxy_groups(model, opts)
    terms, d1, d2 = gradient_and_hessian_diagonal(terms_of, own, groups)
    settled = jnp.ones(terms.shape, bool)
    for c, (grp, p) in enumerate(groups):
        gc, hc, u = d1[c], d2[c], jax.nn.sigmoid(own[grp][p.name])
        if p.bounded:  # pushed outward at a bound: the bound holds it
            gc = jnp.where(((u <= BOUND_U) & (gc > 0)) | ((u >= 1 - BOUND_U) & (gc < 0)), 0.0, gc)
        settled &= (gc == 0) | ((hc > 0) & (gc * gc <= STATIONARITY_TOL**2 * jnp.where(hc > 0, hc, 1.0)))
    return terms, settled


@jit_with_options(static_argnames=("model", "opts", "test_settled"), options_argnames=("options",),
                  persist=True)
def solve_each_galaxy(model: CurveModel, opts: Likelihood, options: SolverOptions, shared_z: dict, starts: dict,
                      data: CurveData, test_settled: bool = True):
    """Every galaxy's own parameters refitted from each start of ``starts`` (``{group: {name: [K, g]}}``) with the
    shared parameters fixed at ``shared_z``. Returns the solutions ``[K, g]``, each galaxy's objective terms
    ``[K, g]``, whether each start has settled ``[K, g]`` (see the module's notes; all True without
    ``test_settled``, whose derivatives then are not computed) and the solves' statuses ``[K]``."""
    fn, row_galaxy = lm_residuals(data)

    def one(local):
        res = solve("block_lm", {"shared": {}, "local": local}, data, options=options, row_galaxy=row_galaxy,
                    residual_fn=lambda zz, d: fn({"shared": shared_z, **zz["local"]}, model, d, opts))
        return res.z["local"], *_judge(model, opts, shared_z, res.z["local"], data, test_settled), res.status

    return jax.lax.map(one, starts)


@persistent(("model", "opts"))
@functools.partial(jax.jit, static_argnames=("model", "opts"))
def judge_each_start(model: CurveModel, opts: Likelihood, shared_z: dict, solutions: dict, data: CurveData):
    """``(objective terms [K, g], settled [K, g])`` at the solutions ``[K, g]`` of :func:`solve_each_galaxy`."""
    return jax.lax.map(lambda own: _judge(model, opts, shared_z, own, data, True), solutions)


def as_floats(tree, dtype):
    """``tree`` with its floating-point leaves in ``dtype`` (integer and boolean leaves as they are)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def solve_starts(model: CurveModel, opts: Likelihood, options: SolverOptions, shared_z: dict, starts: dict,
                 data: CurveData, precision: str | None = None):
    """:func:`solve_each_galaxy` with the settled test, the solves run in ``precision`` where given (the starts,
    data and shared values cast to it, the solutions cast back): each start's objective and settled test are then
    taken at its solution in the data's precision."""
    dt = data.cat.dtype
    if precision is None or canonical_dtype(precision) == dt:
        return solve_each_galaxy(model, opts, options, shared_z, starts, data)
    low = canonical_dtype(precision)
    solutions, _, _, status = solve_each_galaxy(model, opts, options, as_floats(shared_z, low), as_floats(starts, low),
                                                as_floats(data, low), test_settled=False)
    solutions = as_floats(solutions, dt)
    return (solutions, *judge_each_start(model, opts, shared_z, solutions, data), status)


def best_start_per_galaxy(model: CurveModel, opts: Likelihood, options: SolverOptions, z: dict, data: CurveData,
                          n_starts: int, seed: int, precision: str | None = None) -> tuple[dict, GalaxyStarts]:
    """``z`` with every galaxy's own parameters at the best of ``n_starts`` starts (the first is ``z`` itself), the
    starts solved in ``precision`` where given (:func:`solve_starts`)."""
    own = {k: v for k, v in z.items() if k != "shared"}
    design = start_design(model, data, opts, n_starts - 1, seed)
    starts = jax.tree_util.tree_map(lambda a, d: jnp.concatenate([a[None], d]), own, design)
    solutions, terms, settled, _ = solve_starts(model, opts, options, z["shared"], starts, data, precision)
    terms = np.asarray(terms, float)
    terms = np.where(np.isfinite(terms), terms, np.inf)
    best = np.argmin(terms, axis=0)  # [g]
    galaxies = np.arange(terms.shape[1])
    picked = jax.tree_util.tree_map(lambda a: a[jnp.asarray(best), jnp.asarray(galaxies)], solutions)
    active = np.asarray(data.cat.galaxy_mask)
    low = terms[best, galaxies]
    settled = np.isfinite(terms) & np.asarray(settled)  # [K, g]
    spread = np.max(np.where(settled, terms, -np.inf), axis=0) - np.min(np.where(settled, terms, np.inf), axis=0)
    tol = np.maximum(DISAGREE_ABS, 1e-6 * np.abs(low))
    multimodal = active & (settled.sum(axis=0) >= 2) & (spread > tol)
    improved = active & settled[0] & (terms[0] - low > tol)  # the first start settled in a worse optimum
    info = GalaxyStarts(n_starts=n_starts, n_multimodal=int(np.sum(multimodal)), n_improved=int(np.sum(improved)),
                        multimodal=multimodal, improved=improved)
    return {"shared": z["shared"], **picked}, info
