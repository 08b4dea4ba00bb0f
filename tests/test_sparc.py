"""The SPARC loader: the real files (when present) and every kind of bad input, on files the tests write."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxcoh
from jaxcoh.sparc import (SPARC_ENV, TABLE1_LAYOUT, SparcDataWarning, SparcFormatError, load_sparc, read_sparc,
                          sparc_checksum)

# ---- the real data ------------------------------------------------------------------------------------------------


def test_real_sparc_counts(sparc_catalog):
    cat = sparc_catalog
    assert cat.n_galaxies == 175 and cat.n_points == 3391
    cat.validate()
    vgas = np.asarray(cat.V_gas)[np.asarray(cat.mask)]
    assert int(np.sum(vgas < 0)) == 361
    assert int(np.sum(np.asarray(cat.V_flat) == 0)) == 40  # "no flat part measured", kept as 0


def _slice(line: str, first: int, last: int) -> str:
    return line[first - 1:last].strip()


@pytest.mark.parametrize("name", ["CamB", "NGC2403", "UGC02953", "DDO064", "NGC7814"])
def test_table1_rows_field_by_field(sparc_dir, sparc_catalog, name):
    """Each field against the raw line, sliced here by the ReadMe's bytes (not by the loader's table)."""
    line = next(ln for ln in (sparc_dir / "table1.dat").read_text().splitlines() if ln[:11].strip() == name)
    i = list(sparc_catalog.names).index(name)
    g = sparc_catalog.to_pandas("galaxies").iloc[i]
    expect = {
        "hubble_type": int(_slice(line, 13, 14)), "distance": float(_slice(line, 16, 21)),
        "e_distance": float(_slice(line, 23, 27)), "distance_method": int(_slice(line, 29, 29)),
        "inclination": float(_slice(line, 31, 34)), "e_inclination": float(_slice(line, 36, 39)),
        "L36": float(_slice(line, 41, 47)), "e_L36": float(_slice(line, 49, 55)), "R_eff": float(_slice(line, 57, 61)),
        "SB_eff": float(_slice(line, 63, 70)), "R_disk": float(_slice(line, 72, 76)),
        "SB_disk0": float(_slice(line, 78, 85)), "M_HI": float(_slice(line, 87, 93)), "R_HI": float(_slice(line, 95, 99)),
        "V_flat": float(_slice(line, 101, 105)), "e_V_flat": float(_slice(line, 107, 111)),
        "quality": int(_slice(line, 113, 115)),
    }
    for field, value in expect.items():
        assert g[field] == pytest.approx(value, abs=1e-12), field


def test_camb_by_hand(sparc_catalog):
    g = sparc_catalog.to_pandas("galaxies").set_index("galaxy").loc["CamB"]
    assert (g.hubble_type, g.distance, g.e_distance, g.distance_method, g.inclination) == (10, 3.36, 0.26, 2, 65.0)
    assert (g.L36, g.R_disk, g.M_HI, g.quality) == (0.075, 0.47, 0.012, 2)


def test_rotmod_points_against_the_file(sparc_dir, sparc_catalog):
    pts = sparc_catalog.to_pandas()
    for name in ("NGC2403", "UGC02953", "F563-1"):
        raw = np.loadtxt(sparc_dir / "rotmod" / f"{name}_rotmod.dat")
        got = pts[pts.galaxy == name][["R", "V_obs", "e_V_obs", "V_gas", "V_disk", "V_bul", "SB_disk", "SB_bul"]]
        np.testing.assert_array_equal(got.to_numpy(), raw)


def test_names_follow_table1_order(sparc_dir, sparc_catalog):
    order = [ln[:11].strip() for ln in (sparc_dir / "table1.dat").read_text().splitlines() if ln.strip()]
    assert list(sparc_catalog.names) == order


def test_layout_matches_the_cds_readme(sparc_dir):
    text = (sparc_dir / "ReadMe.txt").read_text()
    section = text.split("Byte-by-byte Description of file: table1.dat")[1].split("Byte-by-byte Description")[0]
    rows = re.findall(r"^\s*(\d+)(?:-\s*(\d+))?\s+([AIF][\d.]+)\s+\S+\s+(\S+)", section, flags=re.M)
    readme = [(label, int(a), int(b or a)) for a, b, _, label in rows]
    assert readme == [(label, first, last) for label, first, last, _, _ in TABLE1_LAYOUT]


def test_env_var_and_missing_path(sparc_dir, monkeypatch):
    monkeypatch.setenv(SPARC_ENV, str(sparc_dir))
    assert load_sparc().n_galaxies == 175
    monkeypatch.delenv(SPARC_ENV)
    with pytest.raises(FileNotFoundError, match=SPARC_ENV):
        load_sparc()


def _sha256sums(path) -> dict[str, str]:
    """``SHA256SUMS`` (``sha256sum`` output: the hex digest, two spaces or " *", the relative path) as a dict."""
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def test_files_match_the_published_checksums(sparc_dir):
    """Every data file against the SHA256SUMS shipped with the data, and every file the loader reads listed there."""
    import hashlib

    sums = _sha256sums(sparc_dir / "SHA256SUMS")
    read = {"table1.dat", *(f"rotmod/{p.name}" for p in (sparc_dir / "rotmod").glob("*_rotmod.dat"))}
    assert len(read) == 176 and read <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((sparc_dir / name).read_bytes()).hexdigest() == digest, name


def test_checksum_identifies_the_input(sparc_dir, tmp_path):
    """``sparc_checksum`` is the same for a copy and changes with one byte of one rotmod file."""
    import shutil

    copy = tmp_path / "sparc"
    shutil.copytree(sparc_dir, copy)
    assert sparc_checksum(copy) == sparc_checksum(sparc_dir) and len(sparc_checksum(copy)) == 64
    f = copy / "rotmod" / "NGC2403_rotmod.dat"
    text = f.read_text()
    f.write_text(text[:-2] + ("1" if text[-2] != "1" else "2") + text[-1])
    assert sparc_checksum(copy) != sparc_checksum(sparc_dir)


# ---- bad input, on files written here ----------------------------------------------------------------------------


def table1_line(name: str, dist: float = 10.0, qual: int = 1, **over) -> str:
    """A table1.dat line at the ReadMe's byte positions."""
    values = dict(Name=name, Type=5, Dist=dist, e_Dist=1.0, f_Dist=1, i=60.0, e_i=3.0, **{"L3.6": 10.0},
                  **{"e_L3.6": 0.5}, Reff=3.0, SBeff=100.0, Rdisk=2.5, SBdisk=500.0, MHI=1.5, RHI=10.0, Vflat=150.0,
                  e_Vflat=5.0, Qual=qual, Ref="Te99")
    values.update(over)
    fmt = {"Name": "{:<11}", "Type": "{:>2d}", "Dist": "{:>6.2f}", "e_Dist": "{:>5.2f}", "f_Dist": "{:1d}",
           "i": "{:>4.1f}", "e_i": "{:>4.1f}", "L3.6": "{:>7.3f}", "e_L3.6": "{:>7.3f}", "Reff": "{:>5.2f}",
           "SBeff": "{:>8.2f}", "Rdisk": "{:>5.2f}", "SBdisk": "{:>8.2f}", "MHI": "{:>7.3f}", "RHI": "{:>5.2f}",
           "Vflat": "{:>5.1f}", "e_Vflat": "{:>5.1f}", "Qual": "{:>3d}", "Ref": "{:<14}"}
    line = [" "] * 130
    for label, first, last, _, _ in TABLE1_LAYOUT:
        v = values[label]
        text = v if isinstance(v, str) and label not in ("Name", "Ref") else fmt[label].format(v)
        assert len(text) == last - first + 1, (label, text)
        line[first - 1:last] = text
    return "".join(line).rstrip()


