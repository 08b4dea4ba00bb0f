"""Benchmarks of jaxcoh: the plain numpy/scipy baselines ("before") that jaxcoh's kernels and fits are timed against."""
