"""How every benchmark times and reports: warm medians over repeats, compilation apart, and one result format."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import jax

MIN_TIMING_S = 0.5  # fast calls repeat beyond ``repeats`` until their runs add up to this (as timeit's autorange)
MAX_RUNS = 200


def block(x):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def _median_runs(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``fn`` over at least ``repeats`` runs, more for millisecond calls (their first few runs
    after compilation are slower, and 5 of them gave medians 40% off)."""
    runs, out = [], None
    while len(runs) < repeats or (sum(runs) < MIN_TIMING_S and len(runs) < MAX_RUNS):
        t0 = time.perf_counter()
        out = block(fn())
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), out


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """``(first_call_s, median_warm_s, result)``; compile time is ``first - warm``."""
    t0 = time.perf_counter()
    block(fn())
    first = time.perf_counter() - t0
    warm, out = _median_runs(fn, repeats)
    return first, warm, out


def wall(fn: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    return _median_runs(fn, repeats)


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far [GiB] (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def result(baseline_s, jaxcoh_s, compile_s, target, **details) -> dict:
    ratio = baseline_s / jaxcoh_s if jaxcoh_s > 0 else float("inf")
    return {"baseline_s": baseline_s, "jaxcoh_s": jaxcoh_s, "compile_s": compile_s, "ratio": ratio,
            "target": target, "met": bool(ratio >= target), **details}