def rotmod_text(R, dist: float = 10.0, header: bool = True) -> str:
    lines = [f"# Distance = {dist} Mpc"] if header else []
    lines += ["# Rad\tVobs\terrV\tVgas\tVdisk\tVbul\tSBdisk\tSBbul", "# kpc\tkm/s\tkm/s\tkm/s\tkm/s\tkm/s\tL/pc^2\tL/pc^2"]
    for k, r in enumerate(R):
        lines.append(f"{r:.2f}\t{50 + 5 * k:.2f}\t{2.0:.2f}\t{-1.5 + k:.2f}\t{40.0:.2f}\t0.00\t{100.0:.2f}\t0.00")
    return "\n".join(lines) + "\n"


def write_sparc(root, galaxies: dict[str, str], table_names=None) -> None:
    """A SPARC-like directory: rotmod texts by name, and table1 rows for ``table_names`` (default: the same)."""
    (root / "rotmod").mkdir(parents=True, exist_ok=True)
    for name, text in galaxies.items():
        (root / "rotmod" / f"{name}_rotmod.dat").write_text(text)
    names = list(galaxies) if table_names is None else table_names
    (root / "table1.dat").write_text("\n".join(table1_line(n) for n in names) + "\n")


GOOD = rotmod_text([0.5, 1.0, 1.5, 2.0, 3.0])


