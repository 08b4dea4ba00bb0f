"""SPARC (Lelli, McGaugh & Schombert 2016) from its raw files into a :class:`~jaxcoh.catalog.Catalog`.

``table1.dat`` is read by the byte layout of the CDS ReadMe; each ``rotmod/<NAME>_rotmod.dat`` by its whitespace
columns and ``# Distance`` header. Every problem is an error naming the file, the line and the field; in lenient mode
the galaxy is skipped instead, and one warning lists every skipped galaxy and why. Nothing is dropped silently.
Signs are kept as published (``Vgas`` is negative at 361 points).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .catalog import Catalog
from .results import sha256_files

SPARC_ENV = "JAXCOH_SPARC_DIR"
HOW_TO_GET = (
    "get SPARC from http://astroweb.cwru.edu/SPARC/ (Rotmod_LTG and table1) or the CDS catalogue J/AJ/152/157, put "
    "table1.dat and the *_rotmod.dat files in DIR/table1.dat and DIR/rotmod/, then pass --sparc DIR or set "
    f"{SPARC_ENV}=DIR"
)

# table1.dat, "Byte-by-byte Description of file: table1.dat" in the CDS ReadMe: (label, first byte, last byte, kind,
# Catalog field). Bytes are 1-based and inclusive, as in the ReadMe.
TABLE1_LAYOUT: tuple[tuple[str, int, int, str, str | None], ...] = (
    ("Name", 1, 11, "str", None),
    ("Type", 13, 14, "int", "hubble_type"),
    ("Dist", 16, 21, "float", "distance"),
    ("e_Dist", 23, 27, "float", "e_distance"),
    ("f_Dist", 29, 29, "int", "distance_method"),
    ("i", 31, 34, "float", "inclination"),
    ("e_i", 36, 39, "float", "e_inclination"),
    ("L3.6", 41, 47, "float", "L36"),
    ("e_L3.6", 49, 55, "float", "e_L36"),
    ("Reff", 57, 61, "float", "R_eff"),
    ("SBeff", 63, 70, "float", "SB_eff"),
    ("Rdisk", 72, 76, "float", "R_disk"),
    ("SBdisk", 78, 85, "float", "SB_disk0"),
    ("MHI", 87, 93, "float", "M_HI"),
    ("RHI", 95, 99, "float", "R_HI"),
    ("Vflat", 101, 105, "float", "V_flat"),
    ("e_Vflat", 107, 111, "float", "e_V_flat"),
    ("Qual", 113, 115, "int", "quality"),
    ("Ref", 117, 130, "str", None),
)
TABLE1_MIN_LENGTH = 115  # through Qual: the reference column may be short or empty
ROTMOD_COLUMNS = ("Rad", "Vobs", "errV", "Vgas", "Vdisk", "Vbul", "SBdisk", "SBbul")
ROTMOD_FIELDS = ("R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "SB_disk", "SB_bul")
DISTANCE_TOLERANCE = 0.006  # Mpc: rotmod headers and table1 round the same distance differently
_DISTANCE_RE = re.compile(r"^#\s*Distance\s*=\s*(\S+)\s*Mpc\s*$")


class SparcFormatError(ValueError):
    """A problem in a SPARC file, located: ``file``, ``line`` (1-based, None for the whole file) and ``field``."""

    def __init__(self, file, line: int | None, field: str, reason: str):
        self.file, self.line, self.field, self.reason = str(file), line, field, reason
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: field '{field}': {reason}")


class SparcDataWarning(UserWarning):
    """Galaxies skipped in lenient mode, or names present in only one of table1 and rotmod."""


@dataclasses.dataclass
class LoadReport:
    """What a load kept and what it did not."""

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


def _number(text: str, kind: str, file, line: int, field: str):
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        raise SparcFormatError(file, line, field, f"not a number: {text.strip()!r}") from None
    if kind == "float" and not math.isfinite(value):
        raise SparcFormatError(file, line, field, f"not finite: {text.strip()!r}")
    return value


def parse_table1_line(text: str, file, line: int) -> tuple[str, dict]:
    """``(name, {catalog field: value})`` from one line of table1.dat."""
    if len(text.rstrip("\n")) < TABLE1_MIN_LENGTH:
        raise SparcFormatError(file, line, "Qual", f"line has {len(text.rstrip())} bytes, the layout needs "
                                                   f"{TABLE1_MIN_LENGTH} (through Qual)")
    name = text[0:11].strip()
    if not name:
        raise SparcFormatError(file, line, "Name", "empty galaxy name")
    values = {}
    for label, first, last, kind, field in TABLE1_LAYOUT:
        if field is None:
            continue
        raw = text[first - 1:last]
        if not raw.strip():
            raise SparcFormatError(file, line, label, "empty")
        values[field] = _number(raw, kind, file, line, label)
    return name, values


def read_table1(path) -> dict[str, tuple[int, dict]]:
    """``{name: (line, fields)}`` from table1.dat, in file order. Duplicate names are an error."""
    rows: dict[str, tuple[int, dict]] = {}
    with open(path, encoding="ascii", errors="replace") as f:
        for i, text in enumerate(f, start=1):
            if not text.strip():
                continue
            name, values = parse_table1_line(text, path, i)
            if name in rows:
                raise SparcFormatError(path, i, "Name", f"duplicate galaxy {name!r} (first at line {rows[name][0]})")
            rows[name] = (i, values)
    if not rows:
        raise SparcFormatError(path, None, "Name", "no galaxy rows")
    return rows


def read_rotmod(path) -> tuple[float, dict[str, np.ndarray]]:
    """``(distance [Mpc], {catalog point field: [n]})`` from one rotmod file, validated line by line."""
    distance = None
    rows: list[list[float]] = []
    prev_R, prev_line = None, None
    with open(path, encoding="ascii", errors="replace") as f:
        for i, text in enumerate(f, start=1):
            s = text.strip()
            if not s:
                continue
            if s.startswith("#"):
                m = _DISTANCE_RE.match(s)
                if m:
                    distance = _number(m.group(1), "float", path, i, "Distance")
                    if distance <= 0:
                        raise SparcFormatError(path, i, "Distance", f"must be > 0, got {distance}")
                elif s.lower().startswith("# distance"):
                    raise SparcFormatError(path, i, "Distance", f"header not of the form '# Distance = D Mpc': {s!r}")
                continue
            parts = s.split()
            if len(parts) != len(ROTMOD_COLUMNS):
                raise SparcFormatError(path, i, "columns", f"expected {len(ROTMOD_COLUMNS)} columns "
                                                           f"({' '.join(ROTMOD_COLUMNS)}), got {len(parts)}")
            vals = [_number(p, "float", path, i, col) for p, col in zip(parts, ROTMOD_COLUMNS, strict=True)]
            R, errV = vals[0], vals[2]
            if R <= 0:
                raise SparcFormatError(path, i, "Rad", f"must be > 0, got {R}")
            if errV <= 0:
                raise SparcFormatError(path, i, "errV", f"must be > 0, got {errV}")
            if prev_R is not None and R <= prev_R:
                raise SparcFormatError(path, i, "Rad", f"radii must increase: {R} after {prev_R} at line {prev_line}")
            prev_R, prev_line = R, i
            rows.append(vals)
    if distance is None:
        raise SparcFormatError(path, None, "Distance", "missing '# Distance = D Mpc' header")
    if not rows:
        raise SparcFormatError(path, None, "Rad", "no data lines (empty file)")
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

    Strict mode raises :class:`SparcFormatError` at the first problem. Lenient mode skips each galaxy with a
    problem (a table1 row without a rotmod file, or the reverse, included) and emits one :class:`SparcDataWarning`.
    """
    root = _check_dir(path)
    table_path = root / "table1.dat"
    report = LoadReport()
    # A malformed table1 line cannot be attributed to a galaxy reliably: it stops the load even in lenient mode.
    table = read_table1(table_path)
    files = {_rotmod_name(p): p for p in sorted((root / "rotmod").glob("*_rotmod.dat"))}
    report.only_in_rotmod = [n for n in files if n not in table]
    report.only_in_table1 = [n for n in table if n not in files]
    problems: list[tuple[str, SparcFormatError]] = []
    for n in report.only_in_table1:
        problems.append((n, SparcFormatError(root / "rotmod" / f"{n}_rotmod.dat", None, "file",
                                             f"missing: table1.dat line {table[n][0]} has no rotmod file")))
    for n in report.only_in_rotmod:
        problems.append((n, SparcFormatError(files[n], None, "Name", "no row for this galaxy in table1.dat")))
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
                               (f" ({len(problems)} skipped)" if problems else ""))
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
    """sha256 over table1.dat and every rotmod file, in sorted order: identifies the input of a result."""
    root = _check_dir(path)
    return sha256_files([root / "table1.dat", *sorted((root / "rotmod").glob("*_rotmod.dat"))])
