"""`dvc metrics show`, `dvc plots show` and the MLflow runs carry the same numbers: one tiny
real grid cell trained through its stage, aggregated, its curves exported, then read back
through DVC's own CLI and MLflow's client."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from fer.evaluate.page import training_curves_csv
from fer.core.tracking import flat, metric_key

sys.path.insert(0, os.path.dirname(__file__))
from test_grid import _tiny_params  # noqa: E402  (the grid tests' tiny data sets)


def _dvc(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


@pytest.mark.slow                                         # about a minute: trains a tiny cell
def test_dvc_metrics_plots_and_mlflow_agree(tmp_path, monkeypatch):
    params = _tiny_params(tmp_path)
    params["grid"].update(models=["vgg16"], train_sets=["TINY"])
    params["report"].update(claims=[], bootstrap_resamples=200)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from stages import aggregate, finetune
    finetune.main("vgg16", "TINY")
    aggregate.main()
    cell = json.loads((tmp_path / "metrics/finetune/vgg16-TINY.json").read_text())
    (tmp_path / "reports/training_curves.csv").write_text(training_curves_csv([cell]))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"grid": {
        "cmd": "true", "metrics": [{"metrics/summary.json": {"cache": False}}],
        "plots": [{"reports/training_curves.csv": {"cache": False, "x": "epoch",
                                                   "y": "val_accuracy"}}]}}}))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path,
                   check=True, timeout=120)

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
