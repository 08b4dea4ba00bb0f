"""Strict defaults for every test: float64 available, implicit rank promotion an error, the SPARC fixture."""

from __future__ import annotations

from pathlib import Path

import jax
import pytest

import jaxcoh

jaxcoh.set_precision("float64")
# A silent (g,) vs (g, n) broadcast is the classic padded-data bug: make it an error in tests.
jax.config.update("jax_numpy_rank_promotion", "raise")

SPARC_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sparc"


@pytest.fixture(scope="session")
def sparc_dir() -> Path:
    """The real SPARC data next to the project (``../shared/data/sparc``); skips when it is absent."""
    if not (SPARC_DIR / "table1.dat").is_file():
        pytest.skip(f"SPARC data not found at {SPARC_DIR}; place it there (see README) to run the real-data tests")
    return SPARC_DIR


@pytest.fixture(scope="session")
def sparc_catalog(sparc_dir):
    return jaxcoh.load_sparc(sparc_dir)
