import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from fer.data.dataset import save_dataset
from fer.evaluate.metrics import classification_metrics, pm, summarize
from fer.train.grid import cell_spec, run_cell
from fer.data.labels import EMOTIONS
from fer.core.params import ROOT, compose, load_params
from fer.evaluate.tables import table3_markdown, table3_rows, table9_markdown


def test_metrics_and_aggregation_math():
    s = summarize([0.8, 0.9, 1.0])
    assert s["mean"] == pytest.approx(0.9) and s["max"] == 1.0 and s["n"] == 3
    assert s["std"] == pytest.approx(np.std([0.8, 0.9, 1.0]))
    assert pm(s) == "90.00 ± 8.16"
    probs = np.eye(7)[[0, 0, 1, 2, 3, 4, 5, 6, 6]]
    m = classification_metrics([0, 1, 1, 2, 3, 4, 5, 6, 0], probs)
    assert m["accuracy"] == pytest.approx(7 / 9)
    assert m["recall"]["disgust"] == 0.5 and m["precision"]["angry"] == 0.5
    assert m["confusion"][1] == [1, 1, 0, 0, 0, 0, 0]
    assert m["balanced_accuracy"] == pytest.approx(np.mean([0.5, 0.5, 1, 1, 1, 1, 1]))
    acc = {"mean": s["mean"], "std": s["std"], "n": 3, "val_selected": 0.8,
           "max_test_selected": 1.0}
    jaffe = summarize([0.4, 0.5])
    cell = {"model": "vgg16", "train_set": "KDEF_OL", "seeds": [0, 1, 2], "train_images": 9,
            "selection": {"on": "val", "test_selected": False, "key": "val_selected"},
            "summary": {"CK+": {"accuracy": acc},
                        "JAFFE": {"accuracy": {**jaffe, "val_selected": 0.4,
                                               "max_test_selected": jaffe["max"]}}},
            "epoch_seconds": {"step1": 1.25, "step2": 2.5}}
    md = table3_markdown([cell], ["CK+", "JAFFE"]).splitlines()
    assert md[0] == ("| Train dataset | Model | CK+ mean ± std (%) | CK+ val-selected seed (%) | "
                     "CK+ max, test-selected as in the paper (%) | JAFFE mean ± std (%) | "
                     "JAFFE val-selected seed (%) | JAFFE max, test-selected as in the paper (%) |")
    assert md[2] == "| KDEF_OL | vgg16 | 90.00 ± 8.16 | 80.00 | 100.00 | 45.00 ± 5.00 | 40.00 | 50.00 |"
    assert table3_rows([cell], ["CK+"])[0] == {
        "train_set": "KDEF_OL", "model": "vgg16", "seeds": 3, "selected_on": "val",
        "CK+ mean": 90.0, "CK+ std": 8.16, "CK+ val_selected": 80.0,
        "CK+ max_test_selected": 100.0}
    assert "| KDEF_OL | vgg16 | 9 | 1.2 | 2.5 |" in table9_markdown([cell])
    assert "side by side" not in table9_markdown([cell])
    shared = {**cell, "concurrent_stages": 2}             # timed under parallel_repro -j 2
    assert table9_markdown([cell, shared]).splitlines()[-1].startswith(
        "Measured with up to 2 stages running side by side")


def test_matrix_stage_covers_the_20_cells():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    matrix = dvc["stages"]["finetune"]["matrix"]
    assert matrix == {"model": "${grid.models}", "train_set": "${grid.train_sets}"}
    grid = compose([])["grid"]
    assert len(grid["models"]) * len(grid["train_sets"]) == 20    # 4 paper backbones + compact
    assert "models.${item.model}" in dvc["stages"]["finetune"]["params"]
    assert "metrics/finetune" in dvc["stages"]["aggregate"]["deps"]
    from dvc.repo import Repo
    cells = [s for s in Repo(str(ROOT)).index.stages if s.addressing.startswith("finetune@")]
    assert len(cells) == 20 and any(s.addressing == "finetune@vgg19-KDEF_Q" for s in cells)


