"""Galaxy samples from CSV tables (``--data``): exact round trips, every problem located, lenient skips, the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxcoh
from jaxcoh.catalog import Catalog
from jaxcoh.cli import main
from jaxcoh.cli.common import EXIT_DATA, EXIT_USAGE, load_data
from jaxcoh.galaxy_tables import (TableDataWarning, TableFormatError, read_galaxy_tables, tables_checksum,
                                  write_galaxy_tables)


def assert_same_catalog(a: Catalog, b: Catalog) -> None:
    """The same galaxies, points and values, bit for bit, in the same dtypes (padding aside)."""
    assert list(a.names) == list(b.names)
    for kind in ("points", "galaxies"):
        pd.testing.assert_frame_equal(a.to_pandas(kind), b.to_pandas(kind), check_exact=True)
    assert (a.SB_disk is None, a.SB_bul is None) == (b.SB_disk is None, b.SB_bul is None)


def test_sparc_round_trip_is_exact(sparc_catalog, tmp_path):
    write_galaxy_tables(sparc_catalog, tmp_path)
    back, report = read_galaxy_tables(tmp_path)
    assert (report.n_galaxies, report.n_points, report.skipped) == (175, 3391, [])
    assert_same_catalog(sparc_catalog, back)
    assert back.source == f"tables ({tmp_path.resolve()})"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mock_round_trip_is_exact(tmp_path, dtype):
    cat = jaxcoh.mock_catalog(7, seed=3, dtype=dtype)  # no surface brightnesses: no SB columns
    write_galaxy_tables(cat, tmp_path)
    assert "SB_disk" not in (tmp_path / "points.csv").read_text().splitlines()[0]
    assert_same_catalog(cat, read_galaxy_tables(tmp_path, dtype=dtype)[0])


FINITE = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
def test_any_valid_values_read_back_exactly(tmp_path_factory, lengths, data):
    """Arbitrary float64 values within the fields' limits (radii increasing) survive the round trip bit for bit."""
    pos = st.floats(1e-300, 1e300, **FINITE)
    curves = []
    for n in lengths:
        R = np.cumsum(data.draw(st.lists(st.floats(1e-3, 1e3, **FINITE), min_size=n, max_size=n)))
        c = {"R": R, "e_V_obs": np.asarray(data.draw(st.lists(pos, min_size=n, max_size=n)))}
        for f in ("V_obs", "V_gas", "V_disk", "V_bul"):
            c[f] = np.asarray(data.draw(st.lists(st.floats(-1e300, 1e300, **FINITE), min_size=n, max_size=n)))
        curves.append(c)
    g = len(lengths)
    galaxies = {f: np.asarray(data.draw(st.lists(st.floats(0, 1e300, **FINITE), min_size=g, max_size=g)))
                for f in ("e_distance", "L36", "R_eff", "M_HI")}
    galaxies["distance"] = np.asarray(data.draw(st.lists(pos, min_size=g, max_size=g)))
    galaxies["inclination"] = np.asarray(data.draw(st.lists(st.floats(0, 90), min_size=g, max_size=g)))
    galaxies["quality"] = np.asarray(data.draw(st.lists(st.integers(1, 3), min_size=g, max_size=g)))
    galaxies["distance_method"] = np.full(g, 2)  # (from_ragged's padding value, 0, is no method)
    cat = Catalog.from_ragged(curves, galaxies, [f"G {i}, \"quoted\"" for i in range(g)], dtype="float64")
    out = tmp_path_factory.mktemp("tables")
    write_galaxy_tables(cat, out)
    assert_same_catalog(cat, read_galaxy_tables(out, dtype="float64")[0])


MINIMAL_GALAXIES = ("galaxy,distance,e_distance,inclination,e_inclination,L36,R_eff,R_disk,M_HI\n"
                    "A,10,1,60,3,2.5,2,1.5,0.4\nB,5,0.5,45,5,0.1,1,0.8,0.05\n")
