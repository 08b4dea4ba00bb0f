"""A result directory: checked before anything is computed; then results, the resolved config and the provenance,
each written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..results import atomic_write_json, atomic_write_table, atomic_write_text, provenance
from .options import ConfigError, Option, write_config


def check_out_dir(out: str | Path, option: str = "out") -> Path:
    """Raises :class:`ConfigError` (naming ``out``) unless ``out`` is a directory this process can write into, or
    can be created: checked before any compute, so a bad ``--out`` fails at once instead of after the run."""
    out = Path(out)
    existing = out
    while not existing.exists() and existing != existing.parent:  # the nearest ancestor that exists
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "exists and is not a directory" if existing == out else f"cannot be created: {existing} is a file"
        raise ConfigError(f"'{option}': {out} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == out else f" (cannot create it in {existing})"
        raise ConfigError(f"'{option}': {out} is not writable{where}")
    if existing == out:  # os.access trusts the mode bits: probe too (read-only mounts, ACLs)
        try:
            with tempfile.TemporaryFile(dir=out, prefix=".jaxcoh-probe-"):
                pass
        except OSError as e:
            raise ConfigError(f"'{option}': {out} is not writable ({e.strerror or e})") from None
    return out


def write_run(out: str | Path, command: str, options: Sequence[Option], values: dict, *, dtype: str,
              data: Mapping[str, Any], files: Mapping[str, Any]) -> Path:
    """Writes ``files`` (``.json`` objects, ``.csv``/``.parquet`` DataFrames, ``.txt`` strings), then
    ``config.toml`` and ``provenance.json``, into ``out``. Returns the directory.

    Every JSON object gets ``skipped_galaxies`` (``[{"galaxy", "reason"}]``, from ``data``): what ``--lenient``
    left out travels with each result, not only with the log of the run that made it."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    skipped = list(data.get("skipped_galaxies", []))
    for name, obj in files.items():
        path = out / name
        if isinstance(obj, pd.DataFrame):
            atomic_write_table(path, obj)
        elif name.endswith(".json"):
            atomic_write_json(path, {**obj, "skipped_galaxies": skipped} if isinstance(obj, Mapping) else obj)
        else:
            atomic_write_text(path, str(obj))
    atomic_write_text(out / "config.toml", write_config(out / "config.toml", command, options, values))
    atomic_write_json(out / "provenance.json",
                      provenance(dtype=dtype, data={**data, "skipped_galaxies": skipped},
                                 command=f"jaxcoh {command} --config {out / 'config.toml'}"))
    return out


def write_derived_provenance(out: Path, result_dir: Path, command: str) -> None:
    """``out/provenance.json`` of files made from a result directory (figures, tables): versions, the command, and
    the result files they were made from, with their sha256."""
    import json

    from ..results import sha256_files

    sources = sorted(p for p in result_dir.iterdir() if p.is_file())
    made_by = result_dir / "provenance.json"
    dtype = json.loads(made_by.read_text()).get("dtype", "unknown") if made_by.is_file() else "unknown"
    atomic_write_json(out / "provenance.json", provenance(
        dtype=dtype, data={"kind": "results", "path": str(result_dir), "files": [p.name for p in sources],
                           "sha256": sha256_files(sources)}, command=command))
