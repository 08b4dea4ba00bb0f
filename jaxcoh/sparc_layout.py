"""The byte layout of SPARC's ``table1.dat`` (the CDS ReadMe's "Byte-by-byte Description") and the parsing of one
line against it: each field must fill its bytes as its Fortran format writes it, the bytes between fields must be
blank, and each value must lie within what the ReadMe defines, so that a field moved by one byte is an error naming
the line and field, never a wrong number. Errors are :class:`SparcFormatError` (file, line, field, reason).
"""

from __future__ import annotations

import math
import re

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
TABLE1_RECORD_LENGTH = 130  # "Lrecl 130" for table1.dat in the ReadMe's File Summary
# The Fortran format of each field, from the same ReadMe table ("Format" column). A field must fill its byte range
# exactly as this format writes it: A (text) left-justified, I (integer) and Fw.d (fixed point) right-justified,
# Fw.d with exactly d decimals. The real table1.dat follows this for every field of every line (checked, see
# tests/test_sparc_format.py), so nothing looser is needed; a field moved by one byte fails it (and leaves a
# non-blank byte between fields).
TABLE1_FORMATS: dict[str, str] = {
    "Name": "A11", "Type": "I2", "Dist": "F6.2", "e_Dist": "F5.2", "f_Dist": "I1", "i": "F4.1", "e_i": "F4.1",
    "L3.6": "F7.3", "e_L3.6": "F7.3", "Reff": "F5.2", "SBeff": "F8.2", "Rdisk": "F5.2", "SBdisk": "F8.2",
    "MHI": "F7.3", "RHI": "F5.2", "Vflat": "F5.1", "e_Vflat": "F5.1", "Qual": "I3", "Ref": "A14",
}
# The "[min/max]" the ReadMe gives in each field's Explanations: by the CDS convention, the range of the values in
# this table (the 175 rows, rounded: SBeff's "[5.3/3317.7]" stands for 5.36..3317.65), not a definition of what the
# quantity may be. They are not enforced (a corrected or extended table may leave them); the tests check that the
# real file lies within them.
TABLE1_STATED_RANGES: dict[str, tuple[float, float]] = {
    "Type": (0, 11), "Dist": (0.98, 127.8), "e_Dist": (0.05, 12.8), "f_Dist": (1, 5), "i": (15, 90), "e_i": (1, 10),
    "L3.6": (0, 490), "e_L3.6": (0, 6.2), "Reff": (0, 12.4), "SBeff": (5.3, 3317.7), "Rdisk": (0.18, 18.8),
    "SBdisk": (12, 23813.9), "MHI": (0.01, 40.1), "RHI": (0, 74.3), "Vflat": (0, 332), "e_Vflat": (0, 20.7),
    "Qual": (1, 3),
}
# What each value may be, enforced: (lowest, highest, lowest allowed itself?, where the rule comes from). These are
# the limits a field's meaning sets, as the ReadMe defines it, not its observed range.
TABLE1_LIMITS: dict[str, tuple[float, float, bool, str]] = {
    # "Type [0/11] Numerical Hubble type (1)"; Note (1) numbers the types 0 = S0 ... 11 = BCD
    "Type": (0, 11, True, "Note (1): 0 = S0 ... 11 = BCD"),
    # "Dist [0.98/127.8] Assumed distance": a distance, in Mpc
    "Dist": (0.0, math.inf, False, "a distance"),
    # "e_Dist ... Mean error on Dist", and every e_* field below: an error is not negative
    "e_Dist": (0.0, math.inf, True, "an error"),
    # "f_Dist [1/5] Flag giving the distance method (2)"; Note (2) defines 1 = Hubble flow ... 5 = supernovae
    "f_Dist": (1, 5, True, "Note (2): methods 1..5"),
    # "i [15/90] Assumed inclination angle (3)": the angle between disk and sky planes, 0..90 deg by definition
    # ([15/90] is this table's observed range)
    "i": (0.0, 90.0, True, "an inclination angle, 0..90 deg"),
    "e_i": (0.0, math.inf, True, "an error"),
    # "L3.6 [0/490] Total luminosity", "Reff [0/12.4] Effective radius", "SBeff ... surface brightness",
    # "Rdisk ... scale length", "SBdisk ... central surface brightness", "MHI ... Total HI mass",
    # "RHI [0/74.3] HI radius": luminosities, radii, surface brightnesses and masses are not negative
    "L3.6": (0.0, math.inf, True, "a luminosity"),
    "e_L3.6": (0.0, math.inf, True, "an error"),
    "Reff": (0.0, math.inf, True, "a radius"),
    "SBeff": (0.0, math.inf, True, "a surface brightness"),
    "Rdisk": (0.0, math.inf, True, "a radius"),
    "SBdisk": (0.0, math.inf, True, "a surface brightness"),
    "MHI": (0.0, math.inf, True, "a mass"),
    "RHI": (0.0, math.inf, True, "a radius"),
    # "Vflat [0/332] ... velocity along the flat part": 0 means none measured (40 galaxies), never negative
    "Vflat": (0.0, math.inf, True, "a speed (0 = no flat part)"),
    "e_Vflat": (0.0, math.inf, True, "an error"),
    # "Qual [1/3] Rotation-curve quality flag (1=high, 2=medium, or 3=low) (6)"
    "Qual": (1, 3, True, "1 = high, 2 = medium, 3 = low"),
}
_NAME_RE = re.compile(r"[!-~]+ *")  # A11: printable ASCII without blanks, left-justified
_INT_RE = re.compile(r" *[+-]?\d+")
_DECIMALS_RE = re.compile(r"\.(\d*)")
_FIXED_RE = re.compile(r"[+-]?\d*\.\d+")


