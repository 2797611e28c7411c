"""`dvc metrics show`, `dvc plots show` and the MLflow runs carry the same numbers: one tiny
real grid cell trained through its stage by `dvc repro`, aggregated, its curves exported,
then read back through DVC's own CLI and MLflow's client; its runs name the train set with
the md5 dvc.lock records, and its model, registered, loads as the `champion`."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from fer.core.params import ROOT
from fer.core.schema import EMOTIONS
from fer.evaluate.page import training_curves_csv
from fer.core.tracking import flat, metric_key

sys.path.insert(0, os.path.dirname(__file__))
from test_grid import _tiny_params  # noqa: E402  (the grid tests' tiny data sets)
from dag import DVC, demo_env, run  # noqa: E402
from needs import (APT_CHROMIUM, APT_NODE, NPM_WEB, chromium, needs, node,  # noqa: E402
                   web_module)


def _dvc(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def lock_md5s(root) -> dict:
    """{path: md5} of every dependency and output dvc.lock records."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {e["path"]: e["md5"] for s in lock["stages"].values()
            for e in s.get("deps", []) + s.get("outs", []) if "md5" in e}


def inputs(run, context) -> list:
    return [i.dataset for i in run.inputs.dataset_inputs
            if {(t.key, t.value) for t in i.tags} >= {("mlflow.data.context", context)}]


@pytest.fixture(scope="module")
def cell_run(tmp_path_factory):
    """One tiny cell run by `dvc repro` (its stage as dvc.yaml's finetune, so DVC records
    in dvc.lock the md5 of the train set it read), aggregated, its curves exported, and
    its model registered as the export stage does; all in a store of its own."""
    tmp_path = tmp_path_factory.mktemp("cell")
    params = _tiny_params(tmp_path)
    params["grid"].update(models=["vgg16"], train_sets=["TINY"])
    params["report"].update(claims=[], bootstrap_resamples=200)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "finetune": {"matrix": {"model": ["vgg16"], "train_set": ["TINY"]},
                     "cmd": "python -m stages.finetune ${item.model}-${item.train_set}",
                     "deps": ["build/datasets/${item.train_set}"],
                     "outs": ["build/models/${item.model}/${item.train_set}"]},
        "grid": {
            "cmd": "true", "metrics": [{"metrics/summary.json": {"cache": False}}],
            "plots": [{"reports/training_curves.csv": {"cache": False, "x": "epoch",
                                                       "y": "val_accuracy"}}]}}}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**demo_env(), "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri}
    run([DVC, "init", "--no-scm", "-q"], tmp_path, env)
    run([DVC, "repro", "finetune@vgg16-TINY"], tmp_path, env)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        from stages import aggregate
        from fer.core.mlmodel import register_champion
        aggregate.main()
        cell = json.loads((tmp_path / "metrics/finetune/vgg16-TINY.json").read_text())
        (tmp_path / "reports/training_curves.csv").write_text(training_curves_csv([cell]))
        register_champion(tmp_path / "build/models/vgg16/TINY/model.keras",
                          tmp_path / "build/datasets/TINY")
        yield tmp_path, params, cell


