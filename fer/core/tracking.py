"""MLflow tracking: the SQLite store at <repo>/mlflow.db (or MLFLOW_TRACKING_URI), runs that
survive a kill (dead ones marked KILLED, resumed ones continued), and dataset lineage.
docs/tracking.md says what each run holds.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from fer.core.atomic import pid_alive, proc_stat, write_json
from fer.core.keys import content_key
from fer.core.params import ROOT
from fer.core.schema import HEADLINE


def store_root(root=ROOT) -> Path:
    """The repository that owns the store: queued experiments run in copies under
    <repo>/.dvc/tmp/exps/ and log to <repo>'s."""
    return Path(re.sub(r"/\.dvc/tmp/exps(/.*)?$", "", str(Path(root).resolve())))


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root() / 'mlflow.db'}"


def _sqlite_file(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flat(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@contextlib.contextmanager
def store_lock(uri: str):
    """Exclusive lock on `<db>.lock` beside a SQLite store; none for a tracking server."""
    db = _sqlite_file(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)      # released when f closes
        yield


# MLflow 3's UI opens such an experiment in its model-training view, not the GenAI one
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def open_experiment(experiment: str) -> str:
    """Point MLflow at the store and get or create `experiment` (its id), under the store
    lock: concurrent first users would race to create and migrate the store."""
    import mlflow
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    with store_lock(uri):
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name(experiment)     # opens (and migrates) the store
        if exp is None:
            try:
                # artifacts in mlartifacts/ beside a SQLite store, else beside the repository's
                beside = db.parent if (db := _sqlite_file(uri)) else store_root()
                client.create_experiment(experiment, tags=EXPERIMENT_TAGS,
                                         artifact_location=(beside / "mlartifacts").as_uri())
            except mlflow.exceptions.MlflowException as e:
                # a tracking server has no lock we can take: another client created it
                # between our lookup and our create; theirs is the one to use
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def process_tags() -> dict:
    """hostname, pid and pid_start (its start time: with the pid it names one process,
    even after the pid is reused; empty without /proc)."""
    try:
        start = proc_stat("self")[19]
    except (OSError, IndexError):
        start = ""
    return {"hostname": socket.gethostname(), "pid": str(os.getpid()), "pid_start": start}


def mark_dead_runs_killed(experiment_id: str) -> list[str]:
    """RUNNING runs of `experiment_id` started by a process of this host that no longer
    exists are set to KILLED; returns their ids."""
    import mlflow
    client = mlflow.MlflowClient()
    host = socket.gethostname()
    runs = client.search_runs([experiment_id], filter_string=(
        f"attributes.status = 'RUNNING' and tags.hostname = '{host}'"), max_results=10000)
    dead = [r.info.run_id for r in runs if r.data.tags.get("pid", "").isdigit()
            and not pid_alive(int(r.data.tags["pid"]), r.data.tags.get("pid_start", ""))]
    for run_id in dead:
        client.set_terminated(run_id, "KILLED")
    return dead


def _resumable_run(experiment_id: str, resume_file, resume_key: str) -> str | None:
    """The run id kept in `resume_file`, if it names a live (not deleted) run of this
    experiment recorded for the same `resume_key`."""
    import mlflow
    if resume_file is None:
        return None
    try:
        kept = json.loads(Path(resume_file).read_text())
        run = mlflow.MlflowClient().get_run(kept["run_id"])
    except (OSError, ValueError, KeyError, mlflow.exceptions.MlflowException):
        return None
    if (kept.get("key") != resume_key or run.info.experiment_id != experiment_id
            or run.info.lifecycle_stage != "active"):
        return None
    return run.info.run_id


@contextlib.contextmanager
def mlflow_run(experiment: str, run_name: str, params: dict | None = None,
               tags: dict | None = None, nested: bool = False, resume_file=None,
               resume_key: str = ""):
    """An MLflow run in `experiment`, tagged with the git commit, DVC exp name and process.
    With `resume_file`, the run recorded there for the same `resume_key` (the stage's resume
    state) and `params` is continued, else the new run's id is written there."""
    import mlflow
    exp_id = open_experiment(experiment)
    mark_dead_runs_killed(exp_id)
    all_tags = {"git_commit": git_commit(),
                "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "workspace"),
                **({"dvc_stage": os.environ["DVC_STAGE"]} if "DVC_STAGE" in os.environ else {}),
                **process_tags(), **(tags or {})}
    logged = {k: str(v)[:500] for k, v in flat(params or {}).items()}
    # a run is continued only with the same parameters (MLflow forbids changing them)
    key = content_key(resume_key, logged, length=16)
    run_id = _resumable_run(exp_id, resume_file, key)
    if run_id:
        print(f"MLflow: continuing run {run_id} ({run_name})")
    with mlflow.start_run(run_id=run_id, experiment_id=exp_id,
                          run_name=None if run_id else run_name, nested=nested,
                          tags=all_tags) as run:
        if resume_file is not None and not run_id:
            write_json(resume_file, {"run_id": run.info.run_id, "key": key})
        if logged:     # re-logging identical values on a resumed run is allowed
            mlflow.log_params(logged)
        yield run


def dvc_md5(path) -> str:
    """The md5 `dvc repro` records for `path` in dvc.lock, by DVC's own hashing (with the
    repository's hash cache and .dvcignore; outside a DVC repository, without)."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    from dvc_data.hashfile.build import build
    path = os.path.abspath(path)
    try:
        with Repo(os.path.dirname(path)) as repo:
            return build(repo.cache.local, path, repo.fs, "md5", ignore=repo.dvcignore,
                         dry_run=True)[2].hash_info.value
    except NotDvcRepoError:
        from dvc_data.hashfile.db import HashFileDB
        from dvc_objects.fs.local import LocalFileSystem
        fs = LocalFileSystem()
        return build(HashFileDB(fs, os.path.dirname(path)), path, fs, "md5",
                     dry_run=True)[2].hash_info.value


def set_dataset(path):
    """The set directory `path` as an MLflow dataset: its name, DVC md5 as digest, and the
    rows per class as profile (no data is copied into the store)."""
    import pandas as pd
    from mlflow.entities import Dataset

    labels = pd.read_csv(Path(path) / "manifest.csv", usecols=["label"])["label"]
    counts = labels.value_counts().sort_index()
    profile = {"num_rows": len(labels), "class_counts": {str(k): int(v) for k, v in counts.items()}}
    return Dataset(Path(path).name, dvc_md5(path), "local", json.dumps({"uri": str(path)}),
                   profile=json.dumps(profile))


def log_datasets(**paths) -> None:
    """Log set directories as the active run's inputs in one call, by context:
    `log_datasets(training=[dir], test=[dir, dir])`."""
    import mlflow
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
    mlflow.MlflowClient().log_inputs(mlflow.active_run().info.run_id, datasets=[
        DatasetInput(set_dataset(p), [InputTag(MLFLOW_DATASET_CONTEXT, context)])
        for context, ps in paths.items() for p in ps])


def metric_logger(run_id: str):
    """`log(metrics, step)` for run `run_id` that skips (metric, step) pairs already logged
    (before a kill, on a resumed run)."""
    import mlflow
    client = mlflow.MlflowClient()
    seen = {k: {m.step for m in client.get_metric_history(run_id, k)}
            for k in client.get_run(run_id).data.metrics}

    def log_rows(rows) -> None:
        """[(step, metrics), ...] in one call (one store transaction)."""
        new = [(k, float(v), step) for step, metrics in rows for k, v in metrics.items()
               if step not in seen.get(k, ())]
        if new:
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, now, step)
                                              for k, v, step in new])
            for k, _, step in new:
                seen.setdefault(k, set()).add(step)

    def log(metrics: dict, step: int = 0) -> None:
        log_rows([(step, metrics)])

    log.rows = log_rows
    return log


def metric_key(name: str) -> str:
    """MLflow metric names allow no '+': CK+ -> CKplus."""
    return name.replace("+", "plus")


def log_seed_run(cell: str, result: dict, first_step2_epoch: int) -> str:
    """The seed's child run of the active cell run (curves, test metrics), once: a finished
    child is kept, an unfinished one completed. Returns its run id."""
    import mlflow
    parent = mlflow.active_run()
    name = f"{cell}-seed{result['seed']}"
    existing = mlflow.MlflowClient().search_runs(
        [parent.info.experiment_id], filter_string=(
            f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
            f"and attributes.run_name = '{name}'"))
    if existing and existing[0].info.status == "FINISHED":
        return existing[0].info.run_id
    run_id = existing[0].info.run_id if existing else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else name, nested=True,
                          tags={"cell": cell, "resumed": str(result["resumed"]),
                                **process_tags()}) as child:
        log = metric_logger(child.info.run_id)
        # the seed saw the cell's data: its run names the same datasets
        client = mlflow.MlflowClient()
        if inputs := client.get_run(parent.info.run_id).inputs.dataset_inputs:
            client.log_inputs(child.info.run_id, datasets=inputs)
        mlflow.log_params({"seed": result["seed"], "train_images": result["train_images"]})
        # one log_batch per epoch, then one with the final metrics
        for step, history in result["history"].items():
            first = 0 if step == "step1" else first_step2_epoch
            epochs = max((len(v) for v in history.values()), default=0)
            for i in range(epochs):
                log({f"{step}_{k}": v[i] for k, v in history.items() if i < len(v)},
                    step=first + i + 1)
        final = {f"val_{k}": result["val"][k] for k in HEADLINE} if result.get("val") else {}
        for test, m in result["tests"].items():
            final.update({f"{metric_key(test)}_{k}": m[k] for k in HEADLINE})
            mlflow.log_dict(m, f"tests/{metric_key(test)}.json")
        log(final)
    return child.info.run_id