def test_a_backbones_own_train_keys_override_train_null_included():
    """models.<m>.train: every key the backbone sets wins over train, `max_images: null`
    (every image) too; keys it does not set stay train's."""
    params = compose(["profile=demo"])
    assert params["train"]["max_images"] == 112
    assert params["models"]["mini_xception"]["train"]["max_images"] is None
    cell = cell_spec(params, "mini_xception", "KDEF_OL")
    assert cell.train.max_images is None and cell.train.epochs_step1 == 0
    assert (cell.train.epochs_step2, cell.train.lr_step2, cell.train.lr_decay) == (7, 1e-3, "cosine")
    assert cell.train.seeds == params["train"]["seeds"] == 2
    vgg = cell_spec(params, "vgg19", "KDEF_OL")
    assert (vgg.train.max_images, vgg.train.epochs_step1, vgg.train.lr_decay) == (112, 1, "none")


def vgg16_demo_params(export_set: str) -> dict:
    """The demo profile on VGG16 alone, at 32 px (below the Inception minimum)."""
    params = compose(["profile=demo"])
    params["crop"]["size"] = 32
    for key in ("grid", "crossval", "gan_quality"):
        params[key]["models"] = ["vgg16"]
    params["model"]["name"] = "vgg16"
    params["export"]["models"] = {"vgg16": export_set}
    return params