@pytest.mark.slow                                         # about a minute: trains a tiny cell
def test_dvc_metrics_plots_and_mlflow_agree(cell_run):
    tmp_path, params, cell = cell_run
    summary = json.loads((tmp_path / "metrics/summary.json").read_text())
    shown = _dvc("metrics", "show", "--json", cwd=tmp_path)
    shown = next(iter(shown.values()))                     # the workspace (no git here)
    assert shown["data"]["metrics/summary.json"]["data"] == summary

    import mlflow
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    client = mlflow.tracking.MlflowClient()
    agg = mlflow.search_runs(experiment_names=["aggregate"], output_format="list")
    assert len(agg) == 1
    flat_summary = {metric_key(k): v for k, v in flat(summary).items()}
    assert agg[0].data.metrics == pytest.approx(flat_summary, abs=0)
    runs = mlflow.search_runs(experiment_names=["finetune"], output_format="list")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    for t in ("CK+", "JAFFE"):
        acc = cell["summary"][t]["accuracy"]
        assert parent.data.metrics[f"{metric_key(t)}_accuracy_mean"] == acc["mean"]
        assert summary["vgg16-TINY"][t]["accuracy_mean"] == round(acc["mean"], 4)
        assert summary["vgg16-TINY"][t]["accuracy_val_selected"] == round(acc["val_selected"], 4)
    children = {int(r.data.params["seed"]): r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == [r["seed"] for r in cell["per_seed"]] == [0, 1]

    plots = _dvc("plots", "show", "--json", cwd=tmp_path)["data"]
    rows = plots["reports/training_curves.csv"][0]["content"]["data"]["values"]
    for r in cell["per_seed"]:
        assert children[r["seed"]].data.metrics["CKplus_accuracy"] == r["tests"]["CK+"]["accuracy"]
        hist = client.get_metric_history(children[r["seed"]].info.run_id, "step2_val_accuracy")
        from_mlflow = sorted((h.step, h.value) for h in hist)
        from_dvc = sorted((int(v["epoch"]), float(v["val_accuracy"])) for v in rows
                          if int(v["seed"]) == r["seed"] and v["step"] == "step2")
        assert from_mlflow == from_dvc and len(from_dvc) == params["train"]["epochs_step2"]
        assert [v for _, v in from_dvc] == r["history"]["step2"]["val_accuracy"]

    # lineage: the cell's run and each seed's name the train set with the md5 DVC recorded
    # for it; the test sets are named too
    md5 = lock_md5s(tmp_path)
    assert md5["build/datasets/TINY"].endswith(".dir")
    for r in runs:
        (train,) = inputs(r, "training")
        assert (train.name, train.digest) == ("TINY", md5["build/datasets/TINY"])
        assert json.loads(train.source) == {"uri": "build/datasets/TINY"}
        assert json.loads(train.profile) == {"num_rows": 21, "class_counts": {
            e: 3 for e in sorted(EMOTIONS)}}
        assert sorted(d.name for d in inputs(r, "test")) == ["CK+", "JAFFE"]
        assert r.data.tags.get("dvc_stage", "finetune@vgg16-TINY") == "finetune@vgg16-TINY"
    assert parent.data.tags["dvc_stage"] == "finetune@vgg16-TINY"
    check_registry(tmp_path, md5["build/datasets/TINY"], parent)


def check_registry(root, train_md5, parent):
    """The cell recorded its model by reference (no artifacts); registering it (as the
    export stage does) packaged it once with a signature and made it `champion`, which
    loads with mlflow.pyfunc and classifies a face as the .keras file does; a new
    shipped model moves the alias."""
    import keras
    import mlflow
    import numpy as np
    import fer.train.backbones  # noqa: F401  (the Normalize layer, for Keras itself)
    from fer.core.mlmodel import CHAMPION, REGISTERED, log_cell_model, register_champion
    from fer.core.tracking import log_datasets
    from fer.train.keras_io import save_model

    keras_file = root / "build/models/vgg16/TINY/model.keras"
    logged = mlflow.search_logged_models([parent.info.experiment_id], output_format="list")
    (reference,) = [m for m in logged if "packaged" not in m.tags]
    (packaged,) = [m for m in logged if m.tags.get("packaged") == "pyfunc"]
    assert reference.source_run_id == packaged.source_run_id == parent.info.run_id
    assert reference.tags["keras_path"] == "build/models/vgg16/TINY/model.keras"
    # a reference: MLflow's stub MLmodel file only, the .keras bytes stay with DVC
    stub = mlflow.artifacts.list_artifacts(artifact_uri=reference.artifact_location)
    assert [f.path.split("/")[-1] for f in stub] == ["MLmodel"] and stub[0].file_size < 4096
    sig = mlflow.models.get_model_info(f"models:/{packaged.model_id}").signature
    assert sig.inputs.to_dict() == [{"type": "tensor", "tensor-spec": {
        "dtype": "uint8", "shape": (-1, 32, 32, 3)}}]
    assert [c["name"] for c in sig.outputs.to_dict()] == list(EMOTIONS)
    version = register_champion(keras_file, root / "build/datasets/TINY")  # again: reused
    assert str(version.version) == "1"
    assert len(mlflow.search_logged_models([parent.info.experiment_id],
                                           output_format="list")) == 2
    assert version.tags == {"cell": "vgg16-TINY", "train_set_md5": train_md5,
                            "dvc_stage": "finetune@vgg16-TINY", "test_selected": "False",
                            "keras_md5": reference.tags["keras_md5"],
                            "keras_path": "build/models/vgg16/TINY/model.keras"}
    faces = np.load(root / "build/datasets/CK+/images.npy")[:3]
    champion = mlflow.pyfunc.load_model(f"models:/{REGISTERED}@{CHAMPION}")
    probs = champion.predict(faces)
    assert list(probs.columns) == list(EMOTIONS)
    expected = keras.saving.load_model(keras_file).predict(faces, verbose=0)
    np.testing.assert_allclose(probs.to_numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)

    # another shipped model (the head's weights changed): a new version, and the alias moves
    model = keras.saving.load_model(keras_file)
    head = model.layers[-1]
    head.set_weights([w * 3 for w in head.get_weights()])
    other = root / "other.keras"
    save_model(model, other)
    with mlflow.start_run(experiment_id=parent.info.experiment_id):
        log_datasets(training=[root / "build/datasets/TINY"])
        log_cell_model(other, "other.keras", cell="vgg16-TINY", test_selected=False)
    assert str(register_champion(other, root / "build/datasets/TINY").version) == "2"
    moved = mlflow.MlflowClient().get_model_version_by_alias(REGISTERED, CHAMPION)
    assert str(moved.version) == "2"
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{REGISTERED}@{CHAMPION}").predict(faces).to_numpy(),
        model.predict(faces, verbose=0), atol=1e-6)


