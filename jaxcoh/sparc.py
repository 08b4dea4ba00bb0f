"""SPARC (Lelli, McGaugh & Schombert 2016) from its raw files into a :class:`~jaxcoh.catalog.Catalog`.

``table1.dat`` is read by the byte layout of the CDS ReadMe and validated against it: each field must fill its
bytes as its Fortran format writes it, the bytes between fields must be blank, and each value must lie within what
the ReadMe defines (so a field moved by one byte is an error, not a wrong number). Each ``rotmod/<NAME>_rotmod.dat``
is read by its whitespace columns and ``# Distance`` header, which must agree with table1's distance. Every problem
(an unreadable or truncated file included) is a :class:`SparcFormatError` naming the file, the line and the field;
in lenient mode the galaxy is skipped instead, recorded in :attr:`LoadReport.skipped`, and one warning lists every
skipped galaxy and why. Nothing is dropped silently.
Signs are kept as published (``Vgas`` is negative at 361 points).
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .catalog import Catalog
from .results import sha256_files
from .sparc_layout import (TABLE1_FORMATS, TABLE1_LAYOUT, TABLE1_LIMITS, TABLE1_MIN_LENGTH,  # noqa: F401
                           TABLE1_RECORD_LENGTH, TABLE1_STATED_RANGES, SparcFormatError, _decimals, _number,
                           _table1_name, parse_table1_line)

SPARC_ENV = "JAXCOH_SPARC_DIR"
HOW_TO_GET = (
    "get SPARC from http://astroweb.cwru.edu/SPARC/ (Rotmod_LTG and table1) or the CDS catalogue J/AJ/152/157, put "
    "table1.dat and the *_rotmod.dat files in DIR/table1.dat and DIR/rotmod/, then pass --sparc DIR or set "
    f"{SPARC_ENV}=DIR"
)

ROTMOD_COLUMNS = ("Rad", "Vobs", "errV", "Vgas", "Vdisk", "Vbul", "SBdisk", "SBbul")
ROTMOD_FIELDS = ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "SB_disk", "SB_bul")
ROTMOD_DECIMALS = 2  # SPARC writes every rotmod value with 2 decimals (all 3391 lines of the real files)
DISTANCE_TOLERANCE = 0.006  # Mpc: rotmod headers and table1 round the same distance differently
_DISTANCE_RE = re.compile(r"^#\s*Distance\s*=\s*(\S+)\s*Mpc\s*$")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")  # the line ends Python's universal newlines accept


class SparcDataWarning(UserWarning):
    """Galaxies skipped in lenient mode, or names present in only one of table1 and rotmod."""


@dataclasses.dataclass
class LoadReport:
    """What a load kept and what it did not.

    ``skipped`` holds one ``(galaxy, reason)`` per galaxy left out in lenient mode, whatever the cause (a malformed
    table1 row, a bad or unreadable rotmod file, a name in only one of the two); a table1 row whose name itself
    cannot be read is listed as ``"<table1.dat line N>"``.
    """

    n_galaxies: int = 0
    n_points: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (galaxy, reason)
    only_in_rotmod: list[str] = dataclasses.field(default_factory=list)
    only_in_table1: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        lines = [f"loaded {self.n_galaxies} galaxies, {self.n_points} points"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} galaxies:")
            lines += [f"  {name}: {why}" for name, why in self.skipped]
        if self.only_in_rotmod:
            lines.append(f"rotmod files without a table1 row: {', '.join(self.only_in_rotmod)}")
        if self.only_in_table1:
            lines.append(f"table1 rows without a rotmod file: {', '.join(self.only_in_table1)}")
        return "\n".join(lines)


def _read_bytes(path) -> bytes:
    """The file's bytes; any OSError (permission denied, a directory in its place, ...) as a SparcFormatError."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SparcFormatError(path, None, "file", f"cannot read: {e.strerror or e} ({type(e).__name__})") from None