MINIMAL_POINTS = ("galaxy,R,V_obs,e_V_obs,V_gas,V_disk\n"
                  "A,1,50,5,10,30\nA,2,70,5,12,35\nB,0.5,20,2,5,10\n")


def write(directory, galaxies=MINIMAL_GALAXIES, points=MINIMAL_POINTS):
    directory.mkdir(exist_ok=True)
    (directory / "galaxies.csv").write_text(galaxies)
    (directory / "points.csv").write_text(points)
    return directory


def test_optional_columns_take_their_stated_meaning(tmp_path):
    cat, _ = read_galaxy_tables(write(tmp_path))
    assert list(cat.names) == ["A", "B"] and cat.n_points == 3
    np.testing.assert_array_equal(np.asarray(cat.V_bul)[np.asarray(cat.mask)], 0.0)  # no bulge
    assert cat.SB_disk is None and cat.SB_bul is None
    for f in ("e_L36", "SB_eff", "SB_disk0", "R_HI"):  # not known (used by no computation)
        assert np.isnan(np.asarray(getattr(cat, f))).all(), f
    assert np.asarray(cat.V_flat).tolist() == [0, 0] and np.asarray(cat.quality).tolist() == [1, 1]
    assert np.asarray(cat.hubble_type).tolist() == [-1, -1]
    np.testing.assert_array_equal(np.asarray(cat.R)[0, :2], [1, 2])


def test_comments_and_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
    points = "# units: kpc, km/s\n\n" + MINIMAL_POINTS.replace("A,2,70,5,12,35", "A,2,70,-5,12,35")
    with pytest.raises(TableFormatError) as e:
        read_galaxy_tables(write(tmp_path, points=points))
    assert (e.value.line, e.value.field) == (5, "e_V_obs")
    assert "points.csv:5: field 'e_V_obs': must be > 0, got -5" in str(e.value)


BAD = [  # (galaxies.csv, points.csv, file, line, field, part of the reason)
    (MINIMAL_GALAXIES.replace("A,10,1,60", "A,ten,1,60"), MINIMAL_POINTS, "galaxies.csv", 2, "distance",
     "'ten' is not a number"),
    (MINIMAL_GALAXIES.replace("A,10,1,60", "A,10,1,95"), MINIMAL_POINTS, "galaxies.csv", 2, "inclination",
     "within [0, 90]"),
    (MINIMAL_GALAXIES.replace("B,5,", "B,-5,"), MINIMAL_POINTS, "galaxies.csv", 3, "distance", "> 0"),
    (MINIMAL_GALAXIES.replace("A,10,1,60,3", "A,10,1,60,"), MINIMAL_POINTS, "galaxies.csv", 2, "e_inclination",
     "empty"),
    (MINIMAL_GALAXIES.replace("A,10,1,60", "A,nan,1,60"), MINIMAL_POINTS, "galaxies.csv", 2, "distance",
     "not finite"),
    (MINIMAL_GALAXIES + "A,1,1,1,1,1,1,1,1\n", MINIMAL_POINTS, "galaxies.csv", 4, "galaxy", "again (first at line 2)"),
    (MINIMAL_GALAXIES.replace("L36", "L3.6"), MINIMAL_POINTS, "galaxies.csv", 1, "L3.6", "unknown column"),
    (MINIMAL_GALAXIES.replace(",L36", ""), MINIMAL_POINTS, "galaxies.csv", 1, "L36", "required column missing"),
    (MINIMAL_GALAXIES.replace("2,1.5,0.4", "2,0,0.4"), MINIMAL_POINTS, "galaxies.csv", 2, "R_disk", "> 0"),
    (MINIMAL_GALAXIES.replace("M_HI\n", "M_HI,V_flat,e_V_flat\n").replace("0.4\n", "0.4,80,0\n").replace(
        "0.05\n", "0.05,,\n"), MINIMAL_POINTS, "galaxies.csv", 2, "e_V_flat", "both 0"),
    (MINIMAL_GALAXIES, MINIMAL_POINTS.replace("A,2,70", "A,0.5,70"), "points.csv", 3, "R", "radii must increase"),
    (MINIMAL_GALAXIES, MINIMAL_POINTS + "C,1,1,1,1,1\n", "points.csv", 5, "galaxy", "no row in galaxies.csv"),
    (MINIMAL_GALAXIES, MINIMAL_POINTS.replace("B,0.5,20,2,5,10\n", ""), "points.csv", None, "galaxy",
     "no points for 'B'"),
    (MINIMAL_GALAXIES, MINIMAL_POINTS.replace("A,1,50,5,10,30", "A,1,50,5,10"), "points.csv", 2, "columns",
     "5 cells, the header has 6"),
    (MINIMAL_GALAXIES, MINIMAL_POINTS.replace("B,0.5,20,2,5,10", 'B,0.5,20,2,5,"10'), "points.csv", 4, "file",
     "not CSV: unexpected end of data"),  # a quote left open: not merged into one cell with what follows
    (MINIMAL_GALAXIES, MINIMAL_POINTS.replace("V_disk\n", "V_disk,SB_disk\n").replace("30\n", "30,1\n").replace(
        "35\n", "35,2\n").replace("10\n", "10,\n"), "points.csv", 4, "SB_disk", "empty"),
]


