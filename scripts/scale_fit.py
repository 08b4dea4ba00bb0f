"""Benchmark B8: end-to-end joint fits with nuisance of mock catalogs with a known truth, galaxies against wall time.

    python scripts/scale_fit.py --galaxies 1000,10000,100000 --model rar --out /tmp/b8.json

Each size runs in a fresh process (so that its peak memory is its own, and every size pays its own compilation):
``jaxcoh.mock_catalog(N, kernel=MODEL)`` (every galaxy's curve from the model, nuisance drawn from the priors, noise
at the errors), then ``jaxcoh.curves.fit`` with the scale settings below, timed with compilation apart (a second,
warm fit of the same shapes is not run: at 10^5 galaxies it would double the cost; the compile time is measured as the
first call's time minus the solver's own time where the solvers report it, so it is stated as the fit's whole wall
time and the number of iterations). Prints one line per size and writes the JSON: N, points, wall seconds, seconds
per galaxy, iterations, status, peak RSS, and, for the RAR, g_dagger against its truth in standard errors.

Scale settings: the block Levenberg-Marquardt alone (its cost per iteration is linear in the galaxies; the L-BFGS
stage of the default chain needs hundreds of line-searched iterations), ``--n-starts`` starts of the shared parameters
(default 1: the RAR has one, g_dagger, and at 10^4 galaxies its four default starts reached the same optimum while
costing four times one, as vmapped lanes), 4 starts per galaxy of 20 iterations each, then up to 200 iterations of
polish; with ``--marginal laplace`` the shared parameters then move to the Laplace marginal's optimum
(:mod:`jaxcoh.curves.laplace`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CHILD = """
import json, resource, sys, time
import jaxcoh
from jaxcoh import curves
from jaxcoh.solvers import SolverOptions
n, model, dtype, n_starts, marginal = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
scatter = float(sys.argv[6])
jaxcoh.set_precision(dtype)
t0 = time.perf_counter()
cat, truth = jaxcoh.mock_catalog(n, seed=1, kernel=model, return_truth=True, scatter_dex=scatter)
truths = {**truth.params, "sigma_int": scatter}
t_mock = time.perf_counter() - t0
settings = curves.CurveSettings(likelihood=curves.Likelihood(intrinsic_scatter=scatter > 0),
                                solver="block_lm+block_lm", n_starts=n_starts, galaxy_starts=4, errors=True,
                                solver_options=(SolverOptions(max_iter=20), SolverOptions(max_iter=200)),
                                marginal=marginal)
t0 = time.perf_counter()
fit = curves.fit(model, cat, settings)
wall = time.perf_counter() - t0
out = {"N": cat.n_galaxies, "n_points": cat.n_points, "model": model, "dtype": dtype, "n_starts": n_starts,
       "marginal": marginal, "laplace": fit.laplace.to_dict() if fit.laplace else None,
       "mock_s": t_mock,
       "fit_wall_s": wall, "s_per_galaxy": wall / cat.n_galaxies, "n_iter": fit.n_iter, "status": fit.status,
       "objective": fit.objective, "chi2_nu": fit.metrics.get("chi2_nu"),
       "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
for k, v in fit.params.items():
    t = truths.get(k)
    out[k] = v
    if t is not None and fit.stderr.get(k):
        out[f"{k}_truth"] = t
        out[f"{k}_pull"] = (v - t) / fit.stderr[k]
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", default="1000,10000", help="comma-separated catalog sizes")
    ap.add_argument("--model", default="rar", help="the curve model that makes the mock and is fitted")
    ap.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    ap.add_argument("--n-starts", type=int, default=1, help="starts of the shared parameters (vmapped lanes)")
    ap.add_argument("--marginal", default="joint", choices=("joint", "laplace"),
                    help="the shared parameters from the joint MAP or the Laplace marginal (jaxcoh.curves.laplace)")
    ap.add_argument("--scatter", type=float, default=0.0,
                    help="intrinsic scatter of the mock [dex], log-normal in V^2; > 0 also fits sigma_int")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    rows = []
    for n in (int(x) for x in args.galaxies.split(",")):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", CHILD, str(n), args.model, args.dtype, str(args.n_starts),
                            args.marginal, str(args.scatter)],
                           capture_output=True,
                           text=True, env={**os.environ, "JAXCOH_COMPILATION_CACHE": "0"}, check=False)
        if p.returncode != 0:
            print(f"N={n}: failed\n{p.stderr[-3000:]}", file=sys.stderr)
            return 1
        row = json.loads(p.stdout.strip().splitlines()[-1])
        row["process_s"] = time.perf_counter() - t0
        rows.append(row)
        pull = "".join(f", {k} {row[k]:.4e} (pull {row[k + '_pull']:+.2f})" for k in ("g_dagger", "sigma_int")
                       if k + "_pull" in row)
        print(f"N={row['N']:>7} points={row['n_points']:>8} fit {row['fit_wall_s']:8.1f} s "
              f"({1e3 * row['s_per_galaxy']:.2f} ms/galaxy) iterations {row['n_iter']} {row['status']} "
              f"peak RSS {row['peak_rss_gib']:.2f} GiB{pull}", flush=True)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            json.dump({"command": " ".join(sys.argv), "rows": rows,
                       "max_rss_children_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}, f,
                      indent=1)
        os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