def _table1_rows(path) -> tuple[dict[str, tuple[int, dict]], list[tuple[str | None, SparcFormatError]]]:
    """``(rows, faults)`` of table1.dat: good rows as ``{name: (line, fields)}``; each fault with the galaxy name
    when bytes 1-11 hold one, else None. A galaxy with two rows is a fault (reported at the second) and dropped."""
    data = _read_bytes(path)
    if not data.strip():
        raise SparcFormatError(path, None, "file", "empty file" + (" (0 bytes)" if not data else " (only blanks)"))
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    rows: dict[str, tuple[int, dict]] = {}
    faults: list[tuple[str | None, SparcFormatError]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(lines, start=1):
        # non-ASCII bytes become U+FFFD: one character per byte, so byte positions hold, and no format accepts it
        text = raw.decode("ascii", errors="replace")
        if not text.strip():
            continue
        name = _table1_name(text)
        if name is not None and name in seen:
            faults.append((name, SparcFormatError(path, i, "Name", f"duplicate galaxy {name!r} (first at line "
                                                                  f"{seen[name]})")))
            rows.pop(name, None)
            continue
        if name is not None:
            seen[name] = i
        try:
            parsed_name, values = parse_table1_line(text, path, i)
        except SparcFormatError as e:
            faults.append((name, e))
            continue
        rows[parsed_name] = (i, values)
    return rows, faults


def read_table1(path) -> dict[str, tuple[int, dict]]:
    """``{name: (line, fields)}`` from table1.dat, in file order. Any malformed line, or duplicate name, is an
    error (the first one, in file order)."""
    rows, faults = _table1_rows(path)
    if faults:
        raise faults[0][1]
    if not rows:
        raise SparcFormatError(path, None, "Name", "no galaxy rows")
    return rows


def read_rotmod(path) -> tuple[float, dict[str, np.ndarray]]:
    """``(distance [Mpc], {catalog point field: [n]})`` from one rotmod file, validated line by line.

    A file that cannot be read (permission denied, a directory in its place), is empty, or has no or two
    ``# Distance`` headers is an error. A truncated file: when the file does not end with a newline, its last data
    line must still have all 8 columns and write each value with as many decimals as the same column of the data
    line before it (2, as SPARC writes every value, when there is none before); a number cut short ("1105.7" for
    "1105.79", "1105.", "110") fails this. A file ending with a newline is taken as complete (every real file does).
    """
    data = _read_bytes(path)
    if not data.strip():
        raise SparcFormatError(path, None, "file", "empty file" + (" (0 bytes)" if not data else " (only blanks)"))
    lines = _NEWLINE_RE.split(data.decode("ascii", errors="replace"))
    unterminated = lines[-1].strip() != ""  # the last line has content and no newline after it
    distance, distance_line = None, None
    rows: list[list[float]] = []
    prev_R, prev_line, prev_parts = None, None, None
    for i, text in enumerate(lines, start=1):
        s = text.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = _DISTANCE_RE.match(s)
            if m:
                if distance is not None:
                    raise SparcFormatError(path, i, "Distance", f"second '# Distance' header (first at line "
                                                                f"{distance_line})")
                distance, distance_line = _number(m.group(1), "float", path, i, "Distance"), i
                if distance <= 0:
                    raise SparcFormatError(path, i, "Distance", f"must be > 0, got {distance}")
            elif s.lower().startswith("# distance"):
                raise SparcFormatError(path, i, "Distance", f"header not of the form '# Distance = D Mpc': {s!r}")
            continue
        parts = s.split()
        truncated = unterminated and i == len(lines)
        if len(parts) != len(ROTMOD_COLUMNS):
            raise SparcFormatError(path, i, "columns", ("truncated last line (no newline at the end of the file): "
                                                        if truncated else "") +
                                   f"expected {len(ROTMOD_COLUMNS)} columns ({' '.join(ROTMOD_COLUMNS)}), "
                                   f"got {len(parts)}")
        vals = [_number(p, "float", path, i, col) for p, col in zip(parts, ROTMOD_COLUMNS, strict=True)]
        if truncated:
            for k, (p, col) in enumerate(zip(parts, ROTMOD_COLUMNS, strict=True)):
                want = ROTMOD_DECIMALS if prev_parts is None else _decimals(prev_parts[k])
                if _decimals(p) != want:
                    source = "SPARC writes" if prev_parts is None else f"line {prev_line} has"
                    raise SparcFormatError(path, i, col, f"truncated last line (no newline at the end of the file): "
                                                         f"{p!r} has {_decimals(p)} decimals, {source} {want}")
        R, errV = vals[0], vals[2]
        if R <= 0:
            raise SparcFormatError(path, i, "Rad", f"must be > 0, got {R}")
        if errV <= 0:
            raise SparcFormatError(path, i, "errV", f"must be > 0, got {errV}")
        if prev_R is not None and R <= prev_R:
            raise SparcFormatError(path, i, "Rad", f"radii must increase: {R} after {prev_R} at line {prev_line}")
        prev_R, prev_line, prev_parts = R, i, parts
        rows.append(vals)
    if distance is None:
        raise SparcFormatError(path, None, "Distance", "missing '# Distance = D Mpc' header")
    if not rows:
        raise SparcFormatError(path, None, "Rad", "no data lines")
    a = np.asarray(rows, dtype=np.float64)
    return distance, {f: a[:, j] for j, f in enumerate(ROTMOD_FIELDS)}


def _rotmod_name(path: Path) -> str:
    return path.name[: -len("_rotmod.dat")]


def _check_dir(path) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"SPARC directory {p} does not exist; {HOW_TO_GET}")
    if not (p / "table1.dat").is_file():
        raise FileNotFoundError(f"SPARC directory {p} has no table1.dat; {HOW_TO_GET}")
    if not (p / "rotmod").is_dir():
        raise FileNotFoundError(f"SPARC directory {p} has no rotmod/ folder; {HOW_TO_GET}")
    return p


