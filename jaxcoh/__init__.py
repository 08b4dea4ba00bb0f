"""jaxcoh: a GPU-accelerated, differentiable fitting engine for galaxy coherence gravity kernels.

Layers, each importing only from those above it in this list (checked by ``tests/test_architecture.py``):

- base: :mod:`~jaxcoh.config` (precision), :mod:`~jaxcoh.constants`, :mod:`~jaxcoh.numerics` (the double-where
  helpers), :mod:`~jaxcoh.parameters` (bounds by bijections), :mod:`~jaxcoh.registry`, :mod:`~jaxcoh.results`
  (atomic files, provenance), :mod:`~jaxcoh.resumable`, :mod:`~jaxcoh.tracecache`;
- data: :mod:`~jaxcoh.catalog` (the padded pytree), :mod:`~jaxcoh.sparc` (the raw files),
  :mod:`~jaxcoh.galaxy_tables` (a user's galaxies as CSV tables), :mod:`~jaxcoh.selection` (cuts),
  :mod:`~jaxcoh.sharding`;
- kernels: :mod:`~jaxcoh.coherence`, :mod:`~jaxcoh.properties`, :mod:`~jaxcoh.halo_profiles`,
  :mod:`~jaxcoh.metrics`, :mod:`jaxcoh.fmissing.derivation`;
- two sibling workflows with the same verbs (``register_model``, ``fit``, ``evaluate``, ``diagnose``, ``starts``,
  a settings object and a result type with the same core fields, :class:`~jaxcoh.fitresult.FitResult`):
  :mod:`jaxcoh.fmissing` (models of the derived ratio F_missing) and :mod:`jaxcoh.curves` (models of the rotation
  curves themselves, fitted jointly with per-galaxy and nuisance parameters: the baselines, the coherence kernel, the
  halos of Li et al. 2020 in :mod:`jaxcoh.curves.halos`); models -> objective -> fit within each;
- solvers: :mod:`jaxcoh.solvers` (Levenberg-Marquardt, block-arrowhead LM, L-BFGS, Adam) and
  :mod:`~jaxcoh.uncertainty` (Hessian errors), used by both workflows' fits;
- :mod:`~jaxcoh.mock` (catalogs generated from a known truth);
- sweeps and sampling: :mod:`jaxcoh.fmissing.sweeps`, :mod:`jaxcoh.curves.comparison`, the halo catalogue of Li et al.
  (:mod:`jaxcoh.curves.halo_catalog`), posteriors by NUTS (:mod:`jaxcoh.sampling`, blackjax and ArviZ;
  :mod:`jaxcoh.curves.sampling`), calibrated by simulation (:mod:`jaxcoh.curves.calibration`);
- the command line, :mod:`jaxcoh.cli`, :mod:`jaxcoh.plots` (matplotlib, optional) and the benchmarks,
  :mod:`jaxcoh.bench`.
"""

from . import curves, fmissing
from .catalog import Catalog, GalaxyNames
from .coherence import Hyperparameters, Reason
from .config import default_dtype, set_precision
from .fitresult import FitResult
from .fmissing import FMissing, derive_f_missing, f_missing_table
from .galaxy_tables import TableFormatError, read_galaxy_tables, write_galaxy_tables
from .mock import MockTruth, mock_catalog
from .parameters import Parameter, ParameterSpec
from .properties import GalaxyProperties, galaxy_properties
from .selection import apply_cuts
from .sparc import SparcDataWarning, SparcFormatError, load_sparc, read_sparc
from .version import __version__

__all__ = ["Catalog", "FMissing", "FitResult", "GalaxyNames", "GalaxyProperties", "Hyperparameters", "MockTruth",
           "Parameter", "ParameterSpec", "Reason", "SparcDataWarning", "SparcFormatError", "TableFormatError",
           "__version__", "apply_cuts", "curves", "default_dtype", "derive_f_missing", "f_missing_table", "fmissing",
           "galaxy_properties", "load_sparc", "mock_catalog", "read_galaxy_tables", "read_sparc", "set_precision",
           "write_galaxy_tables"]
