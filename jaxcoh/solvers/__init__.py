"""Solvers over unconstrained parameter pytrees, all jittable and vmappable, all returning :class:`SolverResult`.

Chosen by the problem's structure: small least-squares problems (the F_missing models, bootstrap replicates,
hyperparameter grids) want Levenberg-Marquardt; large problems with priors (joint fits with per-galaxy nuisance
parameters) want the block-arrowhead LM while their residuals are few enough to linearise, optax's L-BFGS beyond,
with Adam and a decaying schedule as the robust fallback.
"""

from .adam import adam
from .common import SolverOptions, SolverResult, Status
from .dispatch import SOLVERS, solve
from .lbfgs import lbfgs
from .levenberg_marquardt import block_levenberg_marquardt, levenberg_marquardt

__all__ = ["SOLVERS", "SolverOptions", "SolverResult", "Status", "adam", "block_levenberg_marquardt", "lbfgs", "levenberg_marquardt", "solve"]
