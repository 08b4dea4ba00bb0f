"""What a jaxcoh command spends its time on in a fresh process: importing, tracing, lowering, compiling (or loading
compiled programs from JAX's persistent cache) and the rest (computing, Python, files), from JAX's own monitoring
events, with the process's CPU time beside the wall time (on a shared machine the CPU time is the steadier figure).

    python -m jaxcoh.bench.startup reproduce --out results/reproduce --compilation-cache /tmp/empty-cache

runs ``jaxcoh reproduce ...`` in this process and prints one JSON line after the command's own output. Run it twice
with the same ``--compilation-cache`` directory (empty at first) for the first and the cached run.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import collections  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402

EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace_s",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
          "/jax/core/compile/backend_compile_duration": "compile_or_load_s",  # a cache hit's load included
          "/jax/compilation_cache/cache_retrieval_time_sec": "of_which_cache_load_s"}
COUNTS = {"/jax/compilation_cache/cache_hits": "cache_hits", "/jax/compilation_cache/cache_misses": "cache_misses",
          "/jax/compilation_cache/compile_requests_use_cache": "compile_requests"}


def _since_process_start() -> float:
    """Seconds since this process started (interpreter start-up and ``import jaxcoh``, which ``python -m`` does
    before this module runs, included); from /proc on Linux, else since this module was loaded."""
    import os

    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - T0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(argv: list[str]) -> dict:
    """Runs ``jaxcoh ARGV`` here and returns the breakdown (seconds; ``wall_s`` from the process's start, imports
    included; ``other_s`` is the wall time left over: computing, Python, files). The event times are summed over
    threads: where programs compile side by side (``reproduce`` fits its models in threads) they can add up to more
    than the wall time, and ``other_s`` goes negative."""
    durations: dict[str, float] = collections.defaultdict(float)
    counts: dict[str, int] = collections.defaultdict(int)
    n_compiles = [0]

    def on_duration(event: str, secs: float, **_) -> None:
        if event in EVENTS:
            durations[EVENTS[event]] += secs
            n_compiles[0] += event == "/jax/core/compile/backend_compile_duration"

    def on_event(event: str, **_) -> None:
        if event in COUNTS:
            counts[COUNTS[event]] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    from jaxcoh.cli import main

    t_import = _since_process_start()
    rc = main(argv)
    wall = _since_process_start()
    out = {"command": "jaxcoh " + " ".join(argv), "exit": rc, "wall_s": wall, "cpu_s": _cpu_s(),
           "start_and_import_s": t_import, **{k: durations.get(k, 0.0) for k in EVENTS.values()},
           "xla_compilations": n_compiles[0], **{k: counts.get(k, 0) for k in COUNTS.values()}}
    out["other_s"] = wall - t_import - sum(out[k] for k in ("trace_s", "lower_s", "compile_or_load_s"))
    return out


if __name__ == "__main__":
    res = measure(sys.argv[1:])
    print(json.dumps(res))
    sys.exit(res["exit"])
