"""Benchmarks of jaxcoh beside plain numpy/scipy baselines ("before" code, :mod:`.baselines`), run by
``jaxcoh bench`` (:mod:`.suite`); part of the installed package, so that an installed jaxcoh can measure itself."""

# The benchmarks ``jaxcoh bench --only`` accepts (here, not in .suite, so that checking a flag imports nothing heavy).
BENCHMARKS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")
