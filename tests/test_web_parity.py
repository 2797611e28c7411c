"""web/fer.js (run by node through web/check.mjs) against the Python pipeline: the crop
box (fer/data/crop.py expand_box and in_frame, the detected box rule) and the crop pixels
(fer/data/crop.py crop_resize); and the input normalisation, which the exported TF.js model
does itself (fer/train/backbones.py Normalize, every mode), as Keras does."""
import json
import subprocess

import cv2
import numpy as np

from fer.data.crop import crop_resize, expand_box, in_frame
from fer.edge.tfjs import WEB, export_variants, run_js_models
from fer.train.keras_io import save_model
from fer.train.backbones import Normalize

from needs import NPM_WEB, needs, web_module

pytestmark = needs(web_module("@tensorflow/tfjs"),
                   f"needs TF.js in web/node_modules/@tensorflow/tfjs ({NPM_WEB})")
MODES = ("caffe", "scale01", "tf")
# (mode, channels, size): the paper's three, and the compact backbone's grey, area-resized
# (4 -> 3 px: overlapping weights), per-image standardised input
NORMALIZE = [(m, 3, None) for m in MODES] + [("per_image", 1, 3)]


def js(tmp_path, job):
    """Run one check.mjs job; returns the path of its output."""
    (tmp_path / "job.json").write_text(json.dumps(job))
    out = tmp_path / "out"
    r = subprocess.run(["node", str(WEB / "check.mjs"), str(tmp_path / "job.json"), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_exported_models_take_pixels_and_normalise_as_keras_does(tmp_path):
    """A model whose first layer is Normalize(mode), converted to TF.js: the same
    outputs for the same 0-255 pixels, channel order included (caffe's RGB -> BGR)."""
    import keras
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    keras.utils.set_random_seed(0)
    refs, dirs = [], []
    for mode, channels, size in NORMALIZE:
        inp = keras.Input((4, 4, 3))
        dense = keras.layers.Dense(7, kernel_initializer="identity")     # first 7 values
        model = keras.Model(inp, dense(keras.layers.Flatten()(
            Normalize(mode, channels, size)(inp))))
        save_model(model, tmp_path / f"{mode}.keras")
        export_variants(tmp_path / f"{mode}.keras", tmp_path / mode, ["float32"],
                        {"mode": mode})
        refs.append(model.predict(images, verbose=0))
        dirs.append(tmp_path / mode / "float32")
    for (mode, *_), ref, js in zip(NORMALIZE, refs, run_js_models(dirs, images, runs=1,
                                                                   warmup=0)):
        # float32 rounding of the same operations (caffe's |x| < 152: 1 ulp 1.5e-5)
        np.testing.assert_allclose(js["probs"], ref, rtol=0, atol=2e-5, err_msg=mode)
    np.testing.assert_allclose(refs[0][0, :6], [-103.939, -116.779, -123.68,  # 0, then 255
                                                255 - 103.939, 255 - 116.779, 255 - 123.68],
                               atol=1e-4)


def random_boxes(rng, n):
    cases = []
    for i in range(n):
        H, W = (int(v) for v in rng.integers(16, 900, 2))
        x0, y0 = int(rng.integers(0, W - 8)), int(rng.integers(0, H - 8))
        x1, y1 = int(rng.integers(x0 + 8, W + 1)), int(rng.integers(y0 + 8, H + 1))
        margin = [0.0, 0.1, 0.25, 0.5, float(rng.uniform(0, 0.6))][i % 5]
        cases.append({"box": [x0, y0, x1, y1], "shape": [H, W], "margin": margin,
                      "square": bool(i % 2)})
    # halves that Python rounds to the even neighbour: centre 10.5, side 5 -> 8.0/13.0,
    # squared 3x8 box in a 20-px image -> x from 5.5 to 13.5
    cases += [{"box": [8, 0, 13, 8], "shape": [20, 20], "margin": 0.0, "square": True},
              {"box": [3, 3, 8, 6], "shape": [20, 20], "margin": 0.25, "square": True},
              {"box": [0, 0, 20, 20], "shape": [20, 20], "margin": 0.5, "square": False}]
    return cases


def test_expand_box_matches_python(tmp_path):
    cases = random_boxes(np.random.default_rng(1), 4000)
    got = json.loads(js(tmp_path, {"op": "boxes", "cases": cases}).read_text())
    ref = [list(expand_box(c["box"], c["shape"], c["margin"], c["square"])) for c in cases]
    assert got == ref
    assert sum(g != c["box"] for g, c in zip(got, cases)) > 3000    # the rule did something


def test_detection_box_follows_in_frame(tmp_path):
    rng = np.random.default_rng(2)
    xy = np.round(rng.uniform(-40, 300, (3000, 4)) * 2) / 2      # many exact halves
    cases = [{"box": {"x": a, "y": b, "width": c, "height": d}, "width": 320, "height": 240,
              "tolerance": float(t)}
             for (a, b, c, d), t in zip(xy.tolist(), rng.choice([0.0, 0.1, 0.3], len(xy)))]
    cases.append({"box": {"x": 2.5, "y": 3.5, "width": 10, "height": 10},
                  "width": 99, "height": 99, "tolerance": 0.1})
    cases.append({"box": {"x": -3, "y": 0, "width": 30, "height": 30},   # 10 % out: kept
                  "width": 99, "height": 99, "tolerance": 0.1})
    cases.append({"box": {"x": -4, "y": 0, "width": 30, "height": 30},   # 13 % out: not
                  "width": 99, "height": 99, "tolerance": 0.1})
    got = json.loads(js(tmp_path, {"op": "detections", "cases": cases}).read_text())
    ref = []
    for c in cases:
        b = c["box"]
        box = in_frame((b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]),
                       c["width"], c["height"], c["tolerance"])
        ref.append(None if box is None else list(box))
    assert got == ref
    assert got[-3:] == [[2, 4, 12, 14], [0, 0, 27, 30], None]
    clipped = sum(g is not None and (c["box"]["x"] < 0 or c["box"]["y"] < 0)
                  for g, c in zip(got, cases))
    assert sum(g is None for g in got) > 1000 and sum(g is not None for g in got) > 300
    assert clipped > 20                  # boxes a little outside are kept and clipped


def test_crop_resize_matches_cv2(tmp_path):
    rng = np.random.default_rng(3)
    H, W = 260, 300
    smooth = np.stack(np.meshgrid(np.linspace(0, 255, W), np.linspace(255, 0, H)), -1)
    image = np.clip(np.concatenate([smooth, smooth[..., :1]], -1)
                    + rng.normal(0, 40, (H, W, 3)), 0, 255).astype(np.uint8)
    image.tofile(tmp_path / "image.u8")
    cases = [{"box": [10, 20, 250, 240], "size": 224},      # both sides shrink: INTER_AREA
             {"box": [0, 0, 300, 260], "size": 80},         # area, non-integer factor
             {"box": [0, 0, 192, 192], "size": 64},         # area, 1/(64/192) is not 3
             {"box": [0, 0, 160, 160], "size": 80},         # area, 2x2 blocks: halves up
             {"box": [3, 3, 123, 123], "size": 40},         # area, 3x3 blocks
             {"box": [40, 30, 100, 90], "size": 224},       # enlarge: INTER_CUBIC
             {"box": [5, 7, 37, 120], "size": 80},          # one side shrinks: cubic
             {"box": [0, 200, 80, 260], "size": 80},        # corner, same width: cubic
             {"box": [13, 17, 45, 49], "size": 32}]         # same size: copy
    for _ in range(20):
        x0, y0 = int(rng.integers(0, W - 8)), int(rng.integers(0, H - 8))
        cases.append({"box": [x0, y0, int(rng.integers(x0 + 8, W + 1)),
                              int(rng.integers(y0 + 8, H + 1))],
                      "size": int(rng.choice([32, 48, 75, 80, 224]))})
    out = js(tmp_path, {"op": "crop", "image": str(tmp_path / "image.u8"), "width": W,
                        "height": H, "cases": cases}).read_bytes()
    sizes = [c["size"] ** 2 * 3 for c in cases]
    assert len(out) == sum(sizes)
    got = [np.frombuffer(b, np.uint8).reshape(c["size"], c["size"], 3) for c, b in
           zip(cases, np.split(np.frombuffer(out, np.uint8), np.cumsum(sizes)[:-1]))]
    try:                                  # cv2's own C++ code, without Intel IPP: exact
        cv2.setUseOptimized(False)
        for c, g in zip(cases, got):
            np.testing.assert_array_equal(g, crop_resize(image, c["box"], c["size"]), str(c))
    finally:
        cv2.setUseOptimized(True)
    # what the pipeline runs (opencv-python on x86 resizes INTER_CUBIC with IPP, which
    # rounds differently): at most 1 level, on about 4 % of the cubic values here
    diffs = [np.abs(g.astype(int) - crop_resize(image, c["box"], c["size"]))
             for c, g in zip(cases, got)]
    assert max(d.max() for d in diffs) <= 1
    assert sum((d > 0).sum() for d in diffs) / sum(d.size for d in diffs) < 0.08
