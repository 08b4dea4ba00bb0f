"""How much the Laplace term's own curvature would change the Laplace marginal's standard errors.

    python scripts/laplace_curvature.py --galaxies 2000 --model rar [--intrinsic-scatter 0.05]

A Laplace fit (:mod:`jaxcoh.curves.laplace`) reports the shared parameters' errors from ``S``, the curvature of the
joint objective's profile, without that of the log-determinant term ``D`` (its exact curvature would need fourth
derivatives). This script measures what that leaves out: it fits a mock with a known truth (``--model``'s curves,
nuisance drawn from the priors) by the Laplace marginal, then takes the Hessian of the whole profile ``P = h + D`` by
central differences of its gradient ``dP/dt``, every galaxy re-solved at ``t +- eps * stderr`` for each free shared
parameter (2 k extra solves: a check, not something every fit should pay), and prints both sets of errors (in the
fit's unconstrained coordinates) and their ratio, for two steps ``eps`` (agreement between them shows the
differences are not dominated by rounding or by the profile's third derivatives).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import jaxcoh
from jaxcoh import curves
from jaxcoh.curves import CurveSettings, Likelihood
from jaxcoh.curves import fitting
from jaxcoh.curves import laplace as lp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=2000)
    ap.add_argument("--model", default="rar", help="the mock's curves and the fitted model")
    ap.add_argument("--intrinsic-scatter", type=float, default=None, metavar="DEX",
                    help="mock scatter of V^2 in dex, and a fitted sigma_int")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)
    jaxcoh.set_precision("float64")

    captured = {}
    profile = fitting.laplace_profile

    def keep(model, opts, options, z, data):  # the fit's own Laplace solution and inputs, kept for the check
        out = profile(model, opts, options, z, data)
        captured.update(model=model, opts=opts, options=options, z=out[0], data=data)
        return out

    fitting.laplace_profile = keep
    cat = jaxcoh.mock_catalog(args.galaxies, seed=args.seed, n_max=24, min_points=6, kernel=args.model,
                              scatter_dex=args.intrinsic_scatter or 0.0)
    t0 = time.perf_counter()
    fit = curves.fit(args.model, cat, CurveSettings(
        marginal="laplace", galaxy_starts=2,
        likelihood=Likelihood(intrinsic_scatter=args.intrinsic_scatter is not None)))
    print(f"{args.model} on {args.galaxies} mock galaxies: Laplace fit in {time.perf_counter() - t0:.1f} s, "
          f"{fit.laplace.iterations} Newton steps, converged {fit.laplace.converged}")
    model, opts, options, z, data = (captured[k] for k in ("model", "opts", "options", "z", "data"))
    z, data, block = lp.in_blocks(model, opts, z, data)
    _, _, S, W, _, free = lp.profile_pieces(model, opts, z, data, block)
    free = np.asarray(free)
    stderr_S = lp.newton_direction(np.zeros(len(model.shared)), np.asarray(S, np.float64), free)[1]

    def gradient_at(step: np.ndarray) -> np.ndarray:  # dP/dt with every galaxy at its conditional mode at t + step
        z_t = lp.conditional_modes(model, opts, options, z, W, step, data)
        return np.asarray(lp.profile_pieces(model, opts, z_t, data, block)[1], np.float64)

    f = np.flatnonzero(free)
    print(f"{'parameter':<12}{'S stderr':>11}" + "".join(f"{f'eps {e}':>11}{'ratio':>8}" for e in (0.3, 0.1)))
    rows = {model.shared.names[i]: [stderr_S[i]] for i in f}
    for eps in (0.3, 0.1):
        H = np.zeros((len(f), len(f)))
        for j, i in enumerate(f):
            d = np.zeros(len(model.shared))
            d[i] = eps * stderr_S[i]
            H[:, j] = (gradient_at(d) - gradient_at(-d))[f] / (2 * d[i])
        stderr_P = np.sqrt(np.diag(np.linalg.pinv(0.5 * (H + H.T))))
        for j, i in enumerate(f):
            rows[model.shared.names[i]] += [stderr_P[j], stderr_P[j] / stderr_S[i]]
    for name, r in rows.items():
        print(f"{name:<12}{r[0]:>11.4g}" + "".join(f"{r[k]:>11.4g}{r[k + 1]:>8.4f}" for k in (1, 3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
