"""What a rotation-curve fit returns: :class:`CurveFit`, the core fields of every fit plus the per-galaxy values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..fitresult import FitResult
from .convergence import Convergence
from .galaxy_starts import GalaxyStarts
from .laplace import Laplace
from .likelihood import Evaluation, Likelihood


@dataclasses.dataclass(kw_only=True)
class CurveFit(FitResult):
    """One curve model fitted jointly: shared parameters with errors (``params``, ``stderr``), every galaxy's own and
    nuisance values (``[g]`` arrays) with their marginal errors, and the fit statistics (``metrics``: chi2, dof,
    chi2_nu, aic, bic, n_params, objective, rar_scatter_dex)."""

    local: dict[str, np.ndarray]  # per-galaxy model parameters [g]
    nuisance: dict[str, np.ndarray]  # [g]; the table values when nuisance is off
    per_galaxy_stderr: dict[str, np.ndarray]  # [g] marginal errors of the per-galaxy and nuisance values
    objective: float  # negative log posterior at the fit (up to a constant)
    chi2: float
    n_points: int
    n_galaxies: int
    n_params: int  # fitted parameters that touch the data (shared, then per galaxy)
    per_galaxy_chi2: np.ndarray
    per_galaxy_rms: np.ndarray  # km/s
    per_galaxy_points: np.ndarray
    rar_scatter_dex: float
    likelihood: Likelihood
    description: str = ""
    evaluation: Evaluation | None = None  # the model on every point at the fit (numpy arrays)
    convergence: Convergence | None = None  # the stationarity test behind `status`
    galaxy_starts: GalaxyStarts | None = None  # what several starts per galaxy found
    laplace: Laplace | None = None  # the Laplace marginal's Newton steps (None: the joint MAP)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.metrics = {**self.statistics(), "objective": self.objective, "rar_scatter_dex": self.rar_scatter_dex}

    @property
    def dof(self) -> int:
        return self.n_points - self.n_params

    def to_dict(self) -> dict:
        return {**super().to_dict(), "convergence": self.convergence.to_dict() if self.convergence else None,
                "galaxy_starts": self.galaxy_starts.to_dict() if self.galaxy_starts else None,
                "laplace": self.laplace.to_dict() if self.laplace else None}

    def statistics(self) -> dict:
        """chi^2, dof, chi^2/nu, AIC, BIC (k counts every fitted parameter that touches the data, nuisance
        included)."""
        k, n = self.n_params, self.n_points
        return {"chi2": self.chi2, "dof": self.dof, "chi2_nu": self.chi2 / max(self.dof, 1),
                "aic": self.chi2 + 2 * k, "bic": self.chi2 + k * math.log(n), "n_params": k}