class DataFormatError(ValueError):
    """A problem in an input data file, located: ``file``, ``line`` (1-based, None for the whole file) and ``field``
    (what the command line reports with exit code 3)."""

    def __init__(self, file, line: int | None, field: str, reason: str):
        self.file, self.line, self.field, self.reason = str(file), line, field, reason
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: field '{field}': {reason}")


class SparcFormatError(DataFormatError):
    """A problem in a SPARC file (table1.dat or a rotmod file)."""


def _number(text: str, kind: str, file, line: int, field: str):
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        raise SparcFormatError(file, line, field, f"not a number: {text.strip()!r}") from None
    if kind == "float" and not math.isfinite(value):
        raise SparcFormatError(file, line, field, f"not finite: {text.strip()!r}")
    return value


def _check_field(raw: str, label: str, first: int, last: int, file, line: int):
    """The value of one table1 field, ``raw`` being its bytes ``first..last``, checked against its Fortran format."""
    fmt = TABLE1_FORMATS[label]
    where = f"bytes {first}-{last}" if last > first else f"byte {first}"
    if fmt[0] == "A":
        if label == "Name":
            if not raw.strip():
                raise SparcFormatError(file, line, label, f"empty galaxy name ({where})")
            if not _NAME_RE.fullmatch(raw):
                raise SparcFormatError(file, line, label, f"{raw!r} is not {fmt}: a name left-justified in {where}, "
                                                          "printable ASCII without blanks")
        elif raw.strip() and (raw[0] == " " or not all(" " <= c <= "~" for c in raw)):
            raise SparcFormatError(file, line, label, f"{raw!r} is not {fmt}: text left-justified in {where}, "
                                                      "printable ASCII")
        return raw.strip()
    if not raw.strip():
        raise SparcFormatError(file, line, label, f"empty ({where})")
    if raw[-1] == " ":
        raise SparcFormatError(file, line, label, f"{raw!r} is not right-justified in {where} (format {fmt}): "
                                                  "a shifted field?")
    if fmt[0] == "I":
        if not _INT_RE.fullmatch(raw):
            raise SparcFormatError(file, line, label, f"{raw.strip()!r} is not an integer (format {fmt}, {where})")
        return int(raw)
    decimals = int(fmt.split(".")[1])
    s = raw.strip()
    if " " in s:
        raise SparcFormatError(file, line, label, f"{raw!r} has a blank inside (format {fmt}, {where})")
    value = _number(s, "float", file, line, label)
    if "." not in s:
        raise SparcFormatError(file, line, label, f"{s!r} has no decimal point; format {fmt} has {decimals} "
                                                  f"decimals ({where})")
    if not _FIXED_RE.fullmatch(s):
        raise SparcFormatError(file, line, label, f"{s!r} is not in fixed-point notation (format {fmt}, {where})")
    if _decimals(s) != decimals:
        raise SparcFormatError(file, line, label, f"{s!r} has {_decimals(s)} decimals; format {fmt} has {decimals} "
                                                  f"({where})")
    return value


