"""A galaxy sample from two plain CSV tables, and back: how a user fits galaxies of their own (``--data DIR``).

``DIR/galaxies.csv`` has one row per galaxy, ``DIR/points.csv`` one row per point of a rotation curve; both name the
galaxy in a ``galaxy`` column, and the other columns are :class:`~jaxcoh.catalog.Catalog` fields, in its units
(:data:`GALAXY_COLUMNS`, :data:`POINT_COLUMNS`). Every quantity a model or recipe uses is required (a value a
computation needs is never filled in behind the user's back); the others may be absent or left empty, and then mean
"not known" (NaN, for quantities no computation uses) or take SPARC's meaning (``V_bul`` 0: no bulge; ``V_flat`` 0: no
flat part measured, then taken from the curve; ``quality`` 1). Galaxies keep the order of ``galaxies.csv``; a curve's
points keep the order of ``points.csv`` and must have increasing radii.

Every value is checked as a SPARC file's is (:mod:`jaxcoh.sparc_layout`'s limits: a distance > 0, an inclination in
[0, 90] degrees, errors not negative, speed errors and radii > 0), and every problem is a :class:`TableFormatError`
naming the file, line and column; an unknown column is one too (a misspelt optional column would otherwise be read
as absent). With ``lenient``, a galaxy with a problem is skipped instead and listed in the
:class:`~jaxcoh.sparc.LoadReport`, with one warning for all of them. :func:`write_galaxy_tables` writes any catalog
(SPARC, a mock) in this format, read back exactly (``jaxcoh export``).

Hand-written rather than ``pandas.read_csv``: the errors must name the line of the file, which pandas' parsing does
not keep once blank and comment lines are dropped; the standard library's ``csv`` module does the parsing.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .catalog import GALAXY_FIELDS, INT_FIELDS, Catalog
from .results import atomic_write_table, sha256_files
from .sparc import LoadReport
from .sparc_layout import TABLE1_LAYOUT, DataFormatError, out_of_range

GALAXY_FILE, POINT_FILE = "galaxies.csv", "points.csv"
REQUIRED = object()  # a column without a default
NOT_KNOWN = math.nan

# field: (unit, default when absent or empty (REQUIRED: none), meaning); limits from table1's field of that name
GALAXY_COLUMNS: Mapping[str, tuple[str, object, str]] = {
    "distance": ("Mpc", REQUIRED, "distance"),
    "e_distance": ("Mpc", REQUIRED, "its error (the prior of the fitted distance)"),
    "inclination": ("deg", REQUIRED, "inclination of the disk, 0-90"),
    "e_inclination": ("deg", REQUIRED, "its error (the prior of the fitted inclination)"),
    "L36": ("1e9 Lsun", REQUIRED, "total luminosity at 3.6 micron (the stellar mass with Upsilon)"),
    "e_L36": ("1e9 Lsun", NOT_KNOWN, "its error (not used)"),
    "R_eff": ("kpc", REQUIRED, "effective radius (coreNFW's core radius)"),
    "SB_eff": ("Lsun/pc^2", NOT_KNOWN, "effective surface brightness (not used)"),
    "R_disk": ("kpc", REQUIRED, "disk scale length, > 0 (the galaxy properties of --recipe sparc)"),
    "SB_disk0": ("Lsun/pc^2", NOT_KNOWN, "central disk surface brightness (not used)"),
    "M_HI": ("1e9 Msun", REQUIRED, "HI mass (the baryonic mass of --recipe sparc)"),
    "R_HI": ("kpc", NOT_KNOWN, "HI radius (not used)"),
    "V_flat": ("km/s", 0.0, "speed of the flat part; 0: none measured, taken from the curve"),
    "e_V_flat": ("km/s", 0.0, "its error; 0 with V_flat 0"),
    "hubble_type": ("", -1, "numerical Hubble type 0-11 (not used; -1: not given)"),
    "distance_method": ("", -1, "SPARC's distance method 1-5 (not used; -1: not given)"),
    "quality": ("", 1, "rotation-curve quality 1-3, cut at < 3 by --cuts standard (1 when not given)"),
}
POINT_COLUMNS: Mapping[str, tuple[str, object, str]] = {
    "R": ("kpc", REQUIRED, "radius, increasing along a curve"),
    "V_obs": ("km/s", REQUIRED, "observed rotation speed"),
    "e_V_obs": ("km/s", REQUIRED, "its error, > 0"),
    "V_gas": ("km/s", REQUIRED, "gas contribution (SPARC's sign kept)"),
    "V_disk": ("km/s", REQUIRED, "stellar disk contribution at Upsilon = 1"),
    "V_bul": ("km/s", 0.0, "bulge contribution at Upsilon = 1; 0: no bulge"),
    "SB_disk": ("Lsun/pc^2", REQUIRED, "disk surface brightness (optional as a column: all points or none)"),
    "SB_bul": ("Lsun/pc^2", REQUIRED, "bulge surface brightness (optional as a column: all points or none)"),
}
OPTIONAL_POINT_COLUMNS = ("SB_disk", "SB_bul")  # absent: the catalog has none (as a mock's)
LIMIT_LABEL = {field: label for label, _, _, _, field in TABLE1_LAYOUT if field is not None}  # table1's name
assert set(GALAXY_COLUMNS) == set(GALAXY_FIELDS)


class TableFormatError(DataFormatError):
    """A problem in ``galaxies.csv`` or ``points.csv``, located (file, line, column)."""


class TableDataWarning(UserWarning):
    """Galaxies a lenient load of the tables skipped."""


def _value(text: str, field: str, spec: tuple, path: Path, line: int) -> float | int:
    """One cell of column ``field``, parsed and checked."""
    default = spec[1]
    try:
        value = int(text) if field in INT_FIELDS else float(text)
    except ValueError:
        if text.strip():
            kind = "an integer" if field in INT_FIELDS else "a number"
            raise TableFormatError(path, line, field, f"{text.strip()!r} is not {kind}") from None
        if default is REQUIRED:
            raise TableFormatError(path, line, field, "empty (a value is required)") from None
        return default
    if not math.isfinite(value):
        raise TableFormatError(path, line, field, f"{text.strip()!r} is not finite (leave the cell empty where not "
                                                  "known)")
    if value == default:  # the column's own "not given" (-1 for the integer flags): what was written for it
        return value
    if field in LIMIT_LABEL and (problem := out_of_range(LIMIT_LABEL[field], value)) is not None:
        raise TableFormatError(path, line, field, problem)
    return value


def _rows(path: Path, columns: Mapping[str, tuple]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """``(header, [(line, cells)])`` of a CSV file: blank lines and lines starting with '#' skipped; the header
    checked (a ``galaxy`` column, no unknown or repeated column, every required one) and every row's length."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TableFormatError(path, None, "file", "missing (see `jaxcoh export --help` for the format)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TableFormatError(path, None, "file", f"cannot read: {e}") from None
    header, rows = None, []
    # csv's own line ends (a quoted cell may hold one); strict: a quote left open or text after a closing quote is an
    # error, not a cell silently merged with what follows
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise TableFormatError(path, reader.line_num, "file", f"not CSV: {e}") from None
        line = reader.line_num
        lead = cells[0][:1] if cells else ""
        if (not lead or lead in "# \t") and (not "".join(cells).strip() or cells[0].lstrip().startswith("#")):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            _check_header(header, columns, path, line)
            continue
        if len(cells) != len(header):
            raise TableFormatError(path, line, "columns", f"{len(cells)} cells, the header has {len(header)}")
        rows.append((line, cells))
    if header is None:
        raise TableFormatError(path, None, "galaxy", "no header line")
    return header, rows


