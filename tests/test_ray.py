"""FER_EXECUTOR=ray: a cell's seeds as Ray tasks on a local two-node cluster give the
very results the local executor gives, also when a worker is killed mid-seed; a task's
own error fails the caller with that error."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from needs import PIP, needs

try:
    import ray
except ImportError:
    ray = None
pytestmark = needs(ray is not None, f"needs the Python package ray ({PIP})")

from fer.train.executor import Executor, run_tasks  # noqa: E402
from fer.train.grid import cell_spec, run_cell  # noqa: E402
from tests.test_grid import _tiny_params  # noqa: E402

SEEDS = 4                  # the cell: 4 seeds over 2 one-CPU worker nodes
VOLATILE = ("epoch_seconds", "resumed")          # wall times and provenance, not results


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    spec = cell_spec(_tiny_params(tmp, seeds=SEEDS), "vgg16", "TINY")
    return tmp, spec


@pytest.fixture(scope="module")
def reference(tiny):
    tmp, spec = tiny
    return run_cell(spec, tmp / "build/datasets", tmp / "cache_local")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):                            # two worker nodes, one seed each at a time
        c.add_node(num_cpus=1)
    os.environ["RAY_ADDRESS"] = c.address
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        del os.environ["RAY_ADDRESS"]


def _results(cell):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in cell["per_seed"]]


def _weights(path):
    import keras
    return keras.models.load_model(path).get_weights()


def _same_cell(cell, reference):
    assert [r["seed"] for r in cell["per_seed"]] == list(range(SEEDS))
    assert json.dumps(_results(cell)) == json.dumps(_results(reference))
    assert cell["summary"] == reference["summary"]
    assert cell["selected_seed"] == reference["selected_seed"]
    for a, b in zip(_weights(cell["selected_model"]), _weights(reference["selected_model"])):
        assert np.array_equal(a, b)


def test_seeds_on_a_two_node_ray_cluster_are_bit_identical_to_local(tiny, reference, cluster):
    tmp, spec = tiny
    runner = Executor("ray", ray_cpus_per_seed=1, ray_gpus_per_seed=1, ray_max_retries=2)
    cell = run_cell(spec, tmp / "build/datasets", tmp / "cache_ray", runner=runner)
    _same_cell(cell, reference)
    # the work was spread over both worker nodes (the head has no CPU for tasks)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")}
    assert len(nodes) == 2


KILL_AFTER_S = 0.5     # a warm worker's tiny seed takes a second or two on a fast CPU


def _kill_one_worker_mid_seed(killed: list, stop: threading.Event):
    """SIGKILL the first process running a train_seed task, KILL_AFTER_S into that
    task (a worker that went idle and took another task counts from the new one)."""
    started = {}
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if not cmd.startswith(b"ray::train_seed"):
                started.pop(pid, None)
                continue
            started.setdefault(pid, time.monotonic())
            if time.monotonic() - started[pid] > KILL_AFTER_S:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


def test_a_worker_killed_mid_seed_is_retried_with_identical_results(tiny, reference,
                                                                     cluster):
    tmp, spec = tiny
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_one_worker_mid_seed, args=(killed, stop))
    killer.start()
    # data through a shared directory this time instead of the object store
    runner = Executor("ray", ray_cpus_per_seed=1, ray_gpus_per_seed=1, ray_max_retries=2,
                      ray_shared_dir=str(tmp / "shared"))
    try:
        cell = run_cell(spec, tmp / "build/datasets", tmp / "cache_killed", runner=runner)
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1
    _same_cell(cell, reference)
    assert len(list((tmp / "shared/datasets").iterdir())) == 3       # TINY, CK+, JAFFE


def test_a_task_error_fails_the_caller_with_that_error(cluster):
    runner = Executor("ray", ray_cpus_per_seed=1, ray_gpus_per_seed=1, ray_max_retries=2)
    start = time.monotonic()
    with pytest.raises(ValueError, match="invalid literal for int"):
        list(run_tasks(runner, int, (), [("7",), ("seven",)]))
    assert time.monotonic() - start < 30                 # an error, not a hang or retries
    assert list(run_tasks(runner, int, (), [("7",), ("8",)])) == [7, 8]


def test_ksearch_k_values_as_ray_tasks_match_local(tiny, cluster, monkeypatch):
    import yaml
    from stages import ksearch
    tmp, _ = tiny
    monkeypatch.chdir(tmp)
    params = yaml.safe_load((tmp / "params.yaml").read_text())
    params["model"]["name"] = "vgg16"
    params["ksearch"].update(train_set="TINY", max_images=None, k_values={"vgg16": [1, 5]})
    out = {}
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    for kind in ("local", "ray"):
        monkeypatch.setenv("FER_EXECUTOR", kind)          # an execution setting
        ksearch.main()
        out[kind] = (tmp / "metrics/ksearch.json").read_text()
    assert json.loads(out["ray"])["sweep"][1]["k"] == 5
    assert out["ray"] == out["local"]


def test_whole_grid_at_once_then_the_cell_only_assembles(tiny, reference, cluster,
                                                         monkeypatch):
    """fer.train.fill_grid trains every pending (cell, seed) on the cluster into the resume
    caches; the cell run afterwards trains nothing and equals a serial local run."""
    import yaml
    from fer.train import fill_grid
    import fer.train.grid
    tmp, spec = tiny
    monkeypatch.chdir(tmp)
    params = yaml.safe_load((tmp / "params.yaml").read_text())
    params["grid"].update(models=["vgg16"], train_sets=["TINY"])
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    for var, value in (("FER_EXECUTOR", "ray"), ("FER_RAY_CPUS_PER_SEED", "1"),
                       ("FER_RAY_GPUS_PER_SEED", "1"), ("FER_RAY_MAX_RETRIES", "2")):
        monkeypatch.setenv(var, value)
    assert fill_grid.main([]) == 0
    assert sorted(p.name for p in (tmp / ".cache/finetune/vgg16-TINY").glob("seed_*.json")) \
        == [f"seed_{s}.json" for s in range(SEEDS)]

    def no_training(*a, **kw):
        raise AssertionError("trained although every seed was cached")

    monkeypatch.setattr(fer.train.grid, "train_two_step", no_training)
    resumed = []                     # the cell's outputs do not say (an uninterrupted
    cell = run_cell(spec, tmp / "build/datasets", tmp / ".cache/finetune/vgg16-TINY",
                    on_seed=lambda r: resumed.append(r["resumed"]))    # run writes the same)
    assert resumed == [True] * SEEDS
    _same_cell(cell, reference)


def test_bad_executor_settings_name_the_key(monkeypatch):
    from fer.train.executor import configured
    from fer.train.fill_grid import pending_groups
    from fer.core.settings import SettingsError
    monkeypatch.setenv("FER_EXECUTOR", "dask")
    with pytest.raises(SettingsError, match=r"FER_EXECUTOR = 'dask': expected one of local"):
        configured()
    monkeypatch.delenv("FER_EXECUTOR")
    assert configured() == Executor()                                # unset: local
    grid = {"grid": {"models": ["vgg16"], "train_sets": ["KDEF_Q"], "test_sets": ["CK+"]}}
    with pytest.raises(ValueError, match=r"cells \['vgg16-KDEF_OL'\] are not in the grid"):
        pending_groups(grid, ["vgg16-KDEF_OL"])