def read_sparc(path, *, lenient: bool = False, dtype=None) -> tuple[Catalog, LoadReport]:
    """Reads SPARC from ``path``; returns the catalog (galaxies in table1 order) and a :class:`LoadReport`.

    Strict mode raises :class:`SparcFormatError` at the first problem (table1.dat first, in line order). Lenient
    mode skips each galaxy with a problem -- a malformed or duplicate table1 row, a rotmod file that is bad or
    cannot be read, a table1 row without a rotmod file or the reverse -- records each in ``LoadReport.skipped`` and
    emits one :class:`SparcDataWarning`. A table1 row whose name (bytes 1-11, then a blank byte 12) cannot be read
    is skipped by its line number (``"<table1.dat line N>"``); its galaxy's rotmod file, left without a row, is
    then skipped too, with a reason that points at those lines. A table1.dat that cannot be read at all, or is
    empty, stops even a lenient load.
    """
    root = _check_dir(path)
    table_path = root / "table1.dat"
    report = LoadReport()
    table, faults = _table1_rows(table_path)
    if faults and not lenient:
        raise faults[0][1]
    problems: list[tuple[str, SparcFormatError]] = []
    bad_rows = set()  # galaxies whose table1 row is at fault: already skipped for that
    unnamed = []  # lines of table1 rows without a readable name
    for name, e in faults:
        if name is None:
            unnamed.append(e.line)
            problems.append((f"<table1.dat line {e.line}>", e))
        elif name not in bad_rows:
            bad_rows.add(name)
            problems.append((name, e))
    files = {_rotmod_name(p): p for p in sorted((root / "rotmod").glob("*_rotmod.dat"))}
    report.only_in_rotmod = [n for n in files if n not in table and n not in bad_rows]
    report.only_in_table1 = [n for n in table if n not in files]
    for n in report.only_in_table1:
        problems.append((n, SparcFormatError(root / "rotmod" / f"{n}_rotmod.dat", None, "file",
                                             f"missing: table1.dat line {table[n][0]} has no rotmod file")))
    hint = f" (table1.dat lines {', '.join(map(str, unnamed))} have no readable name)" if unnamed else ""
    for n in report.only_in_rotmod:
        problems.append((n, SparcFormatError(files[n], None, "Name", f"no row for this galaxy in table1.dat{hint}")))
    curves, names, gal_rows = [], [], []
    for name, (line, values) in table.items():
        if name not in files:
            continue
        try:
            distance, curve = read_rotmod(files[name])
            if abs(distance - values["distance"]) > DISTANCE_TOLERANCE:
                raise SparcFormatError(files[name], None, "Distance",
                                       f"{distance} Mpc differs from table1.dat line {line} (Dist {values['distance']})")
        except SparcFormatError as e:
            problems.append((name, e))
            continue
        curves.append(curve)
        names.append(name)
        gal_rows.append(values)
    if problems and not lenient:
        raise problems[0][1]
    report.skipped = [(n, str(e)) for n, e in problems]
    if not curves:
        raise SparcFormatError(root, None, "galaxies", "no galaxy could be loaded" +
                               (f" ({len(problems)} skipped: first {problems[0][1]})" if problems else ""))
    galaxies = {f: np.array([r[f] for r in gal_rows]) for f in gal_rows[0]}
    cat = Catalog.from_ragged(curves, galaxies, names, source=f"SPARC ({root.resolve()})", dtype=dtype)
    report.n_galaxies, report.n_points = cat.n_galaxies, cat.n_points
    if problems:
        warnings.warn(f"SPARC at {root}: {report.summary()}", SparcDataWarning, stacklevel=2)
    return cat, report


def load_sparc(path=None, *, lenient: bool = False, dtype=None) -> Catalog:
    """The SPARC catalog from ``path``, else from ``$JAXCOH_SPARC_DIR``; see :func:`read_sparc`."""
    if path is None:
        path = os.environ.get(SPARC_ENV)
        if not path:
            raise FileNotFoundError(f"no SPARC directory given and {SPARC_ENV} is not set; {HOW_TO_GET}")
    return read_sparc(path, lenient=lenient, dtype=dtype)[0]


def sparc_checksum(path) -> str:
    """sha256 over table1.dat and every readable rotmod file, in sorted order: identifies the input of a result."""
    root = _check_dir(path)
    # Rotmod entries that cannot be read (a directory in a file's place, no read permission) are left out: a
    # lenient load skips them, and a strict one has already stopped.
    files = [p for p in sorted((root / "rotmod").glob("*_rotmod.dat")) if p.is_file() and os.access(p, os.R_OK)]
    try:
        return sha256_files([root / "table1.dat", *files])
    except OSError as e:
        raise SparcFormatError(getattr(e, "filename", None) or root, None, "file",
                               f"cannot read: {e.strerror or e} ({type(e).__name__})") from None
