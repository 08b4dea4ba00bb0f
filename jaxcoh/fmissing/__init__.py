"""The F_missing workflow: the seed's derived ratio per galaxy, and models of it from galaxy properties.

Modules, in the order data flows: :mod:`~jaxcoh.fmissing.derivation` (F_missing from the raw curves, one jitted
call), :mod:`~jaxcoh.fmissing.models` (models and their registry), :mod:`~jaxcoh.fmissing.objective` (the least
squares, :func:`evaluate`, :func:`diagnose`), :mod:`~jaxcoh.fmissing.fitting` (:func:`fit` -> :class:`FMissingFit`),
:mod:`~jaxcoh.fmissing.crossval`, :mod:`~jaxcoh.fmissing.sweeps` (bootstrap, grids, profiles, multi-start) and
:mod:`~jaxcoh.fmissing.reproduce` (the seed's table). The rotation-curve workflow, :mod:`jaxcoh.curves`, has the same
shape.
"""

from .crossval import CrossValidation, cross_validate
from .derivation import FMissing, derive_f_missing, f_missing_table
from .fitting import FitSettings, FMissingFit, fit, starts
from .models import MODELS, Model, ModelInputs, get_model, list_models, register_model
from .objective import FitData, diagnose, evaluate, fit_data

__all__ = ["MODELS", "CrossValidation", "FMissing", "FMissingFit", "FitData", "FitSettings", "Model", "ModelInputs",
           "cross_validate", "derive_f_missing", "diagnose", "evaluate", "f_missing_table", "fit", "fit_data",
           "get_model", "list_models", "register_model", "starts"]
