"""jaxcoh's version (one place: results, provenance and resumable keys read it here)."""

__version__ = "0.1.0"
