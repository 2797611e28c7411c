import yaml

from fer.core.params import ROOT, compose, load_params
from fer.data.labels import EMOTIONS


def test_params_yaml_is_in_sync_with_conf():
    params = load_params(ROOT / "params.yaml")
    assert params == compose([f"profile={params['profile']['name']}"])


def test_paper_defaults_and_demo_profile():
    paper = compose([])
    assert paper["profile"]["name"] == "paper"
    assert paper["crop"]["size"] == 224 and paper["crop"]["confidence"] == 0.5
    a = paper["augment"]
    assert (a["copies"], a["rotation"], a["zoom"], a["height"], a["width"], a["contrast"]) \
        == (5, 0.1, 0.1, 0.2, 0.2, 0.2)
    g = paper["gan"]
    assert (g["image_size"], g["blocks"], g["latent_dim"], g["epochs"], g["n_generate"]) \
        == (224, 5, 100, 2000, 150)
    demo = compose(["profile=demo", "augment.rotation=0.05"])
    assert demo["crop"]["size"] == 80 and demo["gan"]["epochs"] <= 400
    assert (g["base_filters"], g["lr"], demo["gan"]["base_filters"], demo["gan"]["lr"]) == \
        (32, 2e-4, 16, 1e-3)
    assert demo["augment"]["rotation"] == 0.05
    assert demo["merge"] == paper["merge"]


def test_dvc_yaml_covers_every_database_and_emotion():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = load_params(ROOT / "params.yaml")
    assert dvc["stages"]["import"]["foreach"] == "${data.databases}"
    assert dvc["stages"]["gan"]["foreach"] == "${gan.emotions}"
    assert tuple(params["gan"]["emotions"]) == EMOTIONS
    gan_outs = dvc["stages"]["gan"]["do"]["outs"]
    assert "build/derived/${gan.part}/${item}" in gan_outs
    assert {"build/crop", "build/derived"} <= set(dvc["stages"]["merge"]["deps"])
    hydra = (ROOT / ".dvc" / "config").read_text()
    assert "[hydra]" in hydra and "enabled = true" in hydra
