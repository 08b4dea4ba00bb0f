"""Strict defaults for every test: float64 available, implicit rank promotion an error, the SPARC fixture."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# XLA's CPU compiler spends about half of a test program's compile time in its newer (MLIR) fusion emitters; the older
# elemental emitters compile the same programs in about half that (two joint fits 18.4 s -> 10.2 s, the every-model
# fit test 62.8 s -> 28.7 s of compilation). XLA aborts the process on a flag it does not know, and a later jaxlib may
# drop this one, so a child process checks it once per run (in the xdist controller; the workers inherit the result),
# before anything starts JAX's backend, which reads XLA_FLAGS once.
# Tests that start processes give them these flags (``SUITE_XLA_FLAGS``) instead of any inherited XLA_FLAGS.
_FAST_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
_PROBED_ENV = "JAXCOH_TEST_SUITE_XLA_FLAGS"
if _PROBED_ENV not in os.environ:
    _probe = subprocess.run([sys.executable, "-c", "import jax; jax.numpy.zeros(1).block_until_ready()"],
                            env={**os.environ, "XLA_FLAGS": _FAST_EMITTERS}, capture_output=True, timeout=300)
    os.environ[_PROBED_ENV] = _FAST_EMITTERS if _probe.returncode == 0 else ""
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), os.environ[_PROBED_ENV]]))
SUITE_XLA_FLAGS = os.environ[_PROBED_ENV]

import jax  # noqa: E402
import pytest  # noqa: E402

import jaxcoh  # noqa: E402
from jaxcoh.compilation_cache import configure  # noqa: E402

# One persistent compilation cache for the whole run, shared by the pytest-xdist workers (a program one of them
# compiled, the other loads), and never the user's own: the commands the tests run would otherwise write to
# ~/.cache/jaxcoh. The process that creates it (xdist's controller, which starts the workers with its environment,
# or a run without xdist) removes it at the end.
CACHE_ENV = "JAXCOH_TEST_COMPILATION_CACHE"
_OWN_CACHE = CACHE_ENV not in os.environ
if _OWN_CACHE:
    os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="jaxcoh-test-cache-")
configure(os.environ[CACHE_ENV])
# Traced programs are not kept (jaxcoh.tracecache): within one run each program is traced once per process anyway,
# and exporting it costs more than the other worker saves by loading it (the suite took 5 min 45 s with them kept,
# 5 min 21 s without). tests/test_tracecache.py turns them on in the processes it starts.
os.environ.setdefault("JAXCOH_TRACE_CACHE", "0")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ[CACHE_ENV], ignore_errors=True)


# The tests' problems are small: XLA's optimisation passes cost them more compile time than they save run time
# (JAX's own switch for that case; measured on two joint fits, compilation 29.4 s -> 18.4 s). In the environment, so
# that the commands the tests run in subprocesses compile the same way; JAX_DISABLE_MOST_OPTIMIZATIONS=0 opts out.
# (A speed setting only: a JAX without the switch runs the tests as they are.)
_OPTIMIZATION_SWITCH = "jax_disable_most_optimizations"
_HAS_SWITCH = _OPTIMIZATION_SWITCH in jax.config.values
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if _HAS_SWITCH:
    jax.config.update(_OPTIMIZATION_SWITCH, os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] not in ("", "0"))
jaxcoh.set_precision("float64")


@contextlib.contextmanager
def full_optimization():
    """XLA's optimisation passes on inside, for the tests whose run time outweighs their compilation (SPARC-size
    fits, sampling runs; without them, with the suite's emitters: NFW on SPARC 28 s -> 32 s, test_sample.py 69 s ->
    88 s). The emitters (``SUITE_XLA_FLAGS``) are the process's and stay. Every program a comparison depends on must
    then be compiled inside too (JAX's in-memory cache does not key on this switch)."""
    if not _HAS_SWITCH:
        yield
        return
    before = jax.config.read(_OPTIMIZATION_SWITCH)
    jax.config.update(_OPTIMIZATION_SWITCH, False)
    try:
        yield
    finally:
        jax.config.update(_OPTIMIZATION_SWITCH, before)
# A silent (g,) vs (g, n) broadcast is the classic padded-data bug: make it an error in tests.
jax.config.update("jax_numpy_rank_promotion", "raise")

SPARC_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sparc"
REQUIRE_SPARC_ENV = "JAXCOH_REQUIRE_SPARC"  # set by .ci/run, where the data are always present


def locate_sparc(path: Path = SPARC_DIR) -> Path:
    """``path`` if it holds SPARC; else skips the test, or fails it where ``$JAXCOH_REQUIRE_SPARC`` is set (so the
    real-data tests can never be skipped silently in CI)."""
    if not (path / "table1.dat").is_file():
        reason = f"SPARC data not found at {path}; place it there (see README) to run the real-data tests"
        if os.environ.get(REQUIRE_SPARC_ENV, "") not in ("", "0"):
            pytest.fail(f"{reason} (required: {REQUIRE_SPARC_ENV} is set)", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def sparc_dir() -> Path:
    """The real SPARC data next to the project (``../shared/data/sparc``); see :func:`locate_sparc`."""
    return locate_sparc()


# One small mock for the tests that fit rotation curves: tests that fit it with the same settings share compiled
# programs (JAX's cache in one worker, the persistent cache across them). Tests that fit the same models on it are
# in one xdist group ("small_mock_fits"), so that one compiles what the next one loads.
SMALL_MOCK = dict(seed=11, n_max=16, min_points=5)


@pytest.fixture(scope="session")
def small_mock():
    return jaxcoh.mock_catalog(10, **SMALL_MOCK)


@pytest.fixture(scope="session")
def sparc_catalog(sparc_dir):
    return jaxcoh.load_sparc(sparc_dir)


@pytest.fixture(autouse=True)
def _keep_compilation_cache():
    """Puts the run's cache back after a test that changed it (``jaxcoh bench`` turns it off, as it times
    compilation)."""
    yield
    if jax.config.jax_compilation_cache_dir != os.environ[CACHE_ENV]:
        configure(os.environ[CACHE_ENV])
