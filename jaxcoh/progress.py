"""Progress of long solves, reported from inside jitted loops to whoever listens on the host.

A solver whose :class:`~jaxcoh.solvers.SolverOptions` has ``report=True`` calls :func:`report` once per iteration
through ``jax.debug.callback`` (unordered: it never blocks the computation it reports on), with the stage name, the
iteration, the objective and the gradient norm (arrays over the lanes of a vmapped solve). Nothing is printed here:
listeners (the command line's progress line, a test) are registered with :func:`listening` and throttle themselves.
Without a listener a report costs one host call per iteration, which is why reporting is off by default.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np

Listener = Callable[[str, int, float, float], None]  # (stage, iteration, objective, gradient norm)
_listeners: list[Listener] = []
_lock = threading.Lock()  # callbacks arrive on the runtime's threads


def report(stage: str, iteration, loss, grad_norm) -> None:
    """Host side of a solver's per-iteration report: the best lane's objective and the largest gradient norm."""
    if not _listeners:
        return
    loss, grad_norm = np.asarray(loss, float), np.asarray(grad_norm, float)
    finite = loss[np.isfinite(loss)]
    best = float(finite.min()) if finite.size else float("nan")
    with _lock:
        for listener in list(_listeners):
            listener(stage, int(np.max(iteration)), best, float(np.max(grad_norm)))


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Calls ``listener(stage, iteration, objective, gradient_norm)`` for every report made inside the block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
