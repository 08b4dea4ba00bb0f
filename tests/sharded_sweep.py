"""Run by tests/test_sharding.py in fresh processes (device count and distributed runtime are fixed at start-up).

    python tests/sharded_sweep.py                               # one process: a catalog sharded over its devices
    python tests/sharded_sweep.py OUT.csv PORT PROCESS_ID N     # one of N processes (gloo collectives, localhost)

One process prints how :func:`~jaxcoh.sharding.shard_catalog` pads and splits a catalog, and the joint objective and
gradient on a catalog sharded over galaxies. One of N processes writes (process 0) the bootstrap and grid tables of a
small mock, their batch axes split over every device of every process. The test compares both with its own
single-device answers.
"""

import json
import sys

import jax

if __name__ == "__main__" and len(sys.argv) > 2:  # before any computation initialises the backend
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{sys.argv[2]}", num_processes=int(sys.argv[4]),
                               process_id=int(sys.argv[3]))
jax.config.update("jax_enable_x64", True)

import jaxcoh  # noqa: E402
from jaxcoh.sharding import shard_catalog  # noqa: E402

CASE = dict(n=24, seed=2, n_max=12)


def bootstrap_case():
    """:func:`jaxcoh.fmissing.sweeps.bootstrap` whole: the full-sample fit, then both phases of the replicates, with the
    replicate axis split over the devices."""
    from jaxcoh.fmissing import FitSettings
    from jaxcoh.fmissing.sweeps import bootstrap
    from jaxcoh.solvers import SolverOptions

    cat = jaxcoh.mock_catalog(CASE["n"], seed=CASE["seed"], n_max=CASE["n_max"])
    fm = jaxcoh.derive_f_missing(jaxcoh.Hyperparameters(), cat, "sparc")
    return bootstrap("mass_coherence", fm, n_boot=8, settings=FitSettings(n_starts=1, options=SolverOptions(max_iter=40)))


def grid_case():
    """:func:`jaxcoh.fmissing.sweeps.hyperparameter_grid` whole: the grid's derivations, the multi-start first phase and the
    continued rows, with the grid axis split over the devices."""
    import numpy as np

    from jaxcoh.fmissing import FitSettings
    from jaxcoh.fmissing.sweeps import hyperparameter_grid
    from jaxcoh.solvers import SolverOptions

    cat = jaxcoh.mock_catalog(CASE["n"], seed=CASE["seed"], n_max=CASE["n_max"])
    table, _ = hyperparameter_grid("mass_coherence", cat, {"ell0": np.array([3.0, 6.0]), "A0": np.array([0.6, 1.2])},
                                   recipe="sparc", settings=FitSettings(n_starts=2, options=SolverOptions(max_iter=40)))
    return table


def joint_case(cat):
    from jaxcoh.curves import Likelihood, curve_data, get_model, starts
    from jaxcoh.curves.objective import objective

    model, opts = get_model("rar"), Likelihood()
    data = curve_data(cat)
    z = jax.tree_util.tree_map(lambda a: a[0] * 1.05, starts(model, data, opts, 1, 0))
    value, grad = jax.jit(jax.value_and_grad(objective), static_argnums=(1, 3))(z, model, data, opts)
    return float(value), float(grad["shared"]["g_dagger"])


if __name__ == "__main__":
    if jax.process_count() == 1:
        padded = shard_catalog(jaxcoh.mock_catalog(5, seed=1, n_max=8))
        cat = shard_catalog(jaxcoh.mock_catalog(CASE["n"], seed=CASE["seed"], n_max=CASE["n_max"]))
        print(json.dumps({"devices": jax.device_count(), "n_galaxies": padded.n_galaxies,
                          "n_points": padded.n_points, "real": [bool(m) for m in padded.mask.any(axis=1)],
                          "shards": len(padded.R.addressable_shards), "catalog_sharding": str(cat.R.sharding),
                          "joint": joint_case(cat)}))
    else:
        table, _ = bootstrap_case()
        grid = grid_case()
        if jax.process_index() == 0:
            table.to_csv(sys.argv[1], index=False)
            grid.to_csv(sys.argv[1] + ".grid.csv", index=False)
            print(json.dumps({"devices": jax.device_count(), "processes": jax.process_count(),
                              "local_devices": jax.local_device_count()}))
