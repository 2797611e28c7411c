"""Queued experiments run concurrently (`dvc exp run --queue` x3, `dvc queue start -j 2`)
and log to one MLflow store, the SQLite file and a tracking server on loopback: no run
and no metric is lost."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer.core.params import ROOT
from tests.test_tracking_server import _free_port, _start_server, _stop

EXPERIMENTS, STEPS = 3, 20
BIN = Path(sys.executable).parent

# a stage shaped like a grid cell's logging: a parent run with a child run, per-step metrics
STAGE = '''
import yaml
import mlflow
from fer.core.tracking import mlflow_run
n = yaml.safe_load(open("params.yaml"))["n"]
with mlflow_run("queue", f"exp{n}", params={"n": n}):
    with mlflow.start_run(run_name=f"exp{n}-child", nested=True):
        for step in range(%d):
            mlflow.log_metric("loss", n + step / 100, step=step)
    mlflow.log_metric("final", n)
open("out.txt", "w").write(str(n))
''' % STEPS


def _sh(cmd, cwd, env, timeout=120):
    return subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=timeout).stdout


def _queue_three(repo: Path, env: dict):
    repo.mkdir()
    (repo / "stage.py").write_text(STAGE)
    (repo / "params.yaml").write_text("n: 0\n")
    (repo / "dvc.yaml").write_text("stages:\n  log:\n    cmd: python stage.py\n    deps: "
                                   "[stage.py]\n    params: [n]\n    outs: [out.txt]\n")
    (repo / ".gitignore").write_text("/out.txt\n")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"],
                ["git", "config", "user.name", "t"], [str(BIN / "dvc"), "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        _sh(cmd, repo, env)
    for n in range(1, EXPERIMENTS + 1):
        _sh([str(BIN / "dvc"), "exp", "run", "--queue", "-S", f"n={n}"], repo, env)
    start = time.monotonic()
    _sh([str(BIN / "dvc"), "queue", "start", "-j", "2"], repo, env)
    try:
        while time.monotonic() - start < 300:
            status = _sh([str(BIN / "dvc"), "queue", "status"], repo, env)
            if status.count("Success") + status.count("Failed") == EXPERIMENTS:
                break
            time.sleep(3)
        assert status.count("Success") == EXPERIMENTS, status
    finally:
        subprocess.run([str(BIN / "dvc"), "queue", "stop", "--kill"], cwd=repo, env=env,
                       capture_output=True, timeout=60)
    return time.monotonic() - start


def _check_store(uri):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("queue").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(
        [f"exp{n}" for n in range(1, EXPERIMENTS + 1)] +
        [f"exp{n}-child" for n in range(1, EXPERIMENTS + 1)])
    for r in runs:
        n = int(r.info.run_name[3:].split("-")[0])
        if r.info.run_name.endswith("child"):
            hist = client.get_metric_history(r.info.run_id, "loss")
            assert sorted((m.step, m.value) for m in hist) == [
                (s, n + s / 100) for s in range(STEPS)]
        else:
            assert r.data.metrics == {"final": n} and r.data.params == {"n": str(n)}


@pytest.fixture()
def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{BIN}:{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1"}


def test_three_queued_experiments_two_at_a_time_into_one_sqlite_store(tmp_path, env):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seconds = _queue_three(tmp_path / "repo", {**env, "MLFLOW_TRACKING_URI": uri})
    _check_store(uri)
    print(f"sqlite: {EXPERIMENTS} experiments, -j 2: {seconds:.1f} s")


@pytest.mark.heavy   # 55 s; the SQLite case above and tests/test_tracking_server.py's
                     # four concurrent first writers through a server cover its parts
def test_three_queued_experiments_two_at_a_time_into_a_tracking_server(tmp_path, env):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w") as log:
        server = _start_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "art",
                               port, log)
        try:
            seconds = _queue_three(tmp_path / "repo", {**env, "MLFLOW_TRACKING_URI": uri})
            _check_store(uri)
        finally:
            _stop(server)
    print(f"server: {EXPERIMENTS} experiments, -j 2: {seconds:.1f} s")
