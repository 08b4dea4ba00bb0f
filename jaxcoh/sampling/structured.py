"""The "structured" inverse mass matrix of :mod:`.nuts`: dense on the shared block, diagonal elsewhere, adapted by
blackjax's Welford estimators and written in blackjax's low-rank form."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import MassMatrixAdaptationState, mass_matrix_adaptation
from blackjax.adaptation.metric_recipes import MetricCore
from blackjax.mcmc.metrics import LowRankInverseMassMatrix
from jax.flatten_util import ravel_pytree


def shared_indices(position: Any, shared_key: str = "shared") -> np.ndarray:
    """Indices of the ``position[shared_key]`` coordinates in ``ravel_pytree(position)`` (blackjax's flat order)."""
    if not isinstance(position, dict) or shared_key not in position:
        raise ValueError(f"the structured mass matrix needs a dict position with a {shared_key!r} entry")
    flags = {k: jax.tree.map(lambda x, s=(k == shared_key): np.full(np.shape(x), s), v) for k, v in position.items()}
    return np.flatnonzero(np.asarray(ravel_pytree(flags)[0]))


class StructuredMetricState(NamedTuple):
    """Warm-up state of the structured mass matrix: two of blackjax's Welford accumulators and their result."""

    inverse_mass_matrix: LowRankInverseMassMatrix
    diagonal: MassMatrixAdaptationState  # all d coordinates, diagonal
    shared: MassMatrixAdaptationState  # the k shared coordinates, dense


def structured_metric_core(shared_idx: np.ndarray) -> MetricCore:
    """A blackjax ``MetricCore``: inverse mass matrix dense on the shared block, diagonal elsewhere.

    Each slow warm-up window feeds blackjax's regularised Welford estimators, a diagonal one on all coordinates and
    a dense one on the shared block (ours: running both and joining them).  The block-diagonal result
    ``blockdiag(C_shared, diag(var_rest))`` is written, exactly, in blackjax's low-rank form
    ``diag(sigma) (I + U (diag(lam) - I) U^T) diag(sigma)``: ``sigma`` the marginal sds, ``U`` the eigenvectors of
    the shared block's correlation matrix placed on the shared rows (zero elsewhere), ``lam`` its eigenvalues.  The
    kernel then costs O(d k), never a d x d matrix, and the step size is tuned against this very metric.
    """
    idx = np.asarray(shared_idx)
    k = idx.size
    if k == 0:
        raise ValueError("the structured mass matrix needs at least one shared coordinate")
    diag_init, diag_update, diag_final = mass_matrix_adaptation(is_diagonal_matrix=True)
    dense_init, dense_update, dense_final = mass_matrix_adaptation(is_diagonal_matrix=False)

    def assemble(diag: MassMatrixAdaptationState, dense: MassMatrixAdaptationState) -> LowRankInverseMassMatrix:
        variances, cov = diag.inverse_mass_matrix, dense.inverse_mass_matrix  # [d], [k, k]
        sd = jnp.sqrt(jnp.diagonal(cov))
        lam, vectors = jnp.linalg.eigh(cov / (sd[:, None] * sd[None, :]))
        u = jnp.zeros((variances.shape[0], k), variances.dtype).at[idx].set(vectors)
        # Regularisation keeps the correlation matrix positive definite; the floor only guards round-off.
        return LowRankInverseMassMatrix(jnp.sqrt(variances).at[idx].set(sd), u, jnp.maximum(lam, 1e-12))

    def init(n_dims: int) -> StructuredMetricState:
        diag, dense = diag_init(n_dims), dense_init(k)
        return StructuredMetricState(assemble(diag, dense), diag, dense)

    def update(state: StructuredMetricState, position: Any, grad: Any = None) -> StructuredMetricState:
        flat, _ = ravel_pytree(position)
        return state._replace(diagonal=diag_update(state.diagonal, flat), shared=dense_update(state.shared, flat[idx]))

    def final(state: StructuredMetricState) -> StructuredMetricState:
        diag, dense = diag_final(state.diagonal), dense_final(state.shared)
        return StructuredMetricState(assemble(diag, dense), diag, dense)

    return MetricCore(init=init, update=update, final=final)
