"""jaxcoh: a GPU-accelerated, differentiable fitting engine for galaxy coherence gravity kernels."""

from .catalog import Buckets, Catalog, GalaxyNames
from .config import default_dtype, set_precision

__version__ = "0.1.0"
