"""Simulation-based calibration of jaxcoh's joint posterior (RAR, nuisance, sigma_int; NUTS): see
``jaxcoh/curves/calibration.py``. Prints the coverage table with each interval's binomial 2-sigma band and writes
it, with the ranks, truths, sampler statistics, timings and the command, as JSON.

    python scripts/calibrate_sampler.py --replicates 50 --out results/calibration.json
    python scripts/calibrate_sampler.py --compare-methods      # sequential against vmapped replicates (8 each)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def table(cov: dict) -> str:
    lines = [f"{'parameter':<10} {'interval':>8} {'covered':>9} {'coverage':>9}  {'binomial 2-sigma band':<22} ok",
             "-" * 68]
    for r in cov["rows"]:
        lo, hi = r["band"]
        lines.append(f"{r['param']:<10} {r['level']:>8.0%} {r['covered']:>4}/{r['n']:<4} {r['coverage']:>9.3f}  "
                     f"[{max(lo, 0):.3f}, {min(hi, 1):.3f}]{'':<8} {'yes' if r['within'] else 'NO'}")
    for name, rk in cov["ranks"].items():
        lines.append(f"ranks of {name} among {cov['n_ranks']} thinned draws, {len(rk['counts'])} bins: "
                     f"{rk['counts']}, chi2 {rk['chi2']:.2f}, p = {rk['p_value']:.3f}")
    lines.append(f"divergent draws {cov['divergent_fraction']:.2%}, mean acceptance {cov['mean_acceptance']:.3f}, "
                 f"{cov['grad_evals_per_draw']:.1f} gradients per draw")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=50)
    ap.add_argument("--galaxies", type=int, default=20)
    ap.add_argument("--n-max", type=int, default=24, help="points of the longest mock curve")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--thin", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", default="sequential", choices=("sequential", "vectorized"))
    ap.add_argument("--compare-methods", action="store_true",
                    help="time 8 replicates of 8 galaxies both ways instead (compile apart)")
    ap.add_argument("--out", default="results/calibration.json")
    a = ap.parse_args(argv)

    import jax

    import jaxcoh
    from jaxcoh.curves.calibration import SBCSettings, coverage_table, run_sbc

    jaxcoh.set_precision("float64")
    command = " ".join(["python", *sys.argv]) if argv is None else " ".join(["python", __file__, *argv])
    if a.compare_methods:
        out = {"command": command}
        for method in ("sequential", "vectorized"):
            s = SBCSettings(n_replicates=8, n_galaxies=8, n_max=16, n_warmup=200, n_draws=200, thin=4, method=method,
                            seed=a.seed)
            res = run_sbc(s)
            out[method] = {"compile_s": res.compile_s, "sample_s": res.sample_s,
                           "grad_evals": int(res.grad_evals.sum())}
            print(f"{method:<11} compile {res.compile_s:.1f} s, 8 replicates {res.sample_s:.1f} s "
                  f"({int(res.grad_evals.sum())} gradients)", flush=True)
        print(json.dumps(out))
        return 0

    s = SBCSettings(n_replicates=a.replicates, n_galaxies=a.galaxies, n_max=a.n_max, n_warmup=a.warmup,
                    n_draws=a.draws, thin=a.thin, seed=a.seed, method=a.method)
    t0 = time.perf_counter()

    def progress(r):
        if sys.stderr.isatty() or (r + 1) % 10 == 0:
            print(f"replicate {r + 1}/{s.n_replicates} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                  flush=True)

    res = run_sbc(s, progress=progress)
    wall = time.perf_counter() - t0
    cov = coverage_table(res)
    report = {
        "command": command, "settings": {k: v for k, v in s._asdict().items() if k != "prior"},
        "prior": s.prior._asdict(), "coverage": cov, "wall_s": wall, "compile_s": res.compile_s,
        "sample_s": res.sample_s, "mock_s": res.mock_s,
        "truths": {k: v.tolist() for k, v in res.truths.items()},
        "ranks": {k: v.tolist() for k, v in res.ranks().items()},
        "divergent": res.divergent.tolist(), "acceptance": res.acceptance.tolist(),
        "machine": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "jax": jax.__version__, "backend": jax.default_backend()},
    }
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)  # atomic, as every result file of jaxcoh
    print(f"SBC: {s.n_replicates} replicates of {s.n_galaxies} mock RAR galaxies (nuisance, sigma_int), 1 NUTS chain "
          f"of {s.n_warmup} warm-up + {s.n_draws} draws each, {s.method}")
    print(table(cov))
    print(f"wall {wall:.1f} s (mocks {res.mock_s:.1f} s, compile {res.compile_s:.1f} s, sampling {res.sample_s:.1f} s)"
          f"; all within their band: {cov['all_within']}")
    print(f"command: {command}; written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
