"""MLflow tracking with its embedded SQLite store at a fixed, absolute path.

Default store: sqlite:///<repo>/mlflow.db (override with MLFLOW_TRACKING_URI). Browse it
with `mlflow ui --backend-store-uri sqlite:///mlflow.db`.

- First use: MLflow creates and migrates a fresh SQLite store the first time a process
  opens it; two processes doing that together collide. `open_experiment` opens the store
  and gets or creates the experiment under an exclusive lock on `<store>.lock`.
- Killed runs: every run is tagged with the `hostname`, `pid` and `pid_start` (the
  process start time) of the process that runs it; the next `mlflow_run` in that
  experiment marks RUNNING runs of dead processes on this host KILLED.
- Resume: with `resume_file`, the run's id is kept in that file (beside the stage's own
  resume state) and a re-run continues the same run, so its history stays whole; metrics
  are logged through `metric_logger`, which skips (metric, step) pairs already there.
- Lineage: `log_datasets` logs the set directories a run trains or tests on as MLflow
  datasets (name, DVC md5 as digest, path, rows, class counts); runs started by DVC are
  tagged with their stage (`dvc_stage`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import subprocess
import time
from pathlib import Path

from fer.core.atomic import write_json
from fer.core.params import ROOT


def store_root(root=ROOT) -> Path:
    """The repository that owns the store. Queued experiments (`dvc exp run --queue`)
    run in temporary copies under <repo>/.dvc/tmp/exps/...; they log to <repo>'s store."""
    parts = Path(root).resolve().parts
    for i in range(len(parts) - 2):
        if parts[i:i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return Path(root).resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root() / 'mlflow.db'}"


def artifact_root(uri: str) -> Path:
    """Artifacts live in `mlartifacts/` beside a SQLite store (the repository's, or a
    test's), else beside the repository's."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).parent / "mlartifacts"
    return store_root() / "mlartifacts"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat(v, key + "."))
        else:
            out[key] = v
    return out


@contextlib.contextmanager
def store_lock(uri: str):
    """Exclusive lock on `<db>.lock` beside a SQLite store (other stores: no lock; a
    tracking server serialises its own schema set-up; `open_experiment` handles its
    create race)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(uri[len("sqlite:///"):] + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# MLflow 3's UI opens an experiment in its model-training view (not the GenAI one) when
# it carries this kind
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def open_experiment(experiment: str) -> str:
    """Point MLflow at the store, creating and migrating it if new, and get or create
    `experiment`; both under the store lock, so concurrent first users cannot race.
    Returns the experiment id."""
    import mlflow
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    with store_lock(uri):
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name(experiment)     # opens (and migrates) the store
        if exp is None:
            try:
                client.create_experiment(
                    experiment, artifact_location=artifact_root(uri).as_uri(),
                    tags=EXPERIMENT_TAGS)
            except mlflow.exceptions.MlflowException as e:
                # a tracking server has no lock we can take: another client created it
                # between our lookup and our create; theirs is the one to use
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, /proc/<pid>/stat field
    22): with the pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict:
    pid = os.getpid()
    return {"hostname": socket.gethostname(), "pid": str(pid),
            "pid_start": _process_start(pid) or ""}


