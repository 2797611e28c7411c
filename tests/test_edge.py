"""TF.js export round trip, measured by TF.js itself (Node + WASM)."""
import json

import numpy as np
import pytest

from fer.edge import dir_bytes, export_variants, latency, run_js
from fer.labels import EMOTIONS

from conftest import BOUNDS


@pytest.mark.parametrize("variant", sorted(BOUNDS))
def test_js_matches_keras(exported, variant):
    tmp, _, images, reference, _ = exported
    js = run_js(tmp / variant, images, "wasm", runs=5)
    assert js["backend"] == "wasm"
    assert js["probs"].shape == (24, 7)
    assert np.abs(js["probs"] - reference).max() <= BOUNDS[variant]
    assert (js["probs"].argmax(1) == reference.argmax(1)).all()
    assert js["meta"]["preprocess"] == "caffe" and js["meta"]["variant"] == variant
    assert len(js["ms"]) == 5 and latency(js["ms"])["runs"] == 5


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
