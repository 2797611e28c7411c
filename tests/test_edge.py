"""TF.js export round trip, measured by TF.js itself (Node + WASM)."""
import json

import numpy as np
import pytest

from fer.edge.tfjs import dir_bytes, export_variants, latency, run_js_models
from fer.data.labels import EMOTIONS

from conftest import BOUNDS


@pytest.fixture(scope="module")
def js_all(exported):
    """Every variant in one Node process, one after another (as edge_eval runs them)."""
    tmp, _, images, _, _ = exported
    return run_js_models([tmp / v for v in sorted(BOUNDS)], images, "wasm", runs=5,
                         warmup=2)


@pytest.mark.parametrize("variant", sorted(BOUNDS))
def test_js_matches_keras(exported, js_all, variant):
    reference = exported[3]
    js = js_all[sorted(BOUNDS).index(variant)]
    assert js["backend"] == "wasm"
    assert js["probs"].shape == (24, 7)
    assert np.abs(js["probs"] - reference).max() <= BOUNDS[variant]
    assert (js["probs"].argmax(1) == reference.argmax(1)).all()
    assert js["meta"]["preprocess"] == "caffe" and js["meta"]["variant"] == variant
    assert len(js["ms"]) == 5 and latency(js["ms"])["runs"] == 5
    assert js["warmup"] == 2                          # edge.warmup reaches the runner


def test_one_process_for_every_variant_gives_each_ones_own_numbers(exported, js_all):
    """A model run after others in the same process gives the probabilities it gives
    alone in its own process: the variants of one runtime share a process only."""
    tmp, _, images, _, _ = exported
    for variant in ("uint16", "uint8"):               # the 3rd and 4th of the process
        alone = run_js_models([tmp / variant], images, "wasm", runs=1, warmup=1)[0]
        assert np.array_equal(alone["probs"], js_all[sorted(BOUNDS).index(variant)]["probs"])
        assert alone["meta"]["variant"] == variant and len(alone["ms"]) == 1
        assert alone["warmup"] == 1
    assert len({js["meta"]["variant"] for js in js_all}) == 4


def test_a_latency_only_run_classifies_nothing(exported):
    """classify=False (a runtime with accuracy: false): no pass over the images, only the
    warm-up and timed batch-1 runs of the first image."""
    tmp, _, images, _, _ = exported
    res = run_js_models([tmp / "uint8"], images, "wasm", runs=2, warmup=1, classify=False)[0]
    assert res["probs"] is None
    assert len(res["ms"]) == 2 and res["warmup"] == 1 and res["meta"]["variant"] == "uint8"


def test_sizes_and_metadata(exported):
    tmp, sizes, _, _, _ = exported
    assert 0.45 < sizes["uint16"] / sizes["float32"] < 0.55
    assert 0.45 < sizes["float16"] / sizes["float32"] < 0.55
    assert 0.2 < sizes["uint8"] / sizes["float32"] < 0.3
    assert sizes["float32"] == dir_bytes(tmp / "float32")
    model_json = json.loads((tmp / "uint8" / "model.json").read_text())
    fer = model_json["userDefinedMetadata"]["fer"]
    assert fer["labels"] == list(EMOTIONS) and fer["input_size"] == 32
    assert model_json["format"] == "graph-model"
    with pytest.raises(ValueError, match="unknown TF.js variant"):
        export_variants(tmp / "model.keras", tmp / "x", ["uint8", "int4"], {})
    assert not (tmp / "x").exists()


def test_export_twice_gives_identical_bytes(exported, tmp_path):
    tmp = exported[0]
    meta = json.loads((tmp / "uint8" / "model.json").read_text())["userDefinedMetadata"]["fer"]
    meta.pop("variant")
    export_variants(tmp / "model.keras", tmp_path, ["uint8"], meta)   # a new SavedModel too
    files = sorted(p.name for p in (tmp / "uint8").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "uint8").iterdir())
    assert "model.json" in files and len(files) > 1
    for name in files:
        assert (tmp / "uint8" / name).read_bytes() == (tmp_path / "uint8" / name).read_bytes(), name


@pytest.mark.parametrize("script", ["run_model.mjs", "bench.mjs"])
def test_runners_reject_a_command_line_without_classify(script, tmp_path):
    """The old argument order (a model folder where <classify 1|0> goes) is a usage error,
    not a silently latency-only run missing its first model."""
    import subprocess
    from fer.edge.tfjs import WEB
    r = subprocess.run(["node", str(WEB / script), "x.u8", "1", "8", str(tmp_path / "o.json"),
                        "wasm", "1", "1", str(tmp_path / "model")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "usage:" in r.stderr and "<classify 1|0>" in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_each_variant_is_byte_identical_to_its_direct_conversion(exported, tmp_path):
    """export_variants converts once (float32) and re-quantizes the weights per variant;
    every file equals what the converter writes converting that variant directly (the
    two kinds of quantization: affine uint8, as uint16, and float16)."""
    import keras
    from fer.edge.tfjs import export_tfjs
    tmp = exported[0]
    meta = json.loads((tmp / "uint8" / "model.json").read_text())["userDefinedMetadata"]["fer"]
    meta.pop("variant")
    saved = tmp_path / "saved_model"
    keras.models.load_model(tmp / "model.keras").export(str(saved), verbose=False)
    for variant in ("uint8", "float16"):
        export_tfjs(saved, tmp_path / variant, variant, meta)
        mine = sorted(p.name for p in (tmp / variant).iterdir())
        assert mine == sorted(p.name for p in (tmp_path / variant).iterdir())
        assert len(mine) >= 2                           # model.json + weight shard(s)
        for name in mine:
            assert (tmp / variant / name).read_bytes() == \
                (tmp_path / variant / name).read_bytes(), (variant, name)