def _alive(pid: int, started: str) -> bool:
    if Path("/proc/self/stat").is_file():
        now = _process_start(pid)
        return now is not None and (not started or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def mark_dead_runs_killed(experiment_id: str) -> list[str]:
    """RUNNING runs of `experiment_id` started by a process of this host that no longer
    exists are set to KILLED; returns their ids."""
    import mlflow
    client = mlflow.MlflowClient()
    host = socket.gethostname()
    runs = client.search_runs([experiment_id], filter_string=(
        f"attributes.status = 'RUNNING' and tags.hostname = '{host}'"), max_results=10000)
    dead = [r.info.run_id for r in runs if r.data.tags.get("pid", "").isdigit()
            and not _alive(int(r.data.tags["pid"]), r.data.tags.get("pid_start", ""))]
    for run_id in dead:
        client.set_terminated(run_id, "KILLED")
    return dead


def _resumable_run(experiment_id: str, resume_file, resume_key: str) -> str | None:
    """The run id kept in `resume_file`, if it names a live (not deleted) run of this
    experiment recorded for the same `resume_key`."""
    import mlflow
    if resume_file is None or not Path(resume_file).is_file():
        return None
    try:
        kept = json.loads(Path(resume_file).read_text())
        run = mlflow.MlflowClient().get_run(kept["run_id"])
    except (ValueError, KeyError, mlflow.exceptions.MlflowException):
        return None
    if (kept.get("key") != resume_key or run.info.experiment_id != experiment_id
            or run.info.lifecycle_stage != "active"):
        return None
    return run.info.run_id


@contextlib.contextmanager
def mlflow_run(experiment: str, run_name: str, params: dict | None = None,
               tags: dict | None = None, nested: bool = False, resume_file=None,
               resume_key: str = ""):
    """An MLflow run in `experiment`, tagged with the git commit, the DVC exp name and
    the process (see `process_tags`).

    With `resume_file`: if it holds the id of a run of this experiment recorded with the
    same `resume_key` (the fingerprint of the stage's resume state) and `params`, it is
    continued (status back to RUNNING); otherwise a new run is started and its id is
    written there atomically. The caller deletes the file with its resume state."""
    import mlflow
    exp_id = open_experiment(experiment)
    mark_dead_runs_killed(exp_id)
    all_tags = {"git_commit": git_commit(),
                "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "workspace"),
                **({"dvc_stage": os.environ["DVC_STAGE"]} if "DVC_STAGE" in os.environ else {}),
                **process_tags(), **(tags or {})}
    logged = {k: str(v)[:500] for k, v in flat(params or {}).items()}
    # a run is continued only with the same parameters (MLflow forbids changing them)
    key = hashlib.sha256(json.dumps([resume_key, logged], sort_keys=True).encode()
                         ).hexdigest()[:16]
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
    """The md5 `dvc repro` records for `path` in dvc.lock (a directory's ends in `.dir`),
    computed by DVC's own hashing as for a stage dependency (dvc_data's `build`, dry run),
    with the repository's hash cache and .dvcignore; outside a DVC repository, without."""
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
    """The set directory `path` (images.npy + manifest.csv) as an MLflow dataset: its
    folder name, its DVC md5 as digest, the path as source, and as profile the row count
    and the rows per class (no data is copied into the store)."""
    import pandas as pd
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.meta_dataset import MetaDataset

    labels = pd.read_csv(Path(path) / "manifest.csv", usecols=["label"])["label"]
    counts = labels.value_counts().sort_index()
    profile = {"num_rows": len(labels), "class_counts": {str(k): int(v) for k, v in counts.items()}}

    class SetDataset(MetaDataset):
        profile = property(lambda self: profile)

        def to_dict(self):
            return {**super().to_dict(), "profile": json.dumps(profile)}

    source = get_dataset_source_from_json(json.dumps({"uri": str(path)}), "local")
    return SetDataset(source, name=Path(path).name, digest=dvc_md5(path))


def log_datasets(**paths) -> None:
    """Log set directories as the active run's inputs in one call, by context:
    `log_datasets(training=[dir], test=[dir, dir])`."""
    import mlflow
    pairs = [(set_dataset(p), context) for context, ps in paths.items() for p in ps]
    mlflow.log_inputs(datasets=[d for d, _ in pairs], contexts=[c for _, c in pairs],
                      tags_list=[None] * len(pairs))


def metric_logger(run_id: str):
    """`log(metrics, step)` for run `run_id` that logs each (metric, step) at most once:
    steps already in the run (logged before a kill) are skipped on a resumed run."""
    import mlflow
    client = mlflow.MlflowClient()
    seen = {k: {m.step for m in client.get_metric_history(run_id, k)}
            for k in client.get_run(run_id).data.metrics}

    def log(metrics: dict, step: int = 0) -> None:
        new = {k: float(v) for k, v in metrics.items() if step not in seen.get(k, ())}
        if new:
            client.log_batch(run_id, metrics=[
                mlflow.entities.Metric(k, v, int(time.time() * 1000), step)
                for k, v in new.items()])
            for k in new:
                seen.setdefault(k, set()).add(step)

    return log


def metric_key(name: str) -> str:
    """MLflow metric names allow no '+': CK+ -> CKplus."""
    return name.replace("+", "plus")


def log_seed_run(cell: str, result: dict, first_step2_epoch: int) -> str:
    """One child run of the active grid-cell run: per-epoch curves of both steps, test
    metrics. Idempotent: a seed already logged under this parent (a cached seed
    re-reported on resume) is not logged twice; an unfinished child is completed.
    Returns the child's run id."""
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
        # one log_batch per epoch with every curve's value of that epoch, then one with
        # the seed's final metrics
        for step, history in result["history"].items():
            first = 0 if step == "step1" else first_step2_epoch
            epochs = max((len(v) for v in history.values()), default=0)
            for i in range(epochs):
                log({f"{step}_{k}": v[i] for k, v in history.items() if i < len(v)},
                    step=first + i + 1)
        final = {f"val_{k}": result["val"][k] for k in ("accuracy", "balanced_accuracy",
                                                         "macro_f1")} if result.get("val") else {}
        for test, m in result["tests"].items():
            final.update({f"{metric_key(test)}_{k}": m[k]
                          for k in ("accuracy", "balanced_accuracy", "macro_f1")})
            mlflow.log_dict(m, f"tests/{metric_key(test)}.json")
        log(final)
    return child.info.run_id
