"""Inputs that must not fool the SPARC reader: table1.dat against the CDS byte layout (formats, blank bytes, value
limits), unreadable, truncated and empty rotmod files, and lenient mode over table1 faults.

Most cases run on small directories written here; the ones about the real files use the ``sparc_dir`` fixture
(conftest.py), which skips with a reason when ``../shared/data/sparc`` is absent.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from jaxcoh.sparc import (TABLE1_FORMATS, TABLE1_LAYOUT, TABLE1_STATED_RANGES, SparcDataWarning, SparcFormatError,
                          parse_table1_line, read_rotmod, read_sparc, sparc_checksum)

# ---- writing small SPARC directories ------------------------------------------------------------------------------

ROW = dict(Type=5, Dist=10.0, e_Dist=1.0, f_Dist=1, i=60.0, e_i=3.0, L=10.0, e_L=0.5, Reff=3.0, SBeff=100.0,
           Rdisk=2.5, SBdisk=500.0, MHI=1.5, RHI=10.0, Vflat=150.0, e_Vflat=5.0, Qual=1, Ref="Te99")


def row(name: str, **over) -> str:
    """A table1.dat line, at the ReadMe's bytes written out here by hand (not from the loader's tables)."""
    v = {**ROW, **over}
    line = (f"{name:<11} {v['Type']:>2d} {v['Dist']:6.2f} {v['e_Dist']:5.2f} {v['f_Dist']:1d} {v['i']:4.1f} "
            f"{v['e_i']:4.1f} {v['L']:7.3f} {v['e_L']:7.3f} {v['Reff']:5.2f} {v['SBeff']:8.2f} {v['Rdisk']:5.2f} "
            f"{v['SBdisk']:8.2f} {v['MHI']:7.3f} {v['RHI']:5.2f} {v['Vflat']:5.1f} {v['e_Vflat']:5.1f} "
            f"{v['Qual']:3d} {v['Ref']}")
    assert len(line) == 116 + len(v["Ref"]), line
    return line


def rotmod(R=(0.5, 1.0, 1.5, 2.0, 3.0), dist: float = 10.0, newline_at_end: bool = True) -> str:
    lines = [f"# Distance = {dist} Mpc", "# Rad\tVobs\terrV\tVgas\tVdisk\tVbul\tSBdisk\tSBbul",
             "# kpc\tkm/s\tkm/s\tkm/s\tkm/s\tkm/s\tL/pc^2\tL/pc^2"]
    lines += [f"{r:.2f}\t{50 + 5 * k:.2f}\t2.00\t{-1.5 + k:.2f}\t40.00\t0.00\t100.00\t0.00" for k, r in enumerate(R)]
    return "\n".join(lines) + ("\n" if newline_at_end else "")


def write_dir(root: Path, rows: list[str], curves: dict[str, str]) -> Path:
    (root / "rotmod").mkdir(parents=True, exist_ok=True)
    (root / "table1.dat").write_text("\n".join(rows) + "\n")
    for name, text in curves.items():
        (root / "rotmod" / f"{name}_rotmod.dat").write_text(text)
    return root


NAMES = ["GOOD1", "GOOD2", "GOOD3"]


def three(root: Path, **over_for_good2) -> Path:
    """GOOD1..GOOD3, the second row with the given overrides."""
    return write_dir(root, [row("GOOD1"), row("GOOD2", **over_for_good2), row("GOOD3")], {n: rotmod() for n in NAMES})


def with_table1_line(root: Path, k: int, new: str) -> None:
    """Replaces line ``k`` (1-based) of root/table1.dat."""
    lines = (root / "table1.dat").read_text().splitlines()
    lines[k - 1] = new
    (root / "table1.dat").write_text("\n".join(lines) + "\n")


def strict_error(root: Path) -> SparcFormatError:
    with pytest.raises(SparcFormatError) as e:
        read_sparc(root)
    return e.value


def lenient(root: Path):
    with pytest.warns(SparcDataWarning) as rec:
        cat, report = read_sparc(root, lenient=True)
    assert len(rec) == 1
    return cat, report, str(rec[0].message)


def real_subset(sparc_dir: Path, root: Path, names: list[str]) -> tuple[Path, list[str]]:
    """A directory with the real table1 rows (in this order) and rotmod files of ``names``; returns it and the rows."""
    lines = {ln[:11].strip(): ln for ln in (sparc_dir / "table1.dat").read_text().splitlines()}
    rows = [lines[n] for n in names]
    write_dir(root, rows, {n: (sparc_dir / "rotmod" / f"{n}_rotmod.dat").read_text() for n in names})
    return root, rows


# ---- table1: shifted fields ---------------------------------------------------------------------------------------

REAL3 = ["CamB", "NGC2403", "DDO064"]


def test_real_ngc2403_reads_131_2(sparc_dir, tmp_path):
    root, _ = real_subset(sparc_dir, tmp_path, REAL3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat, report = read_sparc(root)
    assert float(cat.to_pandas("galaxies").set_index("galaxy").loc["NGC2403", "V_flat"]) == 131.2
    assert not report.skipped


@pytest.mark.parametrize("direction", ["left", "right"])
def test_shifted_vflat_names_line_and_field(sparc_dir, tmp_path, direction):
    """The user's report: NGC2403's Vflat moved one byte read as 31.2 with exit 0."""
    root, rows = real_subset(sparc_dir, tmp_path, REAL3)
    ln = rows[1]
    assert ln[100:105] == "131.2" and ln[99] == ln[105] == " "
    shifted = ln[:99] + ln[100:105] + " " + ln[105:] if direction == "left" else ln[:100] + " " + ln[100:105] + ln[106:]
    assert len(shifted) == len(ln)
    with_table1_line(root, 2, shifted)
    err = strict_error(root)
    assert err.file.endswith("table1.dat") and err.line == 2 and err.field == "Vflat"
    assert "table1.dat:2: field 'Vflat'" in str(err)
    cat, report, message = lenient(root)  # lenient: NGC2403 skipped, recorded, and the others loaded
    assert list(cat.names) == ["CamB", "DDO064"] and [n for n, _ in report.skipped] == ["NGC2403"]
    assert "field 'Vflat'" in report.skipped[0][1] and "NGC2403" in message and report.only_in_rotmod == []


def _shift(line: str, first: int, last: int, direction: str) -> str:
    line = line.ljust(130)
    if direction == "left":
        return (line[:first - 2] + line[first - 1:last] + " " + line[last:]).rstrip()
    return (line[:first - 1] + " " + line[first - 1:last] + line[last + 1:]).rstrip()


def _blames(err: SparcFormatError, label: str) -> bool:
    return err.field == label or f"between {label} and" in err.reason or f"and {label}," in err.reason


# a plain row, and one at the edges of the ranges (two-digit Type, widest Dist, i = 90, no flat part, Qual 3)
SHIFT_ROWS = [row("GOOD1"), row("GOOD1", Type=10, Dist=127.8, i=90.0, Vflat=0.0, e_Vflat=0.0, Qual=3)]


@pytest.mark.parametrize("direction", ["left", "right"])
def test_every_field_shifted_one_byte_is_caught(direction):
    """Property over the layout: moving any field one byte, on synthetic rows, is an error that names the field."""
    for line in SHIFT_ROWS:
        parse_table1_line(line, "table1.dat", 1)
        for label, first, last, _, _ in TABLE1_LAYOUT:
            if label == "Name" and direction == "left":
                continue
            with pytest.raises(SparcFormatError) as e:
                parse_table1_line(_shift(line, first, last, direction), "table1.dat", 7)
            assert e.value.line == 7 and _blames(e.value, label), (label, direction, str(e.value))


@pytest.mark.parametrize("direction", ["left", "right"])
def test_every_field_shifted_in_real_rows_is_caught(sparc_dir, direction):
    lines = (sparc_dir / "table1.dat").read_text().splitlines()
    for line in lines[::25]:  # 7 real rows
        for label, first, last, _, _ in TABLE1_LAYOUT:
            if label == "Name" and direction == "left":
                continue
            shifted = _shift(line, first, last, direction)
            if shifted == line:  # a field that ends short of 130 (Ref) moved onto its own padding
                continue
            with pytest.raises(SparcFormatError) as e:
                parse_table1_line(shifted, "table1.dat", 3)
            assert _blames(e.value, label), (label, direction, str(e.value))


# ---- table1: formats, blank bytes, value limits ----------------------------------------------------------------------

@pytest.mark.parametrize("over,label,fragment", [
    (dict(i=95.0), "i", "within [0, 90]"),
    (dict(i=-5.0), "i", "within [0, 90]"),
    (dict(Qual=4), "Qual", "within [1, 3]"),
    (dict(Qual=0), "Qual", "within [1, 3]"),
    (dict(Type=12), "Type", "within [0, 11]"),
    (dict(f_Dist=0), "f_Dist", "within [1, 5]"),
    (dict(f_Dist=6), "f_Dist", "within [1, 5]"),
    (dict(Dist=0.0), "Dist", "> 0"),
    (dict(e_Dist=-1.0), "e_Dist", ">= 0"),
    (dict(e_i=-1.0), "e_i", ">= 0"),
    (dict(e_Vflat=-1.0), "e_Vflat", ">= 0"),
    (dict(Vflat=-10.0), "Vflat", ">= 0"),
    (dict(MHI=-0.5), "MHI", ">= 0"),
    (dict(Vflat=0.0, e_Vflat=3.0), "e_Vflat", "both must be 0"),
    (dict(Vflat=120.0, e_Vflat=0.0), "e_Vflat", "both must be 0"),
])
def test_out_of_range_values(tmp_path, over, label, fragment):
    root = three(tmp_path, **over)
    err = strict_error(root)
    assert (err.line, err.field) == (2, label) and fragment in err.reason and err.file.endswith("table1.dat")


@pytest.mark.parametrize("edit,label,fragment", [
    (lambda ln: ln[:99] + "x" + ln[100:], "Vflat", "byte 100, the blank between RHI and Vflat, is 'x'"),
    (lambda ln: ln[:11] + "7" + ln[12:], "Type", "byte 12, the blank between Name and Type"),
    (lambda ln: ln[:115] + "," + ln[116:], "Ref", "byte 116"),
    (lambda ln: ln.ljust(130) + "X", "Ref", "record length (Lrecl) is 130"),
    (lambda ln: ln[:100] + "131.21" + ln[106:], "e_Vflat", "byte 106"),  # a number wider than its field
    (lambda ln: ln[:100] + "150.0"[:4] + "5" + ln[105:], "Vflat", None),  # fine: 150.5
    (lambda ln: ln[:100] + " 1.50" + ln[105:], "Vflat", "2 decimals; format F5.1 has 1"),
    (lambda ln: ln[:100] + "  150" + ln[105:], "Vflat", "no decimal point"),
    (lambda ln: ln[:30] + "60. " + ln[34:], "i", "not right-justified"),
    (lambda ln: ln[:15] + "1 0.00" + ln[21:], "Dist", "blank inside"),
    (lambda ln: ln[:15] + "  1e+1" + ln[21:], "Dist", "no decimal point"),
    (lambda ln: ln[:15] + " 1.0e1" + ln[21:], "Dist", "not in fixed-point notation"),
    (lambda ln: ln[:15] + "   nan" + ln[21:], "Dist", "not finite"),
    (lambda ln: ln[:60], "Qual", "line has 60 bytes, ending inside Reff (bytes 57-61); the layout needs 115"),
    (lambda ln: ln[:112] + " 2." + ln[115:], "Qual", "not an integer"),
    (lambda ln: ln[:112] + "1  " + ln[115:], "Qual", "not right-justified"),
    (lambda ln: " GOOD2     " + ln[11:], "Name", "left-justified"),
    (lambda ln: "GO OD2     " + ln[11:], "Name", "without blanks"),
    (lambda ln: ln[:116] + " Te99", "Ref", "left-justified"),
    (lambda ln: "GOOD\u00e92     " + ln[11:], "Name", "printable ASCII"),
])
def test_format_violations(tmp_path, edit, label, fragment):
    root = three(tmp_path)
    good = row("GOOD2")
    with_table1_line(root, 2, edit(good))
    if fragment is None:
        read_sparc(root)
        return
    err = strict_error(root)
    assert (err.line, err.field) == (2, label), str(err)
    assert fragment in err.reason, str(err)


def test_non_ascii_byte_is_located(tmp_path):
    root = three(tmp_path)
    raw = (root / "table1.dat").read_bytes().split(b"\n")
    raw[2] = raw[2][:100] + b"\xb1" + raw[2][101:]  # a Latin-1 byte inside GOOD3's Vflat
    (root / "table1.dat").write_bytes(b"\n".join(raw))
    err = strict_error(root)
    assert (err.line, err.field) == (3, "Vflat")


# ---- rotmod: unreadable, a directory, truncated, empty -------------------------------------------------------------

def test_unreadable_rotmod_file(tmp_path):
    root = three(tmp_path)
    bad = root / "rotmod" / "GOOD2_rotmod.dat"
    bad.chmod(0)
    try:
        if os.access(bad, os.R_OK):
            pytest.skip("running with privileges that ignore file permissions (root): chmod 000 cannot make a file "
                        "unreadable here; test_read_error_becomes_format_error covers the same path")
        err = strict_error(root)
        assert err.file == str(bad) and err.line is None and err.field == "file" and "Permission denied" in err.reason
        cat, report, message = lenient(root)
        assert list(cat.names) == ["GOOD1", "GOOD3"] and report.skipped[0][0] == "GOOD2"
        assert "GOOD2_rotmod.dat" in message
        assert len(sparc_checksum(root)) == 64  # what the CLI does after a lenient load
    finally:
        bad.chmod(0o644)


def test_read_error_becomes_format_error(tmp_path, monkeypatch):
    """The same path as chmod 000, forced where permissions are not enforced: any OSError on a rotmod file."""
    root = three(tmp_path)
    bad = root / "rotmod" / "GOOD2_rotmod.dat"
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == bad.name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    err = strict_error(root)
    assert err.file == str(bad) and err.field == "file" and "Permission denied" in str(err)
    cat, report, _ = lenient(root)
    assert list(cat.names) == ["GOOD1", "GOOD3"] and [n for n, _ in report.skipped] == ["GOOD2"]


def test_unreadable_table1_is_a_format_error(tmp_path, monkeypatch):
    root = three(tmp_path)
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "table1.dat":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(SparcFormatError, match=r"table1.dat: field 'file': cannot read: Permission denied"):
        read_sparc(root, lenient=True)  # nothing can be attributed: stops even a lenient load


def test_directory_in_place_of_rotmod_file(tmp_path):
    root = write_dir(tmp_path, [row(n) for n in NAMES], {"GOOD1": rotmod(), "GOOD3": rotmod()})
    (root / "rotmod" / "GOOD2_rotmod.dat").mkdir()
    err = strict_error(root)
    assert err.file.endswith("GOOD2_rotmod.dat") and err.field == "file" and "directory" in err.reason
    cat, report, _ = lenient(root)
    assert list(cat.names) == ["GOOD1", "GOOD3"] and [n for n, _ in report.skipped] == ["GOOD2"]
    assert len(sparc_checksum(root)) == 64


LAST = "3.00\t70.00\t2.00\t2.50\t40.00\t0.00\t100.00\t0.00"


@pytest.mark.parametrize("cut,field,fragment", [
    (LAST[:-1], "SBbul", "'0.0' has 1 decimals, line 7 has 2"),
    (LAST[:-2], "SBbul", "'0.' has 0 decimals"),
    (LAST[:-3], "SBbul", "'0' has 0 decimals"),
    (LAST[:-5], "columns", "expected 8 columns"),  # cut right after the 7th value
    (LAST[:-6], "columns", "got 7"),
    ("3.00\t70.00\t2.00\t2.50\t40.00\t0.00\t100.00\t0.1", "SBbul", "'0.1' has 1 decimals"),
])
def test_truncated_last_line(tmp_path, cut, field, fragment):
    text = rotmod(newline_at_end=False)
    assert text.endswith(LAST)
    root = three(tmp_path)
    (root / "rotmod" / "GOOD2_rotmod.dat").write_text(text[: -len(LAST)] + cut)
    err = strict_error(root)
    assert err.file.endswith("GOOD2_rotmod.dat") and (err.line, err.field) == (8, field), str(err)
    assert "truncated last line (no newline at the end of the file)" in err.reason and fragment in err.reason


def test_complete_last_line_without_newline_is_accepted(tmp_path):
    p = tmp_path / "X_rotmod.dat"
    p.write_text(rotmod(newline_at_end=False))
    assert read_rotmod(p)[1]["R"].tolist() == [0.5, 1.0, 1.5, 2.0, 3.0]
    p.write_text(rotmod(R=(0.5,), newline_at_end=False))  # one data line: 2 decimals, as SPARC writes
    assert read_rotmod(p)[1]["SB_bul"].tolist() == [0.0]
    p.write_text(rotmod(R=(0.5,), newline_at_end=False)[:-1])
    with pytest.raises(SparcFormatError, match="SPARC writes 2"):
        read_rotmod(p)
    p.write_text(rotmod() + "# a trailing comment without newline")  # data complete: fine
    assert len(read_rotmod(p)[1]["R"]) == 5


def test_real_rotmod_truncated(sparc_dir, tmp_path):
    """Every real file ends with a newline; without it the file is still whole, one byte less is not."""
    text = (sparc_dir / "rotmod" / "NGC2403_rotmod.dat").read_text()
    assert text.endswith("\n")
    p = tmp_path / "NGC2403_rotmod.dat"
    p.write_text(text[:-1])
    assert len(read_rotmod(p)[1]["R"]) == len(read_rotmod(sparc_dir / "rotmod" / "NGC2403_rotmod.dat")[1]["R"])
    p.write_text(text[:-2])
    with pytest.raises(SparcFormatError, match="truncated last line"):
        read_rotmod(p)


@pytest.mark.parametrize("text,fragment", [("", "empty file (0 bytes)"), ("\n \n\t\n", "empty file (only blanks)")])
def test_empty_rotmod_file(tmp_path, text, fragment):
    root = three(tmp_path)
    (root / "rotmod" / "GOOD2_rotmod.dat").write_text(text)
    err = strict_error(root)
    assert err.file.endswith("GOOD2_rotmod.dat") and err.field == "file" and fragment in err.reason
    assert "Distance" not in str(err)
    _, report, _ = lenient(root)
    assert report.skipped == [("GOOD2", str(err))]


def test_two_distance_headers(tmp_path):
    p = tmp_path / "X_rotmod.dat"
    p.write_text("# Distance = 3.0 Mpc\n" + rotmod())
    with pytest.raises(SparcFormatError, match="second '# Distance' header"):
        read_rotmod(p)


# ---- lenient mode over table1 faults --------------------------------------------------------------------------------

def test_lenient_skips_a_table1_fault_and_records_it(tmp_path):
    root = three(tmp_path, i=95.0)
    err = strict_error(root)
    assert (err.line, err.field) == (2, "i")
    cat, report, message = lenient(root)
    assert list(cat.names) == ["GOOD1", "GOOD3"] and cat.n_points == 10
    assert report.skipped == [("GOOD2", str(err))]
    assert report.only_in_rotmod == [] and report.only_in_table1 == []  # GOOD2's rotmod file: not counted twice
    assert "skipped 1 galaxies" in message and "table1.dat:2: field 'i'" in message


def test_lenient_several_table1_faults(tmp_path):
    rows = [row("GOOD1", Qual=7), row("GOOD2")[:60], row("GOOD3"), row("GOOD4").replace(" 150.0 ", " 150.0x", 1)]
    root = write_dir(tmp_path, rows, {n: rotmod() for n in ["GOOD1", "GOOD2", "GOOD3", "GOOD4"]})
    cat, report, _ = lenient(root)
    assert list(cat.names) == ["GOOD3"]
    assert [(n, re.search(r"field '([^']+)'", why).group(1)) for n, why in report.skipped] == [
        ("GOOD1", "Qual"), ("GOOD2", "Qual"), ("GOOD4", "e_Vflat")]


def test_lenient_unreadable_name_skips_by_line_number(tmp_path):
    root = three(tmp_path)
    with_table1_line(root, 2, " " + row("GOOD2"))  # the whole row moved one byte: the name cannot be trusted
    err = strict_error(root)
    assert (err.line, err.field) == (2, "Name")
    cat, report, _ = lenient(root)
    assert list(cat.names) == ["GOOD1", "GOOD3"]
    assert [n for n, _ in report.skipped] == ["<table1.dat line 2>", "GOOD2"]
    assert "no row for this galaxy in table1.dat (table1.dat lines 2 have no readable name)" in report.skipped[1][1]
    assert report.only_in_rotmod == ["GOOD2"]


def test_lenient_duplicate_rows(tmp_path):
    root = write_dir(tmp_path, [row("GOOD1"), row("GOOD2"), row("GOOD1", i=45.0)], {n: rotmod() for n in NAMES[:2]})
    err = strict_error(root)
    assert (err.line, err.field) == (3, "Name") and "duplicate galaxy 'GOOD1' (first at line 1)" in err.reason
    cat, report, _ = lenient(root)
    assert list(cat.names) == ["GOOD2"] and [n for n, _ in report.skipped] == ["GOOD1"]


def test_lenient_with_every_row_bad(tmp_path):
    root = write_dir(tmp_path, [row("GOOD1", i=99.0)], {"GOOD1": rotmod()})
    with pytest.raises(SparcFormatError, match="no galaxy could be loaded .1 skipped: first .*field 'i'"):
        read_sparc(root, lenient=True)


# ---- the real table1: every line passes, and round-trips ------------------------------------------------------------

def _readme_table1(sparc_dir: Path) -> list[tuple[str, str, str, str]]:
    """``(label, format, lo, hi)`` from the ReadMe's "Byte-by-byte Description of file: table1.dat"."""
    text = (sparc_dir / "ReadMe.txt").read_text()
    section = text.split("Byte-by-byte Description of file: table1.dat")[1].split("Byte-by-byte Description")[0]
    return re.findall(r"^\s*\d+(?:-\s*\d+)?\s+([AIF][\d.]+)\s+\S+\s+(\S+)\s+(?:\[([^/\]]+)/([^\]]+)\])?",
                      section, flags=re.M)


