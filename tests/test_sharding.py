"""The same computations on 1 device, on 4 (forced host devices) in one process, and on 4 across 2 processes
(jax.distributed, gloo): a joint objective on a catalog sharded over galaxies, and sweeps whose batch axis is split
over every device of every process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from conftest import SUITE_XLA_FLAGS
from jaxcoh.sharding import shard_catalog

sys.path.insert(0, str(Path(__file__).parent))
import sharded_sweep  # noqa: E402

pytestmark = pytest.mark.xdist_group("sharding")  # one worker: its tests share the single-device reference

SCRIPT = Path(__file__).parent / "sharded_sweep.py"
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def reference():
    """The single-device answers, in this process, on the CPU like the subprocesses they are compared with."""
    assert jax.device_count() == 1
    import jaxcoh

    with jax.default_device(jax.devices("cpu")[0]):
        table, _ = sharded_sweep.bootstrap_case()
        c = sharded_sweep.CASE
        joint = sharded_sweep.joint_case(jaxcoh.mock_catalog(c["n"], seed=c["seed"], n_max=c["n_max"]))
        return table, joint, sharded_sweep.grid_case()


def _env(**extra):
    """This environment with the suite's XLA_FLAGS instead of any inherited ones, on the CPU (forced host devices and
    gloo collectives are CPU features, also on a machine with a GPU), plus ``extra`` (its XLA_FLAGS appended)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    xla_flags = " ".join(filter(None, [SUITE_XLA_FLAGS, extra.pop("XLA_FLAGS", "")]))
    return {**env, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags, **extra}


def _assert_same_table(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.columns) == list(want.columns)
    assert (got["status"] == want["status"]).all()
    num = want.select_dtypes("number").columns
    np.testing.assert_allclose(got[num].to_numpy(float), want[num].to_numpy(float), rtol=1e-9, atol=0)


def test_four_host_devices_shard_a_catalog_and_match_one(reference):
    """One process with 4 devices: a catalog padded to a multiple of the device count and split over galaxies, and
    the joint objective and gradient on it equal to the single-device ones."""
    import jaxcoh

    cat = jaxcoh.mock_catalog(5, seed=1, n_max=8)
    sharded = shard_catalog(cat)
    assert sharded.n_galaxies == 5 + (-5 % jax.device_count())  # the fewest rows that split evenly
    assert sharded.n_points == cat.n_points
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300,
                          env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    # On 4 devices the 5 galaxies become 8 rows, the 3 added ones empty, split 2 per device.
    assert {k: info[k] for k in ("devices", "n_galaxies", "n_points", "real", "shards")} == {
        "devices": 4, "n_galaxies": 8, "n_points": cat.n_points, "real": [True] * 5 + [False] * 3, "shards": 4}
    assert "galaxies" in info["catalog_sharding"]
    np.testing.assert_allclose(info["joint"], reference[1], rtol=1e-10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_of_two_devices_match_one(tmp_path, reference):
    """The bootstrap and grid sweeps on 2 processes of 2 forced host devices each: the batch axes split over the 4
    devices of both processes, the results gathered back, equal to the single-device tables."""
    out = tmp_path / "two.csv"
    port = str(_free_port())
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), str(out), port, str(i), "2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    info = json.loads(outs[0][0].strip().splitlines()[-1])
    assert info == {"devices": 4, "processes": 2, "local_devices": 2}
    _assert_same_table(pd.read_csv(out), reference[0])
    _assert_same_table(pd.read_csv(f"{out}.grid.csv"), reference[2])
