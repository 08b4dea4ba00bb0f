"""Long computations that survive an interruption: results are stored piece by piece, atomically, under a key of
everything that determines them, and a re-run with the same key loads the pieces it finds instead of recomputing.

:func:`run_chunked` streams rows (sweeps: replicates, grid points) through a compute function chunk by chunk;
:class:`PartStore` keeps named parts (one model of a comparison or of the halo catalogue: JSON plus tables). Pieces
stored under another key are removed, never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .results import atomic_write_json, atomic_write_table, read_table, remove_other_keys, to_jsonable
from .version import __version__

if TYPE_CHECKING:  # pandas is imported where tables are made, not with jaxcoh
    import pandas as pd

log = logging.getLogger("jaxcoh")


def run_key(arguments: Mapping[str, Any]) -> str:
    """A hash of everything that determines a computation's results (and jaxcoh's version)."""
    keyed = {**arguments, "jaxcoh": __version__}
    return hashlib.sha256(json.dumps(to_jsonable(keyed), sort_keys=True).encode()).hexdigest()[:16]


def run_chunked(
    n_rows: int,
    chunk_size: int,
    compute: Callable[[int, int], pd.DataFrame],
    *,
    out: str | Path | None = None,
    key: str = "",
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Rows ``[0, n_rows)`` computed ``chunk_size`` at a time by ``compute(lo, hi)``.

    With ``out``, each chunk is saved atomically as ``out/chunks/<key>-<k>.csv`` and loaded instead of recomputed
    when present (resume). ``progress(rows_done)`` is called after every chunk.
    """
    import pandas as pd

    chunk_dir = Path(out) / "chunks" if out is not None else None
    if chunk_dir is not None:
        chunk_dir.mkdir(parents=True, exist_ok=True)
        stale = remove_other_keys(chunk_dir, key, "*.csv")
        if stale:
            log.info(f"removed {stale} chunk files of a run with other arguments")
    parts, resumed = [], 0
    for k, lo in enumerate(range(0, n_rows, chunk_size)):
        hi = min(lo + chunk_size, n_rows)
        path = chunk_dir / f"{key}-{k:05d}.csv" if chunk_dir is not None else None
        if path is not None and path.is_file():
            part = pd.read_csv(path)
            resumed += len(part)
        else:
            part = compute(lo, hi)
            if path is not None:
                atomic_write_table(path, part)
        parts.append(part)
        if progress is not None:
            progress(hi)
    if resumed:
        log.info(f"resumed {resumed} of {n_rows} rows from {chunk_dir}")
    return pd.concat(parts, ignore_index=True)


def nan_for_null(obj):
    """JSON's null back to the NaN it stood for (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_for_null(v) for v in obj]
    return math.nan if obj is None else obj


class PartStore:
    """Named parts of one run under ``directory/<key>-<name>.*``: each part is a JSON document and named tables.
    The tables are written first and the JSON last, so a part whose JSON exists is complete (each file atomic).
    Without a directory nothing is stored and nothing is found."""

    def __init__(self, directory: str | Path | None, arguments: Mapping[str, Any]):
        self.directory = Path(directory) if directory is not None else None
        self.key = run_key(arguments)
        self.resumed: list[str] = []
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stale = remove_other_keys(self.directory, self.key)
            if stale:
                log.info(f"removed {stale} files of a run with other arguments from {self.directory}")

    def _path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{self.key}-{name}{suffix}"

    def load(self, name: str, tables: tuple[str, ...]) -> tuple[dict, dict[str, pd.DataFrame]] | None:
        """``(document, {table: DataFrame})`` of part ``name``, or None when it is not stored."""
        if self.directory is None or not self._path(name, ".json").is_file():
            return None
        doc = nan_for_null(json.loads(self._path(name, ".json").read_text()))
        self.resumed.append(name)
        return doc, {t: read_table(self._path(name, f".{t}.csv")) for t in tables}

    def save(self, name: str, doc: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> None:
        if self.directory is None:
            return
        for t, df in tables.items():
            atomic_write_table(self._path(name, f".{t}.csv"), df)
        atomic_write_json(self._path(name, ".json"), doc)
