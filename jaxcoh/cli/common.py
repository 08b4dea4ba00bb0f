"""What every command shares: data options, precision, the result directory, logging, progress and exit codes."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .options import Option

log = logging.getLogger("jaxcoh")

# Exit codes a user (or a script) can act on.
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: please report it (run with --verbose for the traceback)
EXIT_USAGE = 2  # a bad flag, config key or value: nothing was computed
EXIT_DATA = 3  # input data missing or malformed: the message names the file, line and field
EXIT_NUMERICAL = 4  # a fit diverged or produced non-finite values: the message names what
EXIT_INTERRUPTED = 130  # Ctrl-C: no partial result file was left behind

DATA_OPTIONS = (
    Option("sparc", None, "SPARC directory (table1.dat and rotmod/); default $JAXCOH_SPARC_DIR, else a mock catalog",
           type="path", metavar="DIR"),
    Option("mock_galaxies", 175, "galaxies in the mock catalog used when no SPARC directory is given", type="int",
           metavar="N"),
    Option("mock_seed", 0, "seed of the mock catalog", type="nonneg_int", metavar="SEED"),
    Option("lenient", False, "skip malformed SPARC galaxies with a warning instead of stopping", type="bool"),
)
PRECISION_OPTIONS = (
    Option("dtype", "float64", "floating precision: float64 reproduces published numbers, float32 is faster",
           choices=("float64", "float32")),
)
VERBOSITY_OPTIONS = (
    Option("quiet", False, "print only errors", type="bool", cli_only=True),
    Option("verbose", False, "print debugging detail and full tracebacks", type="bool", cli_only=True),
)


def out_option(command: str) -> Option:
    return Option("out", f"results/{command}", "directory for the results", type="path", metavar="DIR")


def setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def sparc_dir(values: dict) -> str | None:
    """The SPARC directory: ``--sparc``, else ``$JAXCOH_SPARC_DIR``, else None (use the mock)."""
    from ..sparc import SPARC_ENV

    return values.get("sparc") or os.environ.get(SPARC_ENV) or None


def load_data(values: dict, dtype):
    """``(catalog, data_provenance)`` from the data options."""
    from ..mock import mock_catalog
    from ..sparc import load_sparc, sparc_checksum

    path = sparc_dir(values)
    if path:
        cat = load_sparc(path, lenient=values.get("lenient", False), dtype=dtype)
        log.info(f"data: SPARC from {path} ({cat.n_galaxies} galaxies, {cat.n_points} points)")
        return cat, {"kind": "sparc", "path": str(Path(path).resolve()), "sha256": sparc_checksum(path)}
    n, seed = values["mock_galaxies"], values["mock_seed"]
    cat = mock_catalog(n, seed=seed, dtype=dtype)
    log.info(f"data: no SPARC directory given (--sparc or $JAXCOH_SPARC_DIR): using jaxcoh's mock catalog "
             f"({n} galaxies, seed {seed})")
    import hashlib

    import numpy as np

    h = hashlib.sha256(np.ascontiguousarray(np.asarray(cat.V_obs)).tobytes()).hexdigest()
    return cat, {"kind": "mock", "n_galaxies": n, "seed": seed, "sha256": h}


@contextlib.contextmanager
def progress(total: int, desc: str, enabled: bool = True) -> Iterator:
    """A tqdm progress bar on stderr (silent with --quiet or when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=not enabled or not sys.stderr.isatty(), leave=False, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()
