"""MLflow tracking against real SQLite stores in tmp, written by real processes."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer.params import ROOT

# Each writer imports everything first, says it is ready, then waits for the go file,
# so that all of them reach the fresh store within milliseconds of each other.
WRITER = """
import os, sys, time
from pathlib import Path
import mlflow
from fer.tracking import mlflow_run
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
