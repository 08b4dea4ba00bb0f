"""A result directory: results, the resolved config and the provenance, each written atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import atomic_write_json, atomic_write_table, atomic_write_text, provenance
from .options import Option, write_config


def write_run(out: str | Path, command: str, options: Sequence[Option], values: dict, *, dtype: str,
              data: Mapping[str, Any], files: Mapping[str, Any]) -> Path:
    """Writes ``files`` (``.json`` objects, ``.csv``/``.parquet`` DataFrames, ``.txt`` strings), then
    ``config.toml`` and ``provenance.json``, into ``out``. Returns the directory."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        path = out / name
        if isinstance(obj, pd.DataFrame):
            atomic_write_table(path, obj)
        elif name.endswith(".json"):
            atomic_write_json(path, obj)
        else:
            atomic_write_text(path, str(obj))
    atomic_write_text(out / "config.toml", write_config(out / "config.toml", command, options, values))
    atomic_write_json(out / "provenance.json",
                      provenance(dtype=dtype, data=data, command=f"jaxcoh {command} --config {out / 'config.toml'}"))
    return out
