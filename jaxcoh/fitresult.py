"""What every fit returns, in both workflows: the same core fields, and a JSON form.

:class:`jaxcoh.fmissing.FMissingFit` (a model of F_missing fitted to a sample) and :class:`jaxcoh.curves.CurveFit`
(a rotation-curve model fitted jointly to every curve) extend it with what is particular to them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .results import to_jsonable
from .uncertainty import ErrorAnalysis


@dataclasses.dataclass(kw_only=True)
class FitResult:
    """A fitted model: parameters, their standard errors (NaN where the data cannot determine them), how the solve
    ended (a :class:`jaxcoh.solvers.Status` name), the fit's metrics, and the error analysis behind the errors."""

    model: str
    params: dict[str, float]
    stderr: dict[str, float]
    status: str
    metrics: dict[str, float]
    errors: ErrorAnalysis | None
    n_iter: int
    n_starts: int
    dtype: str
    wall_s: float = math.nan

    @property
    def converged(self) -> bool:
        return self.status == "CONVERGED"

    def to_dict(self) -> dict[str, Any]:
        """The core fields, the metrics flattened in, and the error analysis (degeneracies, derived quantities,
        parameters at bounds)."""
        out = {"model": self.model, "params": self.params, "stderr": self.stderr, "status": self.status,
               "converged": self.converged, **self.metrics, "n_iter": self.n_iter, "n_starts": self.n_starts,
               "dtype": self.dtype}
        if self.errors is not None:
            out.update({k: v for k, v in self.errors.to_dict().items() if k != "stderr"})
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as strict JSON (NaN as null)."""
        return json.dumps(to_jsonable(self.to_dict()), indent=2)