def test_formats_and_stated_ranges_match_the_readme(sparc_dir):
    rows = _readme_table1(sparc_dir)
    assert {label: fmt for fmt, label, _, _ in rows} == TABLE1_FORMATS
    assert {label: (float(lo), float(hi)) for _, label, lo, hi in rows if lo} == TABLE1_STATED_RANGES


def _fortran(value, fmt: str) -> str:
    kind, width = fmt[0], int(fmt[1:].split(".")[0])
    if kind == "A":
        return f"{value:<{width}}"
    if kind == "I":
        return f"{value:>{width}d}"
    return f"{value:>{width}.{int(fmt.split('.')[1])}f}"


def test_real_table1_round_trips(sparc_dir):
    """Every real line parses, lies within the ReadMe's stated ranges, and is rebuilt byte for byte from the parsed
    values written back with the ReadMe's Fortran formats."""
    lines = (sparc_dir / "table1.dat").read_text().splitlines()
    assert len(lines) == 175
    label_of = {field: label for label, _, _, _, field in TABLE1_LAYOUT if field}
    for k, line in enumerate(lines, start=1):
        name, values = parse_table1_line(line + "\n", "table1.dat", k)
        by_label = {label_of[f]: v for f, v in values.items()} | {"Name": name, "Ref": line[116:130].strip()}
        for label, (lo, hi) in TABLE1_STATED_RANGES.items():
            assert lo <= by_label[label] <= hi, (name, label)
        rebuilt = [" "] * 130
        for label, first, last, _, _ in TABLE1_LAYOUT:
            rebuilt[first - 1:last] = _fortran(by_label[label], TABLE1_FORMATS[label])
        assert "".join(rebuilt).rstrip() == line, name


def test_real_sparc_loads_without_warning(sparc_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cat, report = read_sparc(sparc_dir)
    assert (cat.n_galaxies, cat.n_points) == (175, 3391)
    assert report.skipped == [] and report.only_in_rotmod == [] and report.only_in_table1 == []
    assert np.all(np.asarray(cat.V_flat) >= 0)
