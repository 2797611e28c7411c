"""Edge inference (paper section 6.2): TF.js export with weight quantization, measured
by TF.js itself (`web/run_model.mjs` in Node + WASM, `web/bench.mjs` in headless Chromium).

model.keras -> a SavedModel in a temporary directory (its bytes differ on every save) ->
TF.js graph model (tensorflowjs's SavedModel converter: its runtime cannot load Keras 3
layers models), in float32, uint16, uint8 (the paper's "int16"/"int8") and float16. The
files are byte-identical for the same model.keras (model.json rewritten with sorted keys);
the model takes 0-255 RGB pixels, and its metadata travels in model.json for `web/fer.js`.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import timeit
from pathlib import Path

import numpy as np

from fer.core.atomic import atomic_dir
from fer.train.backbones import Normalize

VARIANTS = {"float32": None, "uint16": {"uint16": "*"}, "uint8": {"uint8": "*"},
            "float16": {"float16": "*"}}
SHARD_BYTES = 4 * 2**20            # the converter's default weight shard size
WEB = Path(__file__).resolve().parents[2] / "web"


def dir_bytes(path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def export_tfjs(saved_model_dir, out_dir, variant: str, meta: dict) -> int:
    """Convert one variant (checked by `export_variants`) atomically; returns its size on
    disk in bytes."""
    # tensorflowjs imports TF Decision Forests, whose banner imports IPython off a terminal
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as convert

    with atomic_dir(out_dir) as tmp:
        convert.convert_tf_saved_model(str(saved_model_dir), str(tmp),
                                       signature_def="serving_default",
                                       saved_model_tags="serve",
                                       quantization_dtype_map=VARIANTS[variant],
                                       weight_shard_size_bytes=SHARD_BYTES,
                                       metadata={"fer": {**meta, "variant": variant}})
        model_json = tmp / "model.json"
        model_json.write_text(json.dumps(json.loads(model_json.read_text()), sort_keys=True))
    return dir_bytes(out_dir)


def quantize_variant(float32_dir, out_dir, variant: str, meta: dict) -> int:
    """A float32 TF.js graph model (`export_tfjs`) rewritten as `variant` atomically, its
    weights quantized by the converter's own `write_weights`: byte-identical to a direct
    conversion, without optimising the graph again. Returns its size on disk in bytes."""
    from tensorflowjs import read_weights, write_weights

    model_json = json.loads((Path(float32_dir) / "model.json").read_text())
    groups = read_weights.read_weights(model_json["weightsManifest"], str(float32_dir))
    with atomic_dir(out_dir) as tmp:
        model_json["weightsManifest"] = write_weights.write_weights(
            groups, str(tmp), shard_size_bytes=SHARD_BYTES, write_manifest=False,
            quantization_dtype_map=VARIANTS[variant])
        model_json["userDefinedMetadata"] = {"fer": {**meta, "variant": variant}}
        (tmp / "model.json").write_text(json.dumps(model_json, sort_keys=True))
    return dir_bytes(out_dir)


def export_variants(keras_file, out_root, variants, meta: dict) -> dict:
    """model.keras -> `out_root/<variant>/` for each variant (converted once, then
    quantized per variant); returns the size in bytes of each variant."""
    import keras

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown TF.js variant(s) {unknown}; expected {sorted(VARIANTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        saved_model, float32 = Path(tmp) / "saved_model", Path(tmp) / "float32"
        model = keras.models.load_model(keras_file, custom_objects={"Normalize": Normalize})
        model.export(str(saved_model), verbose=False)
        export_tfjs(saved_model, float32, "float32", meta)
        return {v: quantize_variant(float32, Path(out_root) / v, v, meta) for v in variants}


RUNNERS = {"node": "run_model.mjs", "chromium": "bench.mjs"}


def run_node_script(script: str, images: np.ndarray, args: list, what: str,
                    package: str = "@tensorflow/tfjs") -> dict:
    """Run `web/<script> <raw images file> <count> <size> <output file> <args>` in Node on
    uint8 images (N, S, S, 3); returns the JSON it writes. `what` names the run in errors;
    `package` must be installed under web/."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if not (WEB / "node_modules" / package).is_dir():
        raise RuntimeError(f"{WEB}/node_modules missing: run `npm ci --prefix web` "
                           "(make install does)")
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "images.u8", Path(tmp) / "out.json"
        images.tofile(raw)
        r = subprocess.run(["node", str(WEB / script),
                            *map(str, [raw, len(images), images.shape[1], out, *args])],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{r.stderr[-3000:]}")
        return json.loads(out.read_text())


def run_js_models(model_dirs, images: np.ndarray, backend: str = "wasm", runs: int = 30,
                  where: str = "node", warmup: int = 3, classify: bool = True) -> list:
    """Run TF.js models one after another in one Node process or headless Chromium page
    on uint8 images: per model, probs (N, 7; None unless `classify`), batch-1 latencies
    of the first image (ms, after `warmup` runs), meta, and the backend that ran."""
    dirs = [Path(d).resolve() for d in model_dirs]
    result = run_node_script(RUNNERS[where], images,
                             [backend, runs, warmup, int(classify), *dirs],
                             f"TF.js run of {', '.join(map(str, model_dirs))} in {where}")
    extra = {k: v for k, v in result.items() if k != "models"}
    return [{**m, **extra, "probs": None if m["probs"] is None
             else np.asarray(m["probs"], np.float32)} for m in result["models"]]


def server_latency(model, image: np.ndarray, runs: int = 30, warmup: int = 3) -> list:
    """Python TF batch-1 latencies (ms) on one 0-255 image, after `warmup` runs."""
    x = np.asarray(image[None], np.float32)
    for _ in range(warmup):
        model(x, training=False)
    seconds = timeit.repeat(lambda: np.asarray(model(x, training=False)), repeat=runs, number=1)
    return [s * 1000 for s in seconds]


def latency(ms) -> dict:
    ms = np.asarray(ms, np.float64)
    return {"median_ms": round(float(np.median(ms)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2), "runs": int(ms.size)}
