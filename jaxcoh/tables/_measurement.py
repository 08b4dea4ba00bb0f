"""A measurement as a table cell: the value rounded to its uncertainty, in LaTeX or plain text.

The rounding is the Particle Data Group's (the uncertainty to one or two significant digits by its three leading
digits, the value to the same decimal place), as the ``uncertainties`` package formats it; a value without a usable
uncertainty keeps :data:`SIGNIFICANT` significant digits. Parameter names become their symbols (:func:`symbol`).
"""

from __future__ import annotations

import math
import re
import warnings

SIGNIFICANT = 4  # significant digits of a value without an uncertainty

# jaxcoh's parameter and column names -> (LaTeX symbol, plain-text name, unit); unknown names are shown as they are.
SYMBOLS = {
    "g_dagger": (r"$g_\dagger$", "g_dagger", r"m s$^{-2}$"),
    "sigma_int": (r"$\sigma_\mathrm{int}$", "sigma_int", "dex"),
    "K_max": (r"$K_\mathrm{max}$", "K_max", ""),
    "F_max": (r"$F_\mathrm{max}$", "F_max", ""),
    "Psi0": (r"$\Psi_0$", "Psi0", ""),
    "Psi0_fR3": (r"$\Psi_0 f_R^3$", "Psi0_fR3", ""),
    "gamma": (r"$\gamma$", "gamma", ""),
    "delta": (r"$\delta$", "delta", ""),
    "f_R": (r"$f_R$", "f_R", ""),
    "v_ref": (r"$v_\mathrm{ref}$", "v_ref", "km s$^{-1}$"),
    "A": (r"$A$", "A", ""),
    "alpha": (r"$\alpha$", "alpha", ""),
    "beta": (r"$\beta$", "beta", ""),
    "p": (r"$p$", "p", ""),
    "n_coh": (r"$n_\mathrm{coh}$", "n_coh", ""),
    "ell0": (r"$\ell_0$", "ell0", "kpc"),
    "V200": (r"$V_{200}$", "V200", "km s$^{-1}$"),
    "C200": (r"$C_{200}$", "C200", ""),
    "upsilon_disk": (r"$\Upsilon_\mathrm{disk}$", "upsilon_disk", ""),
    "upsilon_bulge": (r"$\Upsilon_\mathrm{bul}$", "upsilon_bulge", ""),
}


def symbol(name: str, latex: bool = True, unit: bool = True) -> str:
    """The column or row label of parameter ``name``: its symbol (LaTeX) or name (text), with its unit in brackets."""
    sym, text, u = SYMBOLS.get(name, (None, name, ""))
    label = (sym or escape(name)) if latex else text
    if unit and u:
        label += f" [{u}]" if latex else f" [{re.sub(r'[$^{}]', '', u)}]"
    return label


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (model and galaxy names)."""
    return re.sub(r"([&%$#_{}])", r"\\\1", str(text))


def measurement(value: float | None, error: float | None = None, latex: bool = True) -> str:
    """``value +- error`` rounded by the PDG rule (LaTeX math, or plain text with "+-"); the value alone (to
    :data:`SIGNIFICANT` digits) where ``error`` is None, zero or not finite; "--" where ``value`` is missing."""
    if value is None or not math.isfinite(value):
        return "--" if value is None or math.isnan(value) else (f"${value}$" if latex else str(value))
    if error is None or not math.isfinite(error) or error <= 0:
        return number(value, latex=latex)
    from uncertainties import ufloat

    with warnings.catch_warnings():  # (it warns about a zero uncertainty, which is excluded above)
        warnings.simplefilter("ignore")
        text = format(ufloat(value, error), "L" if latex else "")
    if latex:
        return "$" + text.replace(r"\left(", "(").replace(r"\right)", ")") + "$"
    return text.replace("+/-", " +- ")


def number(value: float, digits: int = SIGNIFICANT, latex: bool = True) -> str:
    """``value`` to ``digits`` significant digits; powers of ten as ``\\times 10^{n}`` in LaTeX."""
    if value is None or not math.isfinite(value):
        return "--"
    text = f"{value:.{digits}g}"
    if "e" in text and latex:
        mantissa, exponent = text.split("e")
        return f"${mantissa} \\times 10^{{{int(exponent)}}}$"
    return f"${text}$" if latex else text
