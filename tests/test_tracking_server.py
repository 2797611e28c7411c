"""A grid cell logs through an MLflow tracking server backed by PostgreSQL (the set-up
for several machines): every parent and child run, parameter and metric arrives, and the
store survives the server being restarted. PostgreSQL (Debian's, installed by .ci/run when
missing) runs from a temporary data folder on loopback only; both services are stopped
afterwards."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from fer.core.params import ROOT
from tests.test_grid import _tiny_params

from needs import APT_POSTGRESQL, PIP, need, needs, pg_bin

try:
    import psycopg2
except ImportError:
    psycopg2 = None
pytestmark = needs(psycopg2 is not None, f"needs the Python package psycopg2 ({PIP})")


def _pg_reason(name):
    return f"needs PostgreSQL's {name} ({APT_POSTGRESQL})"


def _pg_bin(name):
    found = pg_bin(name)
    need(found, _pg_reason(name))
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd):
    """PostgreSQL refuses to run as root: run it as the `postgres` user then."""
    return (["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd)


@pytest.fixture()
def postgres():
    data = Path(tempfile.mkdtemp(prefix="fer-pg-"))       # not under a root-only folder
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(data / "db"), "-A", "trust",
                                 "-U", "postgres", "--no-sync"]), check=True,
                   capture_output=True, timeout=120)
    subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data / "db"), "-w", "-t", "60",
                                 "-l", str(data / "log"), "-o",
                                 f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off", "start"]),
                   check=True, capture_output=True, timeout=90)
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE mlflow")
        conn.close()
        # SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3: name psycopg2's
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data / "db"), "-m", "fast",
                                     "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def _start_server(store, artifacts, port, log):
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", store,
                             "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError(f"mlflow server did not come up: {Path(log.name).read_text()[-2000:]}")


def _stop(proc):
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def _runs(uri):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("finetune")
    runs = client.search_runs([exp.experiment_id])
    return client, {r.info.run_name: r for r in runs}


@needs(pg_bin("initdb"), _pg_reason("initdb"))   # before the fixture: it chowns to postgres
@needs(pg_bin("pg_ctl"), _pg_reason("pg_ctl"))
def test_a_cell_logs_completely_to_a_postgresql_backed_server(tmp_path, postgres, monkeypatch):
    _tiny_params(tmp_path)                                       # vgg16 on TINY, 2 seeds
    monkeypatch.chdir(tmp_path)
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with open(tmp_path / "server.log", "w") as log:
        server = _start_server(postgres, tmp_path / "artifacts", port, log)
        try:
            from stages import finetune
            finetune.main("vgg16", "TINY")
        finally:
            _stop(server)
        cell = json.loads((tmp_path / "metrics/finetune/vgg16-TINY.json").read_text())

        def check():
            client, runs = _runs(uri)
            assert sorted(runs) == ["vgg16-TINY", "vgg16-TINY-seed0", "vgg16-TINY-seed1"]
            parent = runs["vgg16-TINY"]
            assert parent.data.params["train.seeds"] == "2"
            assert parent.data.tags["selected_seed"] == str(cell["selected_seed"])
            assert parent.data.metrics["CKplus_accuracy_mean"] == pytest.approx(
                cell["summary"]["CK+"]["accuracy"]["mean"])
            for r in cell["per_seed"]:
                child = runs[f"vgg16-TINY-seed{r['seed']}"]
                assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
                assert child.data.params["seed"] == str(r["seed"])
                assert child.data.metrics["JAFFE_accuracy"] == r["tests"]["JAFFE"]["accuracy"]
                for step, epoch in (("step1", 1), ("step2", 2)):     # every epoch, each step
                    hist = client.get_metric_history(child.info.run_id, f"{step}_val_loss")
                    assert [(m.step, m.value) for m in hist] == [
                        (epoch, r["history"][step]["val_loss"][0])]

        # a new server process on the same PostgreSQL store serves all of it
        server = _start_server(postgres, tmp_path / "artifacts", port, log)
        try:
            check()
        finally:
            _stop(server)
    conn = psycopg2.connect(postgres.replace("+psycopg2", ""))    # it is in PostgreSQL
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM runs")
    assert cur.fetchone()[0] == 3
    conn.close()


def test_four_concurrent_first_writers_through_a_tracking_server(tmp_path):
    """Writers that start together on a server without the experiment all log: the
    ones that lose the race to create it use the winner's (no file lock can help here)."""
    from tests.test_tracking import WRITER, _wait_all
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri,
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(tmp_path / "server.log", "w") as log:
        server = _start_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "art",
                               port, log)
        try:
            procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(i)],
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for i in range(4)]
            deadline = time.monotonic() + 120
            while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
                assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
                time.sleep(0.05)
            (tmp_path / "go").touch()
            outs = _wait_all(procs, 120)
            assert [p.returncode for p in procs] == [0] * 4, "\n".join(outs)[-3000:]
            from mlflow.tracking import MlflowClient
            client = MlflowClient(uri)
            runs = client.search_runs([client.get_experiment_by_name("race").experiment_id])
            assert sorted(r.info.run_name for r in runs) == [f"writer{i}" for i in range(4)]
            assert sorted(r.data.metrics["x"] for r in runs) == [0.0, 1.0, 2.0, 3.0]
        finally:
            _stop(server)
