"""Progress of long solves, reported from inside jitted loops to whoever listens on the host.

A solver whose :class:`~jaxcoh.solvers.SolverOptions` has ``report=True`` calls :func:`report` once per iteration
through ``jax.debug.callback`` (unordered: it never blocks the computation it reports on), with the stage name, the
iteration, the objective and the gradient norm (arrays over the lanes of a vmapped solve). Nothing is printed here:
listeners (the command line's progress line, a test) are registered with :func:`listening` and throttle themselves;
the host calls :func:`started` when a fit begins and :func:`finished` when the reported solves have returned.
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
    """Host side of a solver's per-iteration report: the objective and gradient norm of the lane (start) with the
    lowest objective, and the iteration the loop has reached."""
    if not _listeners:
        return
    loss, grad_norm = np.ravel(np.asarray(loss, float)), np.ravel(np.asarray(grad_norm, float))
    finite = np.isfinite(loss)
    best = int(np.argmin(np.where(finite, loss, np.inf))) if finite.any() else None
    shown = (float(loss[best]), float(grad_norm[best])) if best is not None else (float("nan"), float("nan"))
    with _lock:
        for listener in list(_listeners):
            listener(stage, int(np.max(iteration)), *shown)


def started() -> None:
    """Called on the host when a fit whose solves report begins: a listener with a ``restart_clock`` method times its
    lines from then on, as the fit times its own log lines."""
    _tell("restart_clock")


def finished() -> None:
    """Called on the host when the solves reported on so far have returned: a listener with an ``end_of_stage``
    method closes its current stage then (a log shows the stage's last iteration before what the host logs next;
    from the reports alone a stage's end is only seen when the next stage reports)."""
    _tell("end_of_stage")


def _tell(method: str) -> None:
    with _lock:
        for listener in list(_listeners):
            if hasattr(listener, method):
                getattr(listener, method)()


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