@pytest.mark.parametrize("galaxies,points,file,line,field,why", BAD,
                         ids=[f"{b[2]}:{b[3]}:{b[4]}" for b in BAD])
def test_every_problem_names_file_line_and_column(tmp_path, galaxies, points, file, line, field, why):
    with pytest.raises(TableFormatError) as e:
        read_galaxy_tables(write(tmp_path, galaxies, points))
    assert (e.value.file.endswith(file), e.value.line, e.value.field) == (True, line, field)
    assert why in e.value.reason, str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_galaxy_tables(tmp_path / "absent")
    (tmp_path / "galaxies.csv").write_text(MINIMAL_GALAXIES)
    with pytest.raises(TableFormatError, match="points.csv: field 'file': missing"):
        read_galaxy_tables(tmp_path)


def test_lenient_skips_each_bad_galaxy_with_one_warning(tmp_path):
    galaxies = MINIMAL_GALAXIES + "C,5,0.5,100,5,0.1,1,1,0\nD,5,0.5,45,5,0.1,1,1,0\n"  # C: inclination > 90
    points = MINIMAL_POINTS.replace("A,2,70,5", "A,2,70,x") + "C,1,1,1,1,1\nD,1,1,1,1,1\nE,1,1,1,1,1\n,1,1,1,1,1\n"
    write(tmp_path, galaxies, points)
    with pytest.raises(TableFormatError):
        read_galaxy_tables(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cat, report = read_galaxy_tables(tmp_path, lenient=True)
    assert [w.category for w in caught] == [TableDataWarning] and "skipped 4 galaxies" in str(caught[0].message)
    assert list(cat.names) == ["B", "D"] and cat.n_points == 2
    reasons = dict(report.skipped)
    assert set(reasons) == {"A", "C", "E", "<points.csv line 8>"}
    assert "points.csv:3: field 'e_V_obs'" in reasons["A"] and "galaxies.csv:4: field 'inclination'" in reasons["C"]
    assert "no row in galaxies.csv" in reasons["E"] and "empty name" in reasons["<points.csv line 8>"]


def test_cli_export_then_data(tmp_path, capsys):
    """``jaxcoh export`` writes what ``--data`` reads back, the same catalog; bad tables exit with code 3 and the
    located problem; ``--data`` with ``--sparc`` is refused."""
    out = tmp_path / "mock"
    assert main(["export", "--mock-galaxies", "9", "--mock-seed", "4", "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} >= {"galaxies.csv", "points.csv", "config.toml", "provenance.json"}
    # the mock's truth beside it, to score any fit of the tables: the values the mock was made from
    mock, truth = jaxcoh.mock_catalog(9, seed=4, dtype="float64", return_truth=True)
    true = pd.read_csv(out / "truth.csv")
    assert true["galaxy"].tolist() == list(mock.names)
    for f in ("distance", "inclination", "upsilon_disk", "A_gal", "F_true"):
        np.testing.assert_array_equal(true[f], getattr(truth, f), err_msg=f)
    assert not np.any(true["distance"] == np.asarray(mock.distance))  # the tables hold the reported distances
    doc = json.loads((out / "truth.json").read_text())
    assert (doc["kernel"], doc["model"], doc["params"]) == ("multiplicative", "mass_coherence", dict(truth.params))
    values = {"data": str(out), "lenient": False}
    cat, data = load_data(values, np.dtype("float64"))
    assert data["kind"] == "tables" and data["sha256"] == tables_checksum(out)
    assert_same_catalog(jaxcoh.mock_catalog(9, seed=4, dtype="float64"), cat)
    again = tmp_path / "again"
    assert main(["export", "--data", str(out), "--cuts", "standard", "--out", str(again), "--quiet"]) == 0
    assert 0 < len(read_galaxy_tables(again)[0].names) <= 9
    some = tmp_path / "some"  # --galaxies: only those named, in the data's order, their truth too
    assert main(["export", "--mock-galaxies", "9", "--mock-seed", "4", "--galaxies", "MOCK0000005,MOCK0000001",
                 "--out", str(some)]) == 0
    assert list(read_galaxy_tables(some)[0].names) == ["MOCK0000001", "MOCK0000005"]
    some_truth = pd.read_csv(some / "truth.csv")
    assert some_truth["galaxy"].tolist() == ["MOCK0000001", "MOCK0000005"]
    np.testing.assert_array_equal(some_truth["distance"], truth.distance[[1, 5]])  # each galaxy's own truth
    capsys.readouterr()
    typo = ["--galaxies", "MOCK000001,XYZ", "--out", str(tmp_path / "z")]
    assert main(["export", "--data", str(out), *typo]) == EXIT_USAGE
    assert "not in the data (9 galaxies): MOCK000001 (did you mean MOCK0000001" in capsys.readouterr().err
    bad = write(tmp_path / "bad", points=MINIMAL_POINTS.replace("A,2,70", "A,2,seventy"))
    assert main(["export", "--data", str(bad), "--out", str(tmp_path / "x"), "--quiet"]) == EXIT_DATA
    assert "points.csv:3: field 'V_obs': 'seventy' is not a number" in capsys.readouterr().err
    for where, said in ((out, "9 galaxies, "), (bad, "NOT READABLE: ")):  # jaxcoh info checks tables too
        assert main(["info", "--data", str(where)]) == 0 and f"data: {where}: {said}" in capsys.readouterr().out
    assert main(["export", "--data", str(out), "--sparc", str(tmp_path), "--out", str(tmp_path / "y"),
                 "--quiet"]) == EXIT_USAGE


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["galaxies.csv", "points.csv"]), st.integers(0, 10_000),
       st.text(alphabet=st.sampled_from(list(',"#\n\r -.e0123456789ABnax;\t\x00')), max_size=6), st.integers(0, 4),
       st.booleans())
def test_corrupted_tables_load_or_fail_with_a_located_error(tmp_path_factory, name, at, insert, cut, lenient):
    """Any edit of valid tables (characters inserted, some deleted) either loads or raises a TableFormatError naming
    the file, never another exception; what loads is finite and is written and read back unchanged."""
    root = write(tmp_path_factory.mktemp("fuzz"))
    text = (root / name).read_text()
    i = at % (len(text) + 1)
    (root / name).write_text(text[:i] + insert + text[i + cut:])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TableDataWarning)
            cat, report = read_galaxy_tables(root, lenient=lenient)
    except TableFormatError as e:
        assert e.file.endswith(("galaxies.csv", "points.csv", root.name)), str(e)
        return
    assert cat.n_galaxies + len(report.skipped) >= 1 and np.isfinite(np.asarray(cat.R)).all()
    again = tmp_path_factory.mktemp("again")
    write_galaxy_tables(cat, again)
    assert_same_catalog(cat, read_galaxy_tables(again)[0])
