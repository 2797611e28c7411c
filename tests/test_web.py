"""The web demo end to end in headless Chromium (playwright-core driving /usr/bin/chromium)."""
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer.data.crop import crop_resize, detect_face, expand_box, load_detector
from fer.edge.tfjs import WEB

from conftest import BOUNDS

from needs import APT_CHROMIUM, NPM_WEB, chromium, needs, web_module

CHROMIUM = chromium()
pytestmark = [
    needs(Path(CHROMIUM).exists(), f"needs Debian's chromium at {CHROMIUM} ({APT_CHROMIUM})"),
    needs(web_module("playwright-core"),
          f"needs web/node_modules/playwright-core ({NPM_WEB})")]


def page_result(model_dir, image, shot):
    r = subprocess.run(["node", str(WEB / "e2e.mjs"), str(model_dir), str(image), str(shot)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def iou(a, b):
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def assert_pipeline_crop(res, rgb, margin, square):
    """The page's box is the pipeline's rule applied to its detection, and the pixels it
    fed the model are fer/data/crop.py crop_resize's for that box."""
    assert res["box"] == list(expand_box(res["detection"], rgb.shape, margin, square))
    pixels = np.array(res["pixels"], np.uint8).reshape(32, 32, 3)
    diff = np.abs(pixels.astype(int) - crop_resize(rgb, res["box"], 32))
    assert diff.max() <= 1                 # IPP's resize rounding (tests/test_web_parity.py)
    try:                                   # cv2's own code: the very same pixels
        cv2.setUseOptimized(False)
        np.testing.assert_array_equal(pixels, crop_resize(rgb, res["box"], 32))
    finally:
        cv2.setUseOptimized(True)
    return pixels


def test_page_predicts_like_the_python_model(exported, tmp_path):
    tmp, _, _, _, model = exported
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    shot = tmp_path / "page.png"
    res = page_result(tmp / "float32", photo, shot)
    assert res["backend"] in ("webgl", "wasm", "cpu") and not res["statusIsError"]
    # an export without crop rules: the raw detection, as the pipeline's defaults crop
    assert res["rules"] == {"margin": 0, "square": False, "confidence": 0.5,
                            "frame_tolerance": None}             # Infinity, as JSON
    assert res["box"] == res["detection"]
    crop = assert_pipeline_crop(res, data.astronaut(), 0.0, False)
    ref = model.predict(crop[None], verbose=0)[0]          # 0-255 pixels
    assert np.abs(np.array(res["probs"]) - ref).max() <= 1e-4
    assert res["label"] == EMOTIONS[int(ref.argmax())]
    opencv = detect_face(load_detector(), data.astronaut(), 0.5).box
    assert iou(res["detection"], opencv) > 0.5      # the pipeline's detector agrees
    assert [b["label"] for b in res["bars"]] == EMOTIONS
    assert [b["value"] for b in res["bars"]] == [f"{p * 100:.1f} %" for p in res["probs"]]
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"


def test_page_applies_the_models_crop_rules_and_shows_labels_as_text(exported, tmp_path):
    """An export whose metadata carries crop rules (margin, square) and a label holding
    markup: the page crops as the pipeline would and prints the label verbatim."""
    source = exported[0] / "float32"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for shard in source.glob("*.bin"):
        (model_dir / shard.name).symlink_to(shard)
    spec = json.loads((source / "model.json").read_text())
    fer = spec["userDefinedMetadata"]["fer"]
    fer["crop"] = {"margin": 0.2, "square": True, "confidence": 0.4, "frame_tolerance": 0.2}
    fer["labels"] = ['<img src=x onerror="document.title=1">angry'] + fer["labels"][1:]
    (model_dir / "model.json").write_text(json.dumps(spec))
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    res = page_result(model_dir, photo, tmp_path / "page.png")
    assert res["rules"] == fer["crop"]
    x0, y0, x1, y1 = res["box"]
    assert abs((x1 - x0) - (y1 - y0)) <= 1                   # squared (up to rounding)
    assert x1 - x0 >= 1.3 * (res["detection"][2] - res["detection"][0])   # 20 % each side
    assert_pipeline_crop(res, data.astronaut(), 0.2, True)
    assert res["bars"][0]["label"] == fer["labels"][0] and res["bars"][0]["elements"] == 0
    assert [b["label"] for b in res["bars"][1:]] == EMOTIONS[1:]


def test_bad_files_show_a_message(exported, tmp_path):
    tmp = exported[0]
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    res = page_result(tmp / "float32", text, tmp_path / "a.png")
    assert res["error"] == "not an image" and res["statusIsError"]
    assert "notes.png is not an image" in res["status"]
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 180, np.uint8)).save(blank)
    res = page_result(tmp / "float32", blank, tmp_path / "b.png")
    assert res["error"] == "no face" and "No face found in wall.png" in res["status"]


# webgl is heavy here (30 s of software GL, out of `make test`); the wasm case runs the
# same page code, and tests/test_edge.py compares each variant's numbers
@pytest.mark.parametrize("backend,bound", [
    ("wasm", 1e-4), pytest.param("webgl", 1e-3, marks=pytest.mark.heavy)])
def test_browser_runtime_matches_keras(exported, backend, bound):
    from fer.edge.tfjs import run_js_models
    tmp, _, images, reference, _ = exported
    # two variants one after another in one page, as edge_eval runs them
    res, res8 = run_js_models([tmp / "float32", tmp / "uint8"], images, backend, runs=3,
                              where="chromium", warmup=1)
    assert res["backend"] == backend and res["browser"]
    assert np.abs(res["probs"] - reference).max() <= bound
    assert len(res["ms"]) == 3
    assert res8["meta"]["variant"] == "uint8" and len(res8["ms"]) == 3
    assert res["warmup"] == res8["warmup"] == 1
    assert np.abs(res8["probs"] - reference).max() <= BOUNDS["uint8"]
    if backend == "wasm":          # a latency-only page run makes no pass over the images
        lat = run_js_models([tmp / "uint8"], images, backend, runs=2, where="chromium",
                            warmup=1, classify=False)[0]
        assert lat["probs"] is None and len(lat["ms"]) == 2 and lat["warmup"] == 1