@pytest.fixture
def good_dir(tmp_path):
    write_sparc(tmp_path, {"GOOD1": GOOD, "GOOD2": rotmod_text([0.2, 0.4, 0.9])})
    return tmp_path


def test_tiny_directory_loads_exactly(good_dir):
    cat, report = read_sparc(good_dir)
    assert list(cat.names) == ["GOOD1", "GOOD2"] and cat.n_points == 8 and not report.skipped
    np.testing.assert_allclose(np.asarray(cat.V_gas)[0, :5], [-1.5, -0.5, 0.5, 1.5, 2.5])
    g = cat.to_pandas("galaxies").iloc[0]
    assert (g.distance, g.inclination, g.L36, g.V_flat, g.quality) == (10.0, 60.0, 10.0, 150.0, 1)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _replace_data_line(text: str, k: int, new: str) -> str:
    """Replaces the k-th data line (0-based) of a rotmod text."""
    lines = _lines(text)
    idx = [i for i, ln in enumerate(lines) if ln and not ln.startswith("#")][k]
    lines[idx] = new
    return "\n".join(lines) + "\n"


# Each case: rotmod text of galaxy BAD, expected (line, field, reason fragment). Lines count the 3 header lines.
BAD_CASES = {
    "wrong column count": (_replace_data_line(GOOD, 1, "1.00\t55.0\t2.0\t-0.5\t40.0\t0.0\t100.0"), 5, "columns",
                           "expected 8 columns"),
    "non-numeric": (_replace_data_line(GOOD, 2, "1.50\t6o.0\t2.0\t0.5\t40.0\t0.0\t100.0\t0.0"), 6, "Vobs",
                    "not a number"),
    "empty file": ("", None, "file", "empty file"),
    "no data lines": (rotmod_text([]), None, "Rad", "no data lines"),
    "R <= 0": (_replace_data_line(GOOD, 0, "0.00\t50.0\t2.0\t-1.5\t40.0\t0.0\t100.0\t0.0"), 4, "Rad", "must be > 0"),
    "non-finite": (_replace_data_line(GOOD, 3, "2.00\tnan\t2.0\t1.5\t40.0\t0.0\t100.0\t0.0"), 7, "Vobs",
                   "not finite"),
    "infinite": (_replace_data_line(GOOD, 3, "2.00\t70.0\t2.0\tinf\t40.0\t0.0\t100.0\t0.0"), 7, "Vgas", "not finite"),
    "errV <= 0": (_replace_data_line(GOOD, 4, "3.00\t70.0\t0.0\t2.5\t40.0\t0.0\t100.0\t0.0"), 8, "errV",
                  "must be > 0"),
    "non-increasing radii": (_replace_data_line(GOOD, 2, "0.90\t60.0\t2.0\t0.5\t40.0\t0.0\t100.0\t0.0"), 6, "Rad",
                             "radii must increase: 0.9 after 1.0 at line 5"),
    "missing distance header": (rotmod_text([0.5, 1.0], header=False), None, "Distance", "missing"),
    "distance disagrees with table1": (rotmod_text([0.5, 1.0], dist=12.0), None, "Distance", "differs from table1"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_rotmod_strict_and_lenient(tmp_path, case):
    text, line, field, reason = BAD_CASES[case]
    write_sparc(tmp_path, {"GOOD1": GOOD, "BAD": text})
    with pytest.raises(SparcFormatError) as e:
        read_sparc(tmp_path)
    err = e.value
    assert err.file.endswith("BAD_rotmod.dat") and err.line == line and err.field == field
    assert reason in str(err) and "BAD_rotmod.dat" in str(err)
    with pytest.warns(SparcDataWarning, match=r"skipped 1 galaxies") as rec:
        cat, report = read_sparc(tmp_path, lenient=True)
    assert len(rec) == 1 and reason in str(rec[0].message)
    assert list(cat.names) == ["GOOD1"] and [n for n, _ in report.skipped] == ["BAD"]
    np.testing.assert_allclose(np.asarray(cat.R)[0, :5], [0.5, 1.0, 1.5, 2.0, 3.0])


def test_missing_rotmod_file(tmp_path):
    write_sparc(tmp_path, {"GOOD1": GOOD}, table_names=["GOOD1", "GHOST"])
    with pytest.raises(SparcFormatError, match="GHOST_rotmod.dat.*missing: table1.dat line 2") as e:
        read_sparc(tmp_path)
    assert e.value.field == "file"
    with pytest.warns(SparcDataWarning, match="table1 rows without a rotmod file: GHOST"):
        cat, report = read_sparc(tmp_path, lenient=True)
    assert report.only_in_table1 == ["GHOST"] and cat.n_galaxies == 1


def test_rotmod_without_table1_row(tmp_path):
    write_sparc(tmp_path, {"GOOD1": GOOD, "ORPHAN": GOOD}, table_names=["GOOD1"])
    with pytest.raises(SparcFormatError, match="no row for this galaxy in table1.dat"):
        read_sparc(tmp_path)
    with pytest.warns(SparcDataWarning, match="rotmod files without a table1 row: ORPHAN"):
        _, report = read_sparc(tmp_path, lenient=True)
    assert report.only_in_rotmod == ["ORPHAN"]


@pytest.mark.parametrize("mutate,line,field", [
    (lambda ln: ln[:60], 2, "Qual"),  # too short
    (lambda ln: ln[:15] + "  x.yz" + ln[21:], 2, "Dist"),  # non-numeric
    (lambda ln: ln[:112] + "   " + ln[115:], 2, "Qual"),  # empty field
])
def test_malformed_table1_lines(tmp_path, mutate, line, field):
    write_sparc(tmp_path, {"GOOD1": GOOD, "GOOD2": GOOD})
    rows = (tmp_path / "table1.dat").read_text().splitlines()
    rows[1] = mutate(rows[1])
    (tmp_path / "table1.dat").write_text("\n".join(rows) + "\n")
    with pytest.raises(SparcFormatError) as e:
        read_sparc(tmp_path)
    assert e.value.file.endswith("table1.dat") and e.value.line == line and e.value.field == field
    # A lenient load skips the galaxy of the broken row, says so, and records why.
    with pytest.warns(SparcDataWarning, match=f"GOOD2: .*table1.dat:{line}: field '{field}'"):
        cat, report = read_sparc(tmp_path, lenient=True)
    assert list(cat.names) == ["GOOD1"]
    assert [n for n, _ in report.skipped] == ["GOOD2"] and f"field '{field}'" in report.skipped[0][1]


def test_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sparc(tmp_path / "nowhere")
    (tmp_path / "rotmod").mkdir()
    with pytest.raises(FileNotFoundError, match="no table1.dat"):
        load_sparc(tmp_path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0.01, 5.0), min_size=1, max_size=30, unique=True),
       st.lists(st.floats(-50, 300, allow_nan=False), min_size=30, max_size=30))