def _check_header(header: list[str], columns: Mapping[str, tuple], path: Path, line: int) -> None:
    known = ("galaxy", *columns)
    for name in header:
        if name not in known:
            raise TableFormatError(path, line, name, f"unknown column; the columns are {', '.join(known)}")
        if header.count(name) > 1:
            raise TableFormatError(path, line, name, "column given twice")
    for name in known:
        if name not in header and (name == "galaxy" or (columns[name][1] is REQUIRED
                                                         and name not in OPTIONAL_POINT_COLUMNS)):
            raise TableFormatError(path, line, name, "required column missing")


def _columns(header: list[str], fields, columns: Mapping[str, tuple]) -> list[tuple[str, int | None, tuple]]:
    """``(field, its cell's index in a row or None when the column is absent, its spec)`` for each field."""
    return [(f, header.index(f) if f in header else None, columns[f]) for f in fields]


def _galaxy_name(cells: list[str], header: list[str], path: Path, line: int) -> str:
    name = cells[header.index("galaxy")].strip()
    if not name:
        raise TableFormatError(path, line, "galaxy", "empty name")
    return name


def read_galaxy_tables(directory, *, lenient: bool = False, dtype=None) -> tuple[Catalog, LoadReport]:
    """The catalog in ``directory`` (``galaxies.csv``, ``points.csv``) and a :class:`~jaxcoh.sparc.LoadReport`.

    Strict: raises :class:`TableFormatError` at the first problem (galaxies.csv first, in line order). Lenient:
    skips each galaxy with a problem (a bad row of either file, a galaxy in only one of them, a repeated galaxy row),
    records it in ``LoadReport.skipped`` and emits one :class:`TableDataWarning`; a problem of a whole file (missing,
    a bad header, a row of the wrong length, quoting that is not CSV) stops even a lenient load."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {root} does not exist (it holds {GALAXY_FILE} and {POINT_FILE})")
    gpath, ppath = root / GALAXY_FILE, root / POINT_FILE
    problems: dict[str, TableFormatError] = {}  # galaxy -> its first problem
    unnamed: list[TableFormatError] = []

    def fault(name: str | None, e: TableFormatError) -> None:
        if not lenient:
            raise e
        if name is None:
            unnamed.append(e)
        else:
            problems.setdefault(name, e)

    header, rows = _rows(gpath, GALAXY_COLUMNS)
    gcols = _columns(header, GALAXY_COLUMNS, GALAXY_COLUMNS)
    galaxies: dict[str, dict] = {}
    for line, cells in rows:
        try:
            name = _galaxy_name(cells, header, gpath, line)
        except TableFormatError as e:
            fault(None, e)
            continue
        if name in galaxies or name in problems:
            first = galaxies[name]["line"] if name in galaxies else problems[name].line
            fault(name, TableFormatError(gpath, line, "galaxy", f"{name!r} again (first at line {first})"))
            continue
        try:
            values = {f: _value(cells[i] if i is not None else "", f, spec, gpath, line) for f, i, spec in gcols}
            if values["R_disk"] <= 0:  # (SPARC's smallest is 0.18 kpc; the recipe's properties need one)
                raise TableFormatError(gpath, line, "R_disk", f"must be > 0, got {values['R_disk']:g}")
            if (values["V_flat"] == 0) != (values["e_V_flat"] == 0):
                raise TableFormatError(gpath, line, "e_V_flat", f"V_flat = {values['V_flat']:g} with e_V_flat = "
                                       f"{values['e_V_flat']:g}: both 0 (no flat part) or both > 0")
        except TableFormatError as e:
            fault(name, e)
            continue
        galaxies[name] = {"line": line, **values}

    pheader, prows = _rows(ppath, POINT_COLUMNS)
    fields = [f for f in POINT_COLUMNS if f in pheader or f not in OPTIONAL_POINT_COLUMNS]
    pcols = _columns(pheader, fields, POINT_COLUMNS)
    curves: dict[str, dict] = {}  # name -> {"lines": [...], field: [...]}
    for line, cells in prows:
        try:
            name = _galaxy_name(cells, pheader, ppath, line)
        except TableFormatError as e:
            fault(None, e)
            continue
        if name in problems:
            continue
        try:
            if name not in galaxies:
                raise TableFormatError(ppath, line, "galaxy", f"{name!r} has no row in {GALAXY_FILE}")
            point = {f: _value(cells[i] if i is not None else "", f, spec, ppath, line) for f, i, spec in pcols}
            if point["R"] <= 0:
                raise TableFormatError(ppath, line, "R", f"must be > 0, got {point['R']:g}")
            if point["e_V_obs"] <= 0:
                raise TableFormatError(ppath, line, "e_V_obs", f"must be > 0, got {point['e_V_obs']:g}")
            curve = curves.setdefault(name, {"lines": [], **{f: [] for f in fields}})
            if curve["R"] and point["R"] <= curve["R"][-1]:
                raise TableFormatError(ppath, line, "R", f"radii must increase along a curve: {point['R']:g} after "
                                       f"{curve['R'][-1]:g} at line {curve['lines'][-1]}")
        except TableFormatError as e:
            fault(name, e)
            continue
        curve["lines"].append(line)
        for f in fields:
            curve[f].append(point[f])
    for name, row in galaxies.items():
        if name not in curves and name not in problems:
            fault(name, TableFormatError(ppath, None, "galaxy", f"no points for {name!r} ({GALAXY_FILE} line "
                                                                f"{row['line']})"))

    keep = [n for n in galaxies if n not in problems]
    report = LoadReport(skipped=[(n, str(e)) for n, e in problems.items()]
                        + [(f"<{Path(e.file).name} line {e.line}>", str(e)) for e in unnamed])
    if not keep:
        raise TableFormatError(root, None, "galaxy", "no galaxy could be loaded"
                               + (f" ({len(report.skipped)} skipped: first {report.skipped[0][1]})"
                                  if report.skipped else ""))
    cat = Catalog.from_ragged(
        [{f: np.asarray(curves[n][f], float) for f in fields} for n in keep],
        {f: np.asarray([galaxies[n][f] for n in keep]) for f in GALAXY_FIELDS}, keep,
        source=f"tables ({root.resolve()})", dtype=dtype)
    report.n_galaxies, report.n_points = cat.n_galaxies, cat.n_points
    if report.skipped:
        warnings.warn(f"tables at {root}: {report.summary()}", TableDataWarning, stacklevel=2)
    return cat, report


def write_galaxy_tables(cat: Catalog, directory) -> tuple[Path, Path]:
    """``cat``'s real galaxies and points as ``directory/galaxies.csv`` and ``points.csv`` (written atomically),
    every value at full precision: :func:`read_galaxy_tables` reads the same catalog back. NaN cells are empty."""
    out = Path(directory).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    real = np.asarray(cat.galaxy_mask)
    galaxies = cat.to_pandas("galaxies").drop(columns="n_points")[real]
    return (atomic_write_table(out / GALAXY_FILE, galaxies),
            atomic_write_table(out / POINT_FILE, cat.to_pandas("points")))


def tables_checksum(directory) -> str:
    """sha256 over ``galaxies.csv`` and ``points.csv``: identifies the input of a result."""
    root = Path(directory).expanduser()
    return sha256_files([root / GALAXY_FILE, root / POINT_FILE])
