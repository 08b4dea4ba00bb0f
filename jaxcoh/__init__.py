"""jaxcoh: a GPU-accelerated, differentiable fitting engine for galaxy coherence gravity kernels.

Data flows one way: files (:mod:`jaxcoh.sparc`, :mod:`jaxcoh.mock`) -> a padded :class:`Catalog` -> kernels
(:mod:`jaxcoh.coherence`, :mod:`jaxcoh.properties`) -> models (:mod:`jaxcoh.models`) -> fits
(:mod:`jaxcoh.fitting`, :mod:`jaxcoh.solvers`) -> the command line (:mod:`jaxcoh.cli`).
"""

from .catalog import Buckets, Catalog, GalaxyNames
from .coherence import Hyperparameters, Reason
from .config import default_dtype, set_precision
from .f_missing import FMissing, derive_f_missing, f_missing_table
from .fitting import CrossValidation, FitResult, cross_validate, fit_data, fit_model
from .mock import MockTruth, mock_catalog
from .models import Model, ModelInputs, get_model, list_models, register_model
from .parameters import Parameter, ParameterSpec
from .properties import GalaxyProperties, galaxy_properties
from .sparc import SparcDataWarning, SparcFormatError, load_sparc, read_sparc

__version__ = "0.1.0"
