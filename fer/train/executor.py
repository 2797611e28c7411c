"""Where independent trainings run: here one after another (`local`) or as Ray tasks
(`ray`), per the execution setting FER_EXECUTOR (results are identical either way). The
caller stays the only writer of outputs, caches and MLflow runs; a task only computes.

Under Ray (docs/scale-out.md): a local instance, or the cluster at `RAY_ADDRESS`; each task
asks FER_RAY_CPUS_PER_SEED / FER_RAY_GPUS_PER_SEED (no GPU where the cluster has none);
`fer` travels as a `py_modules` package, datasets through the object store or written once
under FER_RAY_SHARED_DIR, which every worker must see; a task whose worker dies is retried
FER_RAY_MAX_RETRIES times, one that raises fails the stage with its own error.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.core import settings
from fer.core.keys import content_key
from fer.data.dataset import Dataset, load_dataset, save_dataset

WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}      # with settings.worker_env()


# where the work runs is the execution settings themselves (fer.core.settings)
Executor = settings.Settings


def configured() -> Executor:
    """The executor the execution settings name (environment or local.yaml)."""
    return settings.load()


def run_tasks(executor: Executor, fn, shared: tuple, tasks: list, portable=None):
    """Yield `fn(*shared, *task)` for each task, in task order (`run_groups` of one group)."""
    finished, following = {}, 0
    with contextlib.closing(run_groups(executor, fn, [(shared, tasks)], portable)) as results:
        for _, i, result in results:
            finished[i] = result
            while following in finished:
                yield finished.pop(following)
                following += 1


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
    """What a Ray worker runs: shared datasets loaded, the result made portable."""
    result = fn(*[_resolve(a) for a in args])
    return portable(result) if portable else result


def run_groups(executor: Executor, fn, groups: list, portable=None):
    """Yield (group index, task index, result) for every task of every group
    [(shared, tasks)] -- e.g. every pending seed of every grid cell. Local: one after
    another; Ray: all submitted at once (each group's shared values put once), yielded as
    they finish, and `portable(result)` (if given) run on the worker to make the result
    cross processes (e.g. a Keras model into file bytes)."""
    if executor.executor == "local":
        for g, (shared, tasks) in enumerate(groups):
            for i, task in enumerate(tasks):
                yield g, i, fn(*shared, *task)
        return
    if not any(tasks for _, tasks in groups):
        return
    ray = connect()
    gpus = executor.ray_gpus_per_seed if ray.cluster_resources().get("GPU", 0) else 0
    remote = ray.remote(_ray_call).options(
        name=getattr(fn, "__name__", "task"), num_cpus=executor.ray_cpus_per_seed, num_gpus=gpus,
        max_retries=executor.ray_max_retries, retry_exceptions=False)
    where, put = {}, {}                  # a value shared by several groups is put once
    for g, (shared, tasks) in enumerate(groups):
        refs_shared = [put.get(id(a)) or put.setdefault(
            id(a), ray.put(_share(a, executor.ray_shared_dir))) for a in shared]
        for i, task in enumerate(tasks):
            where[remote.remote(fn, portable, *refs_shared, *task)] = (g, i)
    pending = list(where)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield (*where[ready[0]], _get(ray, ready[0]))
    finally:                                          # driver stopped: stop what is left
        for ref in pending:
            ray.cancel(ref, force=True)


def _get(ray, ref):
    """The task's result; its own exception (not a Ray wrapper) if it raised."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, BaseException):
            raise e.cause from None
        raise


# ---------------------------------------------------------------- data to workers

@dataclass(frozen=True)
class SharedDataset:
    """A dataset directory under FER_RAY_SHARED_DIR, named by its content."""
    path: str


def _share(obj, shared_dir):
    """What goes to the workers for `obj`: Datasets in memory (object store) or written
    once under `shared_dir`; other values as they are."""
    if isinstance(obj, dict):
        return {k: _share(v, shared_dir) for k, v in obj.items()}
    if not isinstance(obj, Dataset):
        return obj
    if not shared_dir:
        return Dataset(np.ascontiguousarray(obj.images), obj.manifest)
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

