"""Plain numpy + scipy baselines, written the way the seed's scripts work (a Python loop over galaxies, scipy
differential evolution per fit, scipy ``least_squares`` with finite differences).

They import nothing from jaxcoh: they are the independent "before" code, and the tests check that they compute the
same numbers as jaxcoh. No timing code lives here; the harness times these functions.

- :mod:`.seed_pipeline` (B1): load SPARC, derive F_missing, fit the seed's four models; the seed's table.
- :mod:`.bootstrap` (B2): bootstrap of the mass-coherence fit, one differential evolution per replicate.
- :mod:`.grid` (B3): re-derive and refit over a grid of derivation hyperparameters.
- :mod:`.kernel` (B4): the unified multiplicative kernel's chi^2 loss on the rotation curves.
- :mod:`.joint_map` (B5): a joint MAP fit of the RAR with per-galaxy nuisance parameters by finite differences.
"""
