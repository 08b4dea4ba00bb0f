"""The rotation-curve workflow: models of the curves themselves, fitted jointly to every galaxy.

Modules, in the order data flows: :mod:`~jaxcoh.curves.inputs` (what a model sees), :mod:`~jaxcoh.curves.nuisance`
(Upsilon, D, i and their priors), :mod:`~jaxcoh.curves.models` (models and their registry) with the built-in
:mod:`~jaxcoh.curves.baselines` and :mod:`~jaxcoh.curves.unified`, :mod:`~jaxcoh.curves.likelihood` (the likelihood
and priors point by point, :func:`evaluate`), :mod:`~jaxcoh.curves.objective` (the scalar objective, blocked for large
catalogs, :func:`diagnose`), :mod:`~jaxcoh.curves.fitting` (:func:`fit` -> :class:`CurveFit`; with
:mod:`~jaxcoh.curves.laplace`, the shared parameters of the marginal posterior),
:mod:`~jaxcoh.curves.errors`, :mod:`~jaxcoh.curves.tables` and :mod:`~jaxcoh.curves.comparison` (:func:`compare`). The F_missing
workflow, :mod:`jaxcoh.fmissing`, has the same shape.
"""

from . import baselines, unified  # noqa: F401  (their models register themselves)
from .comparison import compare, default_models
from .fitting import CurveSettings, fit, starts
from .halo_catalog import halo_catalog  # noqa: F401  (and the halo models of Li et al. 2020 register themselves)
from .inputs import CurveInputs, curve_inputs
from .likelihood import CurveData, Evaluation, Likelihood, curve_data, evaluate, prepare, residuals
from .models import MODELS, CurveModel, fix_parameters, get_model, list_models, register_model
from .nuisance import NUISANCE, Nuisance
from .objective import diagnose
from .result import CurveFit

__all__ = ["MODELS", "NUISANCE", "CurveData", "CurveFit", "CurveInputs", "CurveModel", "CurveSettings", "Evaluation",
           "Likelihood", "Nuisance", "compare", "curve_data", "curve_inputs", "default_models", "diagnose", "evaluate",
           "fit", "fix_parameters", "get_model", "list_models", "prepare", "register_model", "residuals",
           "starts"]