def test_roundtrip_random_curves(tmp_path_factory, steps, speeds):
    root = tmp_path_factory.mktemp("rt")
    R = np.round(np.cumsum(np.round(steps, 2) + 0.01), 2)
    v = np.round(speeds[: len(R)], 2)
    lines = ["# Distance = 10.0 Mpc"] + [f"{r:.2f} {abs(x) + 1:.2f} 1.50 {x:.2f} {x / 2:.2f} 0.00 1.00 0.00"
                                         for r, x in zip(R, v, strict=True)]
    write_sparc(root, {"RT": "\n".join(lines) + "\n"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat = load_sparc(root)
    np.testing.assert_array_equal(np.asarray(cat.R)[0, : len(R)], R)
    np.testing.assert_array_equal(np.asarray(cat.V_gas)[0, : len(R)], v)
    np.testing.assert_array_equal(np.asarray(cat.V_obs)[0, : len(R)], [float(f"{abs(x) + 1:.2f}") for x in v])


def test_load_sparc_dtype(good_dir):
    assert jaxcoh.load_sparc(good_dir, dtype="float32").dtype == np.float32


def test_missing_sparc_fails_where_required(tmp_path, monkeypatch):
    """``.ci/run`` sets JAXCOH_REQUIRE_SPARC: there an absent data directory fails the real-data tests, never skips
    them."""
    import conftest

    absent = tmp_path / "absent"
    monkeypatch.setenv(conftest.REQUIRE_SPARC_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"SPARC data not found at {re.escape(str(absent))}.*required"):
        conftest.locate_sparc(absent)
    monkeypatch.delenv(conftest.REQUIRE_SPARC_ENV)
    with pytest.raises(pytest.skip.Exception, match="SPARC data not found"):
        conftest.locate_sparc(absent)
    (tmp_path / "table1.dat").write_text("")
    monkeypatch.setenv(conftest.REQUIRE_SPARC_ENV, "1")
    assert conftest.locate_sparc(tmp_path) == tmp_path
