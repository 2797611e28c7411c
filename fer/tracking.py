"""MLflow tracking with its embedded SQLite store at a fixed, absolute path.

Default store: sqlite:///<repo>/mlflow.db (override with MLFLOW_TRACKING_URI). Browse it
with `mlflow ui --backend-store-uri sqlite:///mlflow.db`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

from .params import ROOT


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
def mlflow_run(experiment: str, run_name: str, params: dict | None = None,
               tags: dict | None = None, nested: bool = False):
    """Start an MLflow run in `experiment`, tagged with the git commit and DVC exp name."""
    import mlflow
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment,
                                 artifact_location=(store_root() / "mlartifacts").as_uri())
    mlflow.set_experiment(experiment)
    all_tags = {"git_commit": git_commit(),
                "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "workspace"), **(tags or {})}
    with mlflow.start_run(run_name=run_name, nested=nested, tags=all_tags) as run:
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in flat(params).items()})
        yield run


def metric_key(name: str) -> str:
    """MLflow metric names allow no '+': CK+ -> CKplus."""
    return name.replace("+", "plus")


def log_seed_run(cell: str, result: dict, first_step2_epoch: int) -> None:
    """One child run of a grid cell: per-epoch curves of both steps, test metrics."""
    import mlflow
    with mlflow.start_run(run_name=f"{cell}-seed{result['seed']}", nested=True,
                          tags={"cell": cell, "resumed": str(result["resumed"])}):
        mlflow.log_params({"seed": result["seed"], "train_images": result["train_images"]})
        for step, history in result["history"].items():
            first = 0 if step == "step1" else first_step2_epoch
            for name, values in history.items():
                for i, v in enumerate(values):
                    mlflow.log_metric(f"{step}_{name}", v, step=first + i + 1)
        for test, m in result["tests"].items():
            mlflow.log_metrics({f"{metric_key(test)}_{k}": m[k]
                                for k in ("accuracy", "balanced_accuracy", "macro_f1")})
            mlflow.log_dict(m, f"tests/{metric_key(test)}.json")
