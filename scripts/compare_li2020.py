"""jaxcoh's halo catalogue beside Li, Lelli, McGaugh & Schombert 2020 (ApJS 247, 31), model by model.

    python scripts/compare_li2020.py --li2020 li2020_table1.tsv --halos results/halos/halos.csv

``--li2020``: the published table, as VizieR serves it (J/ApJS/247/31/table1, "tab-separated values":
https://vizier.cds.unistra.fr/viz-bin/asu-tsv?-source=J/ApJS/247/31/table1&-out.max=unlimited&-out.all), or a
whitespace table with one row per galaxy, a ``# galaxy <model> ...`` header and ``-`` where the paper leaves chi2_nu
blank. Neither is part of jaxcoh (the table is the paper's): download it.

Prints, per model, the number of galaxies with a chi2_nu, its median, mean and the fraction below 2 in the paper and
in jaxcoh's ``halos.csv``, the median per-galaxy ratio jaxcoh / paper, and how often a cored profile beats NFW-Flat
by chi2_nu in each, and the galaxy-models whose chi2_nu differs from the paper's by more than 5%. The paper's
Einasto chi2_nu column repeats NFW-LCDM's for almost every galaxy (checked below and reported); those models are left
out of the comparison when it does.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

COPY_TOLERANCE = 0.9  # a column equal to another on this fraction of galaxies is a copy, not a fit
DIFFER, FURTHEST = 0.05, 5  # a per-galaxy chi2_nu this far from the paper's is counted; the furthest below listed


def read_li2020(path: str) -> pd.DataFrame:
    """``[galaxy x model]`` chi2_nu of the paper (NaN where it is blank)."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    if any(line.startswith("recno\t") for line in lines):  # VizieR TSV: header, units, dashes, then rows
        start = next(i for i, line in enumerate(lines) if line.startswith("recno\t"))
        body = [lines[start]] + [line for line in lines[start + 3:] if line.strip() and not line.startswith("#")]
        t = pd.read_csv(io.StringIO("\n".join(body)), sep="\t", dtype=str)
        t.columns = [c.strip() for c in t.columns]
        t["Name"], t["Model"] = t["Name"].str.strip(), t["Model"].str.strip()
        t["chi2"] = pd.to_numeric(t["chi2"].str.strip().replace("", np.nan))
        # the table's own order of models (pivot sorts them): a column that repeats an earlier one is the copy
        return t.pivot(index="Name", columns="Model", values="chi2")[list(t["Model"].unique())]
    header = next(line for line in lines if line.startswith("#")).lstrip("#").split()
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    t = pd.DataFrame([[r[0], *[math.nan if v == "-" else float(v) for v in r[1:]]] for r in rows], columns=header)
    return t.set_index(header[0])


def copied_columns(paper: pd.DataFrame) -> dict[str, str]:
    """``{model: model it repeats}`` for the paper's columns equal to an earlier one on most galaxies."""
    out = {}
    cols = list(paper.columns)
    for i, a in enumerate(cols):
        for b in cols[:i]:
            both = paper[[a, b]].dropna()
            if len(both) and np.mean(both[a] == both[b]) >= COPY_TOLERANCE:
                out[a] = b
                break
    return out


def stats(c: pd.Series) -> tuple[int, float, float, float]:
    c = c.dropna()
    return len(c), float(c.median()), float(c.mean()), float((c < 2).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--li2020", required=True, help="Li+20's table1 (VizieR TSV or a galaxy x model chi2_nu table)")
    ap.add_argument("--halos", required=True, help="halos.csv written by `jaxcoh halos`")
    args = ap.parse_args(argv)
    paper = read_li2020(args.li2020)
    ours = pd.read_csv(args.halos).pivot(index="galaxy", columns="model", values="chi2_nu")
    copies = copied_columns(paper)
    for a, b in copies.items():
        print(f"note: the paper's {a} chi2_nu repeats {b}'s on >= {COPY_TOLERANCE:.0%} of galaxies: left out")
    models = [m for m in ours.columns if m in paper.columns and m not in copies]
    print(f"{'model':<14}{'N paper':>8}{'N jaxcoh':>9}{'median':>8}{'':>8}{'mean':>7}{'':>7}{'<2':>7}{'':>7}"
          f"{'ratio':>7}")
    print(f"{'':<14}{'':>8}{'':>9}{'paper':>8}{'jaxcoh':>8}{'paper':>7}{'jaxcoh':>7}{'paper':>7}{'jaxcoh':>7}"
          f"{'median':>7}")
    for m in models:
        n_p, med_p, mean_p, f_p = stats(paper[m])
        n_o, med_o, mean_o, f_o = stats(ours[m])
        both = pd.concat([paper[m], ours[m]], axis=1, join="inner").dropna()
        ratio = float(np.median(both.iloc[:, 1] / both.iloc[:, 0])) if len(both) else math.nan
        print(f"{m:<14}{n_p:>8}{n_o:>9}{med_p:>8.2f}{med_o:>8.2f}{mean_p:>7.2f}{mean_o:>7.2f}{f_p:>7.2f}{f_o:>7.2f}"
              f"{ratio:>7.3f}")
    if "NFW-Flat" in models:
        for m in (c for c in ("pISO-Flat", "Burkert-Flat", "DC14-Flat", "Lucky13-Flat") if c in models):
            line = []
            for label, t in (("paper", paper), ("jaxcoh", ours)):
                both = t[[m, "NFW-Flat"]].dropna()
                line.append(f"{label} {int((both[m] < both['NFW-Flat']).sum())} of {len(both)}")
            print(f"{m} fits better than NFW-Flat (lower chi2_nu): " + ", ".join(line))
    pairs = pd.concat({m: pd.concat([paper[m], ours[m]], axis=1, join="inner", keys=["paper", "jaxcoh"])
                       for m in models}, names=["model", "galaxy"]).dropna()
    rel = pairs["jaxcoh"] / pairs["paper"] - 1
    print(f"galaxy-models with jaxcoh's chi2_nu more than {DIFFER:.0%} below the paper's: {int((rel < -DIFFER).sum())}"
          f", above: {int((rel > DIFFER).sum())}, of {len(pairs)}; the furthest below:")
    for (m, g), r in pairs.loc[rel.nsmallest(FURTHEST).index].iterrows():
        print(f"  {g} {m}: jaxcoh {r['jaxcoh']:.2f}, paper {r['paper']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
