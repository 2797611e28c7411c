"""Activation cache entry build: `fer.train.activations.forward` (one graph traced once, open
batch dimension) vs Keras's `predict_on_batch`, which the cache used before (traced
again for the short last batch, then once more with a relaxed shape).

Per backbone, at the demo size and k, on synthetic images: each way computes the frozen
prefix's activations of the same images in its own fresh process (a trace is per
process), one after the other, so both see the same machine. Reported: seconds each
way, their ratio, and the largest difference between the two ways' activations (other
graphs may round a last bit differently).
Usage: python bench/cache_trace.py [--models inception_v3 inception_resnet_v2]
       [--size 80] [--images 112]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEMO_K = {"vgg16": 5, "vgg19": 5, "inception_v3": 40, "inception_resnet_v2": 40}


def build_once(name: str, size: int, images: int, one_trace: bool, out: str) -> None:
    """In this process: the prefix's activations of `images` synthetic images, by
    `fer.train.activations.activations` (one trace) or `predict_on_batch`; writes them to
    `out` (.npy) and prints the seconds taken."""
    import keras

    from fer.train.activations import CacheSpec, activations, model_key
    from fer.train.finetune import _fast_models
    from fer.train.backbones import ModelSpec, build_classifier
    from finetune_speed import PRE

    keras.utils.set_random_seed(0)
    spec = ModelSpec(name=name, k=DEMO_K[name], preprocess=PRE[name],
                     weights="none", input_size=size)
    prefix = _fast_models(*build_classifier(spec), spec.k)[1].prefix   # normalisation first
    x = np.random.default_rng(1).integers(0, 256, (images, size, size, 3), dtype=np.uint8)
    start = time.perf_counter()
    if one_trace:
        with tempfile.TemporaryDirectory() as tmp:
            arrays, _ = activations(prefix, [x], model_key(prefix, {}, "float32"),
                                    CacheSpec(tmp), log=lambda _: None)
            first = np.array(arrays[0])
    else:                            # as the cache computed them before
        parts = []
        for i in range(0, images, 32):
            ys = prefix.predict_on_batch(x[i:i + 32].astype(np.float32))
            parts.append(np.asarray(ys[0] if isinstance(ys, (list, tuple)) else ys))
        first = np.concatenate(parts)
    seconds = time.perf_counter() - start
    np.save(out, first)
    print(json.dumps({"seconds": round(seconds, 2)}))


def bench(name: str, size: int, images: int) -> dict:
    secs, acts = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for way in ("predict_on_batch", "one_trace"):
            out = str(Path(tmp) / f"{way}.npy")
            r = subprocess.run([sys.executable, __file__, "--one", name, str(size),
                                str(images), way, out], capture_output=True, text=True,
                               check=True)
            secs[way] = json.loads(r.stdout.strip().splitlines()[-1])["seconds"]
            acts[way] = np.load(out)
    return {"model": name, "size": size, "images": images, "k": DEMO_K[name],
            "seconds": secs, "ratio": round(secs["predict_on_batch"] / secs["one_trace"], 2),
            "max_abs_diff": float(np.abs(acts["predict_on_batch"] - acts["one_trace"]).max())}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        name, size, images, way, out = sys.argv[2:7]
        build_once(name, int(size), int(images), way == "one_trace", out)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["inception_v3", "inception_resnet_v2"],
                    choices=sorted(DEMO_K))
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--images", type=int, default=112)
    args = ap.parse_args()
    print(json.dumps({"cache_trace": [bench(m, args.size, args.images)
                                      for m in args.models]}, indent=1))


if __name__ == "__main__":
    main()