@pytest.mark.slow
@needs(node(), f"needs node ({APT_NODE})")
@needs(web_module("playwright-core"), f"needs web/node_modules/playwright-core ({NPM_WEB})")
@needs(Path(chromium()).exists(), f"needs Debian's chromium ({APT_CHROMIUM})")
def test_tracking_ui_names_the_datasets_and_lists_the_registered_version(cell_run, tmp_path):
    """`mlflow ui` on a free loopback port over the cell's store, read in headless
    Chromium: the runs table's Dataset column names the train set (with its md5), the
    registered model's page lists version 1; the server is stopped afterwards."""
    import mlflow
    from fer.core.mlmodel import REGISTERED
    root = cell_run[0]
    exp = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_experiment_by_name("finetune")
    train_md5 = lock_md5s(root)["build/datasets/TINY"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url, shot = f"http://127.0.0.1:{port}", tmp_path / "mlflow_runs.png"
    log = open(tmp_path / "ui.log", "w")
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                           f"sqlite:///{root / 'mlflow.db'}", "--host", "127.0.0.1",
                           "--port", str(port), "--workers", "1"], cwd=root,
                          start_new_session=True,
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180            # its start-up imports take a while
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=5).status == 200:
                    break
            except OSError:
                if ui.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow ui did not answer on /health within 180 s:\n"
                                + (tmp_path / "ui.log").read_text()[-2000:])
                time.sleep(0.5)
        r = subprocess.run(["node", str(ROOT / "web/mlflow_check.mjs"), url, exp.experiment_id,
                            REGISTERED, str(shot)], capture_output=True, text=True, timeout=240)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        log.close()
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    # every top-level run shows the train set first, with its md5 (seeds fold under the cell)
    assert res["datasets"] and all(d.startswith(f"TINY ({train_md5})")
                                   for d in res["datasets"]), res["datasets"]
    hrefs = {v["href"]: v for v in res["versions"]}
    assert f"#/models/{REGISTERED}/versions/1" in hrefs
    assert any("champion" in v["row"] for v in res["versions"])
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