def _tiny_params(tmp_path, labels_test=None, seeds=2):
    params = vgg16_demo_params("TINY")
    params["merge"]["train_sets"]["TINY"] = ["kdef"]     # a whole, valid configuration
    params["grid"]["train_sets"] = ["TINY"]            # around the TINY set written below
    for key in ("ksearch", "gan_quality"):
        params[key]["train_set"] = "TINY"
    params["train"].update(epochs_step1=1, epochs_step2=1, seeds=seeds, batch_size=7,
                           max_images=None)
    rng = np.random.default_rng(0)
    for name, n in (("TINY", 21), ("CK+", 14), ("JAFFE", 14)):
        labels = [EMOTIONS[i % 7] for i in range(n)]
        if name == "JAFFE" and labels_test:
            labels[0] = labels_test
        m = pd.DataFrame({"path": [f"{name}{i}" for i in range(n)], "label": labels,
                          "subject": [f"s{i % 4}" for i in range(n)], "database": name,
                          "source": "", "source_subject": [f"{name}/s{i % 4}" for i in range(n)]})
        if name == "JAFFE" and labels_test:
            m["label_id"] = [0] * n
            d = tmp_path / "build/datasets" / name
            d.mkdir(parents=True)
            np.save(d / "images.npy", rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
            m.to_csv(d / "manifest.csv", index=False)
        else:
            save_dataset(tmp_path / "build/datasets" / name,
                         rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), m)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def test_bad_cells_fail_before_training(tmp_path):
    params = _tiny_params(tmp_path, labels_test="contempt")
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        cell_spec(params, "resnet", "TINY")
    spec = cell_spec(params, "vgg16", "TINY")
    with pytest.raises(ValueError, match=r"test set JAFFE: label names \['contempt'\]"):
        run_cell(spec, tmp_path / "build/datasets", tmp_path / "cache")
    params["models"]["vgg16"]["k"] = 40
    with pytest.raises(ValueError, match="k = 40 exceeds its 19 layers"):
        run_cell(cell_spec(params, "vgg16", "TINY"), tmp_path / "build/datasets",
                 tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_finetune_stage_outputs_mlflow_and_resume(tmp_path, monkeypatch, capsys):
    _tiny_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("FER_CONCURRENT_STAGES", "2")     # as fer.train.parallel_repro -j 2 sets
    from stages import finetune

    # kill the cell after its first seed, then re-run: seed 0 comes from the cache
    import fer.train.grid
    real = fer.train.grid.train_two_step
    calls = []

    def counting(*a, **kw):
        calls.append(a[3])
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(fer.train.grid, "train_two_step", counting)
    with pytest.raises(KeyboardInterrupt):
        finetune.main("vgg16", "TINY")
    monkeypatch.setattr(fer.train.grid, "train_two_step", real)
    finetune.main("vgg16", "TINY")
    assert calls == [0, 1]
    cell = json.loads((tmp_path / "metrics/finetune/vgg16-TINY.json").read_text())
    out = capsys.readouterr().out
    assert "vgg16-TINY seed 0 (cached)" in out and "vgg16-TINY seed 1:" in out
    # the record says nothing about the kill: a resumed cell writes the bytes of an
    # uninterrupted one (timings aside)
    assert all("resumed" not in r for r in cell["per_seed"])
    assert cell["concurrent_stages"] == 2              # its epoch seconds were shared
    assert set(cell["summary"]) == {"CK+", "JAFFE"} and cell["summary"]["CK+"]["accuracy"]["n"] == 2
    # the kept seed is chosen on validation subjects held out of the train set, never on a
    # test set: the best validation accuracy wins (ties: the lower seed)
    vals = {r["seed"]: r["val"]["accuracy"] for r in cell["per_seed"]}
    assert cell["selection"] == {"on": "val", "test_selected": False, "key": "val_selected",
                                 "seed": cell["selected_seed"], "train_only_images": 0}
    assert cell["selected_seed"] == max(vals, key=lambda k: (vals[k], -k))
    for r in cell["per_seed"]:                      # one subject of 4 (5 or 6 images)
        assert r["val_subjects"] == 1 and r["val_images"] + r["train_images"] == 21
    chosen = next(r for r in cell["per_seed"] if r["seed"] == cell["selected_seed"])
    acc = cell["summary"]["CK+"]["accuracy"]
    assert acc["val_selected"] == chosen["tests"]["CK+"]["accuracy"]
    assert acc["max_test_selected"] == max(r["tests"]["CK+"]["accuracy"] for r in cell["per_seed"])
    assert "max" not in acc and "selected" not in acc
    # Table 2's row of the trained base (aggregate builds no model): Keras's counts for
    # VGG16 with the cell's k, as a freshly built base gives them
    from fer.train.backbones import table2
    spec = cell_spec(load_params(tmp_path / "params.yaml"), "vgg16", "TINY").model
    assert cell["architecture"] == table2([spec])[0] == {
        "model": "vgg16", "layers": 19, "k": spec.k, "params": 14714688,
        "trainable_params": {5: 7079424}[spec.k]}
    out = tmp_path / "build/models/vgg16/TINY"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "model.keras"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["preprocess"] == "caffe" and meta["labels"] == list(EMOTIONS)
    assert meta["seed"] == cell["selected_seed"] and meta["selected_on"] == "val"
    assert meta["test_selected"] is False and meta["val_accuracy"] == chosen["val"]["accuracy"]
    assert (tmp_path / "reports/finetune/vgg16-TINY/confusion_CKplus.png").is_file()

    import mlflow
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["finetune"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1                     # the killed cell's run was resumed
    last = parents.iloc[0]
    assert last["status"] == "FINISHED"
    children = runs[runs["tags.mlflow.parentRunId"] == last["run_id"]]
    assert sorted(children["tags.mlflow.runName"]) == ["vgg16-TINY-seed0", "vgg16-TINY-seed1"]
    assert not (tmp_path / ".cache/finetune/vgg16-TINY.mlflow_run.json").exists()
    assert {"metrics.CKplus_accuracy", "metrics.JAFFE_macro_f1", "metrics.step2_loss",
            "metrics.step1_val_accuracy"} <= set(children.dropna(axis=1, how="all").columns)
    assert not np.isnan(last["metrics.CKplus_accuracy_mean"])
    assert not np.isnan(last["metrics.CKplus_accuracy_val_selected"])
    assert not np.isnan(last["metrics.CKplus_accuracy_max_test_selected"])
    assert "metrics.CKplus_accuracy_max" not in runs.columns
    assert last["tags.selected_on"] == "val"
    assert last["tags.git_commit"] and last["tags.dvc_exp_name"] == "workspace"


def test_queued_experiments_log_to_the_repository_store(tmp_path):
    from fer.core.tracking import store_root
    repo = tmp_path / "repo"
    copy = repo / ".dvc" / "tmp" / "exps" / "standalone" / "tmpabc123"
    copy.mkdir(parents=True)
    assert store_root(copy) == repo.resolve()
    assert store_root(repo) == repo.resolve()


def test_empty_or_incomplete_train_sets_fail_before_training(tmp_path):
    from fer.data.dataset import Dataset
    from fer.train.grid import check_cell
    params = _tiny_params(tmp_path)
    spec = cell_spec(params, "vgg16", "TINY")
    tests = {}
    m = pd.DataFrame({"label": ["sad", "happy"], "label_id": [5, 3]})
    two = Dataset(np.zeros((2, 32, 32, 3), np.uint8), m)
    with pytest.raises(ValueError, match="TINY: no images of class\\(es\\) angry, disgust, "
                                         "fear, neutral, surprise"):
        check_cell(spec, two, tests)
    with pytest.raises(ValueError, match="train set TINY is empty"):
        check_cell(spec, Dataset(np.zeros((0, 32, 32, 3), np.uint8), m.iloc[:0]), tests)


def test_test_set_selection_is_the_papers_protocol_and_says_so(tmp_path):
    params = _tiny_params(tmp_path)
    params["train"]["select_on"] = "CK+"
    spec = cell_spec(params, "vgg16", "TINY")
    assert spec.select_on == "CK+"
    from fer.train.grid import selected, selection_key
    assert selection_key("CK+") == "test_selected" and selection_key("val") == "val_selected"
    rs = [{"seed": 0, "val": {"accuracy": 0.9}, "tests": {"CK+": {"accuracy": 0.2}}},
          {"seed": 1, "val": {"accuracy": 0.1}, "tests": {"CK+": {"accuracy": 0.7}}}]
    assert selected(rs, "val")["seed"] == 0 and selected(rs, "CK+")["seed"] == 1
    params["train"]["select_on"] = "val"
    params["train"]["val_fraction"] = 0.0
    with pytest.raises(ValueError, match="select_on=val needs train.val_fraction > 0"):
        cell_spec(params, "vgg16", "TINY")
    params["train"]["select_on"] = "FER2013"
    with pytest.raises(ValueError, match="must be 'val'"):
        cell_spec(params, "vgg16", "TINY")


def test_resume_cache_is_keyed_by_content_not_size(tmp_path):
    """The stale-seed bug: same-size images.npy with other bytes must not resume."""
    from fer.train.grid import fingerprint, prepare_cache
    params = _tiny_params(tmp_path)
    spec = cell_spec(params, "vgg16", "TINY")
    datasets, cache = tmp_path / "build/datasets", tmp_path / "cache"
    prepare_cache(spec, datasets, cache)
    (cache / "seed_0.json").write_text("{}")
    before = fingerprint(spec, datasets)
    prepare_cache(spec, datasets, cache)                   # same content: kept
    assert (cache / "seed_0.json").is_file()
    arr = np.load(datasets / "TINY/images.npy")
    arr[0, 0, 0, 0] ^= 1                                    # one bit, same size
    size = (datasets / "TINY/images.npy").stat().st_size
    np.save(datasets / "TINY/images.npy", arr)
    assert (datasets / "TINY/images.npy").stat().st_size == size
    assert fingerprint(spec, datasets) != before
    prepare_cache(spec, datasets, cache)
    assert not (cache / "seed_0.json").exists()
    (cache / "seed_0.json").write_text("{}")
    params["train"]["lr_step2"] = 5e-5                      # a param that shapes the result
    assert fingerprint(cell_spec(params, "vgg16", "TINY"), datasets) != fingerprint(spec, datasets)
    old = fingerprint(spec, datasets)
    jaffe = datasets / "JAFFE/manifest.csv"                 # a test set's labels
    jaffe.write_text(jaffe.read_text().replace("angry", "happy", 1))
    fp = fingerprint(spec, datasets)
    assert fp != old
    prepare_cache(spec, datasets, cache)
    assert not (cache / "seed_0.json").exists() and (cache / "fingerprint").read_text() == fp


def test_a_test_set_without_some_classes_is_scored_on_the_classes_it_has():
    """CK+48 has no neutral: balanced accuracy and macro-F1 average over the six present
    classes, the confusion matrix keeps all seven predicted columns."""
    y = np.array([0, 0, 1, 2, 3, 5, 6, 6])                  # no neutral (4)
    pred = np.array([0, 4, 1, 2, 3, 5, 6, 0])               # one sample predicted neutral
    m = classification_metrics(y, np.eye(7)[pred])
    assert m["absent_classes"] == ["neutral"]
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx(np.mean([0.5, 1, 1, 1, 1, 0.5]))
    from sklearn.metrics import f1_score
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, labels=[0, 1, 2, 3, 5, 6],
                                                   average="macro"))
    assert len(m["confusion"]) == 7 and m["confusion"][0][4] == 1
    assert m["support"]["neutral"] == 0
