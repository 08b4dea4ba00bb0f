"""Result files: written atomically, with the provenance a reader needs to trust and reproduce them.

Every file is written to a temporary name in the same directory and renamed into place (``os.replace`` is atomic on
POSIX), so an interrupted run never leaves a half-written result, and a finished file is always complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where tables are made, not with jaxcoh
    import pandas as pd


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it (``os.umask`` can only set it, and the
    moment it is 0 another thread's new file would be world-writable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (temporary file in the same directory, fsync, rename).

    The file gets the mode ``open()`` would give it: an existing file's, else ``0o666`` less the umask (``mkstemp``
    alone makes every result 0600, unreadable to the group that shares the results)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temporary behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy and JAX scalars and arrays become numbers and lists, NaN and inf become null."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    pd = sys.modules.get("pandas")  # a DataFrame exists only if pandas was imported: jaxcoh does not import it
    if hasattr(obj, "to_dict") and not (pd is not None and isinstance(obj, pd.DataFrame)):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, (str, bool)) or obj is None:
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if hasattr(obj, "__array__"):
        a = np.asarray(obj)
        return to_jsonable(a.item() if a.ndim == 0 else a.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Strict JSON (no NaN tokens: non-finite numbers are written as null), indented, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def atomic_write_table(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """A table as CSV, or Parquet when ``path`` ends in ``.parquet`` (needs pyarrow: ``pip install jaxcoh[parquet]``)."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as e:
            raise RuntimeError(f"writing {path} needs pyarrow: pip install 'jaxcoh[parquet]', or use a .csv") from e
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return atomic_write_bytes(path, buf.getvalue())
    return atomic_write_text(path, df.to_csv(index=False))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


class ResultFormatError(ValueError):
    """A result file is present but not in the shape its command writes; the message names the file and what is
    wrong."""


def read_result_json(path: Path) -> dict:
    """A command's JSON summary; :class:`ResultFormatError` (naming the file) when it is not a JSON object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultFormatError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ResultFormatError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def read_result_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A command's table with at least ``columns``; :class:`ResultFormatError` (naming the file and what is missing)
    otherwise."""
    import pandas as pd

    try:
        df = read_table(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as e:
        raise ResultFormatError(f"{path}: cannot be read as a table: {e}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultFormatError(f"{path}: missing column(s) {', '.join(missing)} "
                                f"(found: {', '.join(map(str, df.columns))})")
    return df


def sha256_files(paths) -> str:
    """One sha256 over the contents of ``paths`` (in the given order), each prefixed by its name."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def arrays_digest(arrays, text: str = "") -> str:
    """A short sha256 over ``text`` and the dtypes, shapes and bytes of ``arrays``: identifies the input of a
    resumable computation (stored results of other inputs are never reused)."""
    h = hashlib.sha256(text.encode())
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def remove_other_keys(directory: Path, key: str, pattern: str = "*") -> int:
    """Deletes the files of ``directory`` matching ``pattern`` that do not start with ``key-`` (results of a run
    with other arguments, never to be mixed in); returns how many."""
    stale = [p for p in directory.glob(pattern) if p.is_file() and not p.name.startswith(key + "-")]
    for p in stale:
        p.unlink()
    return len(stale)


def versions() -> dict[str, str]:
    """Versions of jaxcoh and the libraries whose numbers it depends on."""
    import jax
    import jaxlib
    import optax
    import pandas as pd
    import scipy

    from .version import __version__

    return {"jaxcoh": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "python": platform.python_version()}


def provenance(*, dtype: str, data: Mapping[str, Any], command: str = "") -> dict:
    """What produced a result: versions, devices, dtype, input data (with checksum), time and command."""
    import jax

    devices = jax.devices()
    return {
        "versions": versions(),
        "dtype": dtype,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count()},
        "data": dict(data),
        "command": command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
