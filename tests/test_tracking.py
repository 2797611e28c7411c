"""MLflow tracking against real SQLite stores in tmp, written by real processes."""
import json
import os
import subprocess
import sys
import time

import pytest

from fer.core.params import ROOT

# Each writer imports everything first, says it is ready, then waits for the go file,
# so that all of them reach the fresh store within milliseconds of each other.
WRITER = """
import os, sys, time
from pathlib import Path
import mlflow
from fer.core.tracking import mlflow_run
tmp, i = Path(sys.argv[1]), int(sys.argv[2])
(tmp / f"ready{i}").touch()
while not (tmp / "go").exists():
    time.sleep(0.005)
with mlflow_run("race", f"writer{i}", params={"writer": i}):
    mlflow.log_metric("x", float(i), step=1)
"""


def _env(store):
    return {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def _wait_all(procs, timeout):
    end = time.monotonic() + timeout
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        outs.append(out)
    return outs


def test_four_concurrent_first_writers_on_a_fresh_store(tmp_path):
    store = tmp_path / "mlflow.db"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(i)],
                              env=_env(store), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(4)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
            "a writer died before the start"
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outs = _wait_all(procs, 120)
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(outs)[-3000:]
    import mlflow
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    exp = client.get_experiment_by_name("race")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"writer{i}" for i in range(4)]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(r.data.metrics["x"] for r in runs) == [0.0, 1.0, 2.0, 3.0]


# Starts a resumable run, logs epochs 1..3 and is SIGKILLed inside the run.
KILLED_WRITER = """
import os, signal, sys
from fer.core.tracking import metric_logger, mlflow_run
with mlflow_run("resume", "job", params={"epochs": 5}, resume_file=sys.argv[1],
                resume_key="k1") as run:
    log = metric_logger(run.info.run_id)
    for epoch in (1, 2, 3):
        log({"loss": 1.0 / epoch}, step=epoch)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow
    return mlflow.MlflowClient(uri)


def test_killed_run_is_marked_killed_then_continued_with_whole_history(tmp_path, store):
    from fer.core.tracking import metric_logger, mlflow_run
    resume = tmp_path / "cache" / "mlflow_run.json"
    p = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(resume)],
                       env=_env(tmp_path / "mlflow.db"), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == -9, p.stderr[-2000:]
    run_id = json.loads(resume.read_text())["run_id"]
    assert store.get_run(run_id).info.status == "RUNNING"     # what a kill leaves

    # any next run in that experiment marks the dead process's run KILLED
    with mlflow_run("resume", "other") as other:
        pass
    assert store.get_run(run_id).info.status == "KILLED"
    assert store.get_run(other.info.run_id).info.status == "FINISHED"

    # the resumed job continues the same run, replays epoch 3 and goes on to 5
    with mlflow_run("resume", "job", params={"epochs": 5}, resume_file=resume,
                    resume_key="k1") as run:
        assert run.info.run_id == run_id
        log = metric_logger(run_id)
        for epoch in (3, 4, 5):
            log({"loss": 1.0 / epoch}, step=epoch)
    history = store.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    assert store.get_run(run_id).info.status == "FINISHED"
    exp = store.get_experiment_by_name("resume")
    assert len(store.search_runs([exp.experiment_id])) == 2
    tags = store.get_run(run_id).data.tags
    assert tags["pid"] == str(os.getpid()) and tags["hostname"] and tags["pid_start"]

    # a resume file written for other resume state (another key) starts a new run
    with mlflow_run("resume", "job", resume_file=resume, resume_key="k2") as fresh:
        assert fresh.info.run_id != run_id
    assert json.loads(resume.read_text())["run_id"] == fresh.info.run_id
    # and so does the same key with other parameters (MLflow cannot change a param)
    with mlflow_run("resume", "job", params={"epochs": 6}, resume_file=resume,
                    resume_key="k2") as other_params:
        assert other_params.info.run_id != fresh.info.run_id


def test_live_runs_are_not_marked_killed(store):
    from fer.core.tracking import mlflow_run
    with mlflow_run("live", "outer") as outer:
        with mlflow_run("live", "inner", nested=True):
            assert store.get_run(outer.info.run_id).info.status == "RUNNING"


def _seed_result(seed, resumed=False):
    return {"seed": seed, "resumed": resumed, "train_images": 21,
            "history": {"step1": {"loss": [0.9, 0.8]}, "step2": {"loss": [0.7]}},
            "tests": {"CK+": {"accuracy": 0.5, "balanced_accuracy": 0.4, "macro_f1": 0.3}}}


def test_seed_child_runs_are_logged_once(tmp_path, store):
    from fer.core.tracking import log_seed_run, mlflow_run
    resume = tmp_path / "cell_run.json"
    with mlflow_run("grid", "cell", resume_file=resume, resume_key="c") as parent:
        first = log_seed_run("cell", _seed_result(0), 2)
        assert log_seed_run("cell", _seed_result(0), 2) == first
    # a resumed cell re-reports the cached seed 0, then logs seed 1
    with mlflow_run("grid", "cell", resume_file=resume, resume_key="c") as again:
        assert again.info.run_id == parent.info.run_id
        assert log_seed_run("cell", _seed_result(0, resumed=True), 2) == first
        log_seed_run("cell", _seed_result(1), 2)
    exp = store.get_experiment_by_name("grid")
    children = [r for r in store.search_runs([exp.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["cell-seed0", "cell-seed1"]
    steps = [m.step for m in store.get_metric_history(first, "step1_loss")]
    assert steps == [1, 2] and [m.step for m in store.get_metric_history(
        first, "step2_loss")] == [3]
    assert store.get_run(first).data.metrics["CKplus_macro_f1"] == 0.3
    # the UI opens the experiment in its model-training view
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"


def test_a_seed_logs_one_batch_per_epoch(tmp_path, store, monkeypatch):
    import mlflow
    from fer.core.tracking import log_seed_run, mlflow_run
    calls = []
    batch = mlflow.MlflowClient.log_batch

    def counted(self, run_id, metrics=(), *a, **kw):
        if metrics:                          # (params and tags go through log_batch too)
            calls.append(len(metrics))
        return batch(self, run_id, metrics, *a, **kw)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", counted)
    result = _seed_result(0)
    result["history"]["step1"]["accuracy"] = [0.2, 0.3]
    with mlflow_run("grid", "cell"):
        child = log_seed_run("cell", result, 2)
    # 2 step-1 epochs (loss and accuracy in one call each), 1 step-2 epoch, then the
    # seed's 3 test metrics: 4 calls instead of one per value
    assert calls == [2, 2, 1, 3]
    assert [m.step for m in store.get_metric_history(child, "step1_loss")] == [1, 2]