def out_of_range(label: str, v: float) -> str | None:
    """Why ``v`` cannot be the value of table1's field ``label`` (:data:`TABLE1_LIMITS`), or None when it can."""
    lo, hi, lo_ok, why = TABLE1_LIMITS[label]
    if not (v < lo or (v == lo and not lo_ok) or v > hi):
        return None
    bound = f"within [{lo:g}, {hi:g}]" if hi < math.inf else f"{'>=' if lo_ok else '>'} {lo:g}"
    return f"{v:g} out of range: must be {bound} ({why})"


def _table1_name(text: str) -> str | None:
    """The galaxy name of a table1 line, or None when bytes 1-11 (and the blank byte 12) do not hold a clean one."""
    text = text.rstrip("\r\n")
    raw = text[:11].ljust(11)
    if not _NAME_RE.fullmatch(raw) or (len(text) > 11 and text[11] != " "):
        return None
    return raw.strip()


def parse_table1_line(text: str, file, line: int) -> tuple[str, dict]:
    """``(name, {catalog field: value})`` from one line of table1.dat, validated against the ReadMe's layout.

    Each field must fill its bytes as its Fortran format writes it (``TABLE1_FORMATS``), the bytes between fields
    must be blank, nothing may follow byte 130, and each value must lie within ``TABLE1_LIMITS``. Checked in that
    order, so that a shifted field is blamed on itself rather than on the blank byte it overwrote.
    """
    text = text.rstrip("\n").rstrip("\r")
    n = len(text.rstrip())
    if n < TABLE1_MIN_LENGTH:
        inside = next((f", ending inside {label} (bytes {first}-{last})" for label, first, last, _, _ in TABLE1_LAYOUT
                       if first <= n < last), "")
        raise SparcFormatError(file, line, "Qual", f"line has {n} bytes{inside}; the layout needs "
                                                   f"{TABLE1_MIN_LENGTH} (through Qual)")
    if text[TABLE1_RECORD_LENGTH:].strip():
        raise SparcFormatError(file, line, "Ref", f"line has {len(text.rstrip())} bytes; the ReadMe's record length "
                                                  f"(Lrecl) is {TABLE1_RECORD_LENGTH}")
    text = text[:TABLE1_RECORD_LENGTH].ljust(TABLE1_RECORD_LENGTH)
    parsed = {label: _check_field(text[first - 1:last], label, first, last, file, line)
              for label, first, last, _, _ in TABLE1_LAYOUT}
    prev_last, prev_label = 0, None
    for label, first, last, _, _ in TABLE1_LAYOUT:
        for pos in range(prev_last + 1, first):
            if text[pos - 1] != " ":
                raise SparcFormatError(file, line, label, f"byte {pos}, the blank between {prev_label} and {label}, "
                                                          f"is {text[pos - 1]!r}: a shifted field?")
        prev_last, prev_label = last, label
    for label in TABLE1_LIMITS:
        if (problem := out_of_range(label, parsed[label])) is not None:
            raise SparcFormatError(file, line, label, problem)
    # Vflat = 0 means "no flat part measured" (the 40 such galaxies all have e_Vflat = 0 too, the other 135 an
    # e_Vflat > 0): an error on an unmeasured speed, or a speed without an error, is a corrupted row.
    if (parsed["Vflat"] == 0) != (parsed["e_Vflat"] == 0):
        raise SparcFormatError(file, line, "e_Vflat", f"Vflat = {parsed['Vflat']:g} with e_Vflat = "
                                                      f"{parsed['e_Vflat']:g}: both must be 0 (no flat part) or "
                                                      "both > 0")
    values = {field: parsed[label] for label, _, _, _, field in TABLE1_LAYOUT if field is not None}
    return parsed["Name"], values


def _decimals(number: str) -> int:
    m = _DECIMALS_RE.search(number)
    return len(m.group(1)) if m else 0
