"""Where independent trainings run: in this process one after another (`local`, the
default) or as Ray tasks on this machine or a cluster (`ray`): the execution setting
FER_EXECUTOR (fer.core.settings: environment or local.yaml, never a tracked param, since
results are identical either way).

`run_tasks(executor, fn, shared, tasks)` yields `fn(*shared, *task)` for every task, in
task order, whichever executor runs them. The caller (the stage process, the driver)
stays the only writer of outputs, caches and MLflow runs: a Ray task only computes and
returns its result.

Under Ray:
- with no `RAY_ADDRESS` a local Ray instance is started on this machine (all its CPUs and
  GPUs); with `RAY_ADDRESS=<head>:6379` the tasks go to that cluster;
- every task declares FER_RAY_CPUS_PER_SEED / FER_RAY_GPUS_PER_SEED (one GPU per seed by
  default; 0 when the cluster has no GPU), and TensorFlow's GPU memory growth is on, so
  processes can share a GPU when you ask for fractions;
- the `fer` package travels as a Ray `py_modules` package, the data in `shared` through
  Ray's object store, or, with FER_RAY_SHARED_DIR set, as dataset directories written
  once (content-addressed) under that path, which every worker must see;
  nothing assumes the driver's working directory exists on a worker;
- a task whose worker dies (killed, node lost) is retried FER_RAY_MAX_RETRIES times;
  a task that raises (bad configuration, out of memory) fails the stage with that error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.core import settings
from fer.core.keys import content_key
from fer.data.dataset import Dataset, load_dataset, save_dataset

# GPU memory growth on by default (read when TensorFlow first touches a GPU), so two
# processes can share one GPU; set TF_FORCE_GPU_ALLOW_GROWTH=false to reserve it all
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


# where the work runs is the execution settings themselves (fer.core.settings)
Executor = settings.Settings


def configured() -> Executor:
    """The executor the execution settings name (environment or local.yaml)."""
    return settings.load()


def run_tasks(executor: Executor, fn, shared: tuple, tasks: list, portable=None):
    """Yield `fn(*shared, *task)` for each task, in order. Under Ray every task is
    submitted at once and `portable(result)` (if given) runs on the worker to turn the
    result into something that crosses processes (e.g. a Keras model into file bytes)."""
    if executor.executor == "local":
        for task in tasks:
            yield fn(*shared, *task)
        return
    yield from _run_ray(executor, fn, shared, tasks, portable)


# ---------------------------------------------------------------- Ray

def connect():
    """Ray, initialised: the cluster at RAY_ADDRESS, else a fresh local instance."""
    import ray
    if not ray.is_initialized():
        for k, v in WORKER_ENV.items():            # what a locally started Ray inherits
            os.environ.setdefault(k, v)
        # "local": a fresh instance even if `ray start` runs here (RAY_ADDRESS=auto for that)
        ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False,
                 logging_level="WARNING", log_to_driver=False,
                 runtime_env={"py_modules": [str(Path(__file__).resolve().parents[1])],
                              "env_vars": {**WORKER_ENV, **settings.worker_env()}})
    return ray


def _ray_call(fn, portable, *args):
    """What a Ray worker runs: datasets from the shared path loaded, the result made
    portable."""
    result = fn(*[_resolve(a) for a in args])
    return portable(result) if portable else result


def _submit(executor: Executor, fn, groups, portable):
    """Ray, and the ObjectRefs of every task of every group [(shared, tasks)]: each
    group's shared values put once into the object store (or the shared directory)."""
    ray = connect()
    gpus = executor.ray_gpus_per_seed if ray.cluster_resources().get("GPU", 0) else 0
    remote = ray.remote(_ray_call).options(
        name=getattr(fn, "__name__", "task"), num_cpus=executor.ray_cpus_per_seed, num_gpus=gpus,
        max_retries=executor.ray_max_retries, retry_exceptions=False)
    refs, put = [], {}                  # a value shared by several groups is put once
    for shared, tasks in groups:
        refs_shared = [put.get(id(a)) or put.setdefault(
            id(a), ray.put(_share(a, executor.ray_shared_dir))) for a in shared]
        refs.append([remote.remote(fn, portable, *refs_shared, *task) for task in tasks])
    return ray, refs


def _run_ray(executor: Executor, fn, shared: tuple, tasks: list, portable):
    if not tasks:
        return
    ray, (refs,) = _submit(executor, fn, [(shared, tasks)], portable)
    done = 0
    try:
        for ref in refs:
            yield _get(ray, ref)
            done += 1
    finally:                                          # driver stopped: stop what is left
        for ref in refs[done:]:
            ray.cancel(ref, force=True)


def run_groups(executor: Executor, fn, groups: list, portable=None):
    """Yield (group index, task index, result) for every task of every group
    [(shared, tasks)] -- e.g. every pending seed of every grid cell. Local: one after
    another; Ray: all submitted at once, yielded as they finish."""
    if executor.executor == "local":
        for g, (shared, tasks) in enumerate(groups):
            for i, task in enumerate(tasks):
                yield g, i, fn(*shared, *task)
        return
    if not any(tasks for _, tasks in groups):
        return
    ray, refs = _submit(executor, fn, groups, portable)
    where = {ref: (g, i) for g, rs in enumerate(refs) for i, ref in enumerate(rs)}
    pending = list(where)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield (*where[ready[0]], _get(ray, ready[0]))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _get(ray, ref):
    """The task's result; its own exception (not a Ray wrapper) if it raised."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(e.cause, BaseException) else None
        if cause is not None:
            raise cause from None
        raise


# ---------------------------------------------------------------- data to workers

@dataclass(frozen=True)
class SharedDataset:
    """A dataset directory under FER_RAY_SHARED_DIR, named by its content."""
    path: str


def _plain(ds: Dataset) -> Dataset:
    return Dataset(np.ascontiguousarray(ds.images), ds.manifest)


def _share(obj, shared_dir):
    """What goes to the workers for `obj`: Datasets in memory (object store) or written
    once under `shared_dir`; other values as they are."""
    if isinstance(obj, dict):
        return {k: _share(v, shared_dir) for k, v in obj.items()}
    if not isinstance(obj, Dataset):
        return obj
    if not shared_dir:
        return _plain(obj)
    return SharedDataset(str(publish(obj, shared_dir)))


def publish(ds: Dataset, shared_dir) -> Path:
    """`ds` as a dataset directory `<shared_dir>/datasets/<sha256 of its content>`,
    written (atomically) only if absent."""
    path = Path(shared_dir) / "datasets" / content_key(ds.images, ds.manifest.to_csv(index=False))
    if not (path / "manifest.csv").is_file():
        save_dataset(path, ds.images, ds.manifest.drop(columns=["label_id"], errors="ignore"))
    return path


def _resolve(obj):
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, SharedDataset):
        return load_dataset(obj.path)
    return obj


# ---------------------------------------------------------------- models across processes

def model_bytes(model) -> bytes:
    """A Keras model as the bytes of its .keras file (what a worker returns)."""
    from fer.train.keras_io import keras_bytes
    return keras_bytes(model)
