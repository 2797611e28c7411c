"""Reference models: face-api's expression network in TF.js (Node, WASM) on the project's
own crops; the label mapping checked on a real, unambiguous face (scikit-image's smiling
astronaut) and the baselines stage end to end on a tiny test set."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from skimage import data

from fer.edge.table10 import with_references
from fer.evaluate.baselines import LABEL_MAPS, run_reference, to_emotions
from fer.data.crop import crop_resize, detect_face, load_detector
from fer.data.dataset import save_dataset
from fer.data.labels import EMOTIONS
from fer.core.params import compose

from needs import APT_NODE, NPM_WEB, needs, node, web_module


def needs_node(test):
    """node and face-api's TF.js model in web/node_modules."""
    test = needs(web_module("@vladmandic/face-api"),
                 f"needs web/node_modules/@vladmandic/face-api ({NPM_WEB})")(test)
    return needs(node(), f"needs node ({APT_NODE})")(test)


@pytest.fixture(scope="module")
def astronaut_crop():
    """The astronaut's face as the crop stage cuts it (OpenCV SSD box, resized)."""
    image = data.astronaut()
    box = detect_face(load_detector(), image, 0.5).box
    return {s: crop_resize(image, box, s) for s in (80, 224)}


def test_label_map_covers_the_seven_emotions_once():
    m = LABEL_MAPS["face-api"]
    assert sorted(m.values()) == sorted(EMOTIONS)
    labels = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
    probs = np.eye(7, dtype=np.float32)                 # one-hot per face-api label
    out = to_emotions(probs, labels, m)
    assert [EMOTIONS[i] for i in out.argmax(1)] == ["neutral", "happy", "sad", "angry",
                                                    "fear", "disgust", "surprise"]
    with pytest.raises(ValueError, match=r"labels \['contempt'\] have no emotion mapping"):
        to_emotions(np.ones((1, 7)), labels[:6] + ["contempt"], m)
    with pytest.raises(ValueError, match=r"missing \['surprise'\]"):
        to_emotions(np.ones((1, 7)), labels, {**m, "surprised": "happy"})


@needs_node
@pytest.mark.parametrize("size", [80, 224])          # demo and paper crop sizes
def test_face_api_says_the_smiling_astronaut_is_happy(astronaut_crop, size):
    res = run_reference("face-api", astronaut_crop[size][None], runs=2)
    assert res["backend"] == "wasm" and res["package"].startswith("@vladmandic/face-api@")
    assert res["probs"].shape == (1, 7) and res["probs"].sum() == pytest.approx(1, abs=1e-4)
    assert EMOTIONS[int(res["probs"][0].argmax())] == "happy"
    assert res["probs"][0][EMOTIONS.index("happy")] > 0.9
    assert 0.3 < res["size_mb"] < 0.4 and len(res["ms"]) == 2


@needs_node
def test_baselines_stage_scores_like_the_grid(tmp_path, monkeypatch, astronaut_crop):
    params = compose(["profile=demo"])
    params["report"].update(bootstrap_resamples=200, latency_runs=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    face = astronaut_crop[80]
    for name, labels in (("CK+", ["happy", "sad"]), ("JAFFE", ["happy"])):
        m = pd.DataFrame({"path": [f"{name}{i}" for i in range(len(labels))], "label": labels,
                          "subject": "s0", "database": name, "source": "",
                          "source_subject": f"{name}/s0"})
        save_dataset(tmp_path / "build/datasets" / name, np.stack([face] * len(labels)), m)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from stages import baselines
    baselines.main()
    out = json.loads((tmp_path / "metrics/baselines.json").read_text())["models"]
    assert [r["name"] for r in out] == ["face-api"]
    r = out[0]
    assert r["kind"] == "reference, not trained here" and r["runtime"] == "node (wasm)"
    ck, jaffe = r["tests"]["CK+"], r["tests"]["JAFFE"]
    assert ck["accuracy"] == 0.5 and jaffe["accuracy"] == 1.0   # 'happy' for every copy
    happy, sad = EMOTIONS.index("happy"), EMOTIONS.index("sad")
    assert ck["confusion"][happy][happy] == 1 and ck["confusion"][sad][happy] == 1
    assert ck["bootstrap"]["accuracy"]["low"] == 0.0 and ck["bootstrap"]["accuracy"]["high"] == 1.0
    assert r["runs"] == 2 and r["median_ms"] > 0 and 0.3 < r["size_mb"] < 0.4
    assert (tmp_path / "reports/baselines/face-api/confusion_CKplus.png").stat().st_size > 5000
    md = (tmp_path / "reports/baselines.md").read_text()
    assert "| face-api (@vladmandic/face-api@1.7.15) | CK+ | 50.00 | [0.00, 100.00] |" in md
    import mlflow                                       # the same numbers in MLflow
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = mlflow.search_runs(experiment_names=["baselines"], output_format="list")[0]
    assert run.data.tags["kind"] == "reference, not trained here"
    assert run.data.metrics["CKplus_accuracy"] == 0.5 and run.data.metrics["JAFFE_accuracy"] == 1.0
    assert run.data.metrics["median_ms"] == r["median_ms"]
    row = with_references([], out, ["CK+", "JAFFE"])[0]     # Table 10's reference row
    assert row["model"] == "face-api (@vladmandic/face-api@1.7.15), reference, not trained here"
    assert (row["CK+"], row["JAFFE"], row["location"]) == (0.5, 1.0, "node (wasm)")
    assert row["size_mb"] == r["size_mb"] and "max_abs_diff" not in row
