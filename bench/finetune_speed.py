"""Fine-tune speed, naive vs cached (fast) path, measured side by side in one process.

Per backbone, on synthetic faces at the demo size: both paths train the same seeds,
interleaved (naive, fast, naive, fast, ...), so the machine's load hits both alike; the
ratios are what matter. Reported per backbone:
  step1_s / step2_s     median steady epoch (the first epoch of each step, which traces
                        and compiles, is reported apart as *_first_s), naive and fast
  ideal_step2           1 / (1 - share of a naive step-2 epoch spent in the frozen
                        prefix's forward pass), the prefix timed alone in the same run
  cell_s                train + predict the test set for every seed, the cache build
                        included (the base weights are fixed across seeds, as ImageNet
                        weights are: saved once to a temporary weights file); each path
                        trains its seeds as a grid cell does (`train_two_step(reuse=True)`:
                        built and traced once, weights reloaded per seed); --no-reuse
                        builds and traces a fresh classifier per seed instead
  overhead_share        share of a cell's time outside steady epochs (tracing, building,
                        compiling, cache build, predict)
  peak_rss_mb           peak resident memory of each path (VmHWM, reset before each)
  step2_gflops          approximate FLOP/s of a fast step-2 epoch (3x the forward FLOPs
                        of the trainable convolutions and dense layers) vs a float32
                        matmul peak measured in the same run
Optional (--switches): fast step-2 epoch with mixed_bfloat16 and with XLA, and float16
cache storage, each against float32 / no XLA, with the largest loss difference.
--epochs1 / --epochs2 set each step's epochs apart (the paper's 10 and 65: the overhead
share of a paper-shaped cell); --paths fast (or naive) measures one path alone, without
the ratios, differences and ideal that need both.
Usage: python bench/finetune_speed.py [--models vgg16 vgg19] [--size 80] [--images 224]
       [--epochs 3] [--epochs1 N] [--epochs2 N] [--seeds 2] [--paths naive fast]
       [--no-reuse] [--switches]
"""
import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from fer.core.params import compose
from fer.core.schema import Train
from fer.data.dataset import Dataset
from fer.train import finetune
from fer.train.finetune import (configure, predict, seed_everything, train_two_step,
                          validation_split)
from fer.data.labels import EMOTIONS
from fer.train.backbones import ModelSpec, build_base, build_classifier

K = {"vgg16": 5, "vgg19": 9, "inception_v3": 140, "inception_resnet_v2": 371}
PRE = {"vgg16": "caffe", "vgg19": "caffe", "inception_v3": "scale01",
       "inception_resnet_v2": "scale01"}


def paper_train(**overrides) -> Train:
    """The paper profile's train section with `overrides`, validated."""
    return Train.model_validate({**compose([])["train"], **overrides})


def synthetic(n, size, seed, subjects=10):
    rng = np.random.default_rng(seed)
    m = pd.DataFrame({"path": [f"x{i}" for i in range(n)],
                      "label": [EMOTIONS[i % 7] for i in range(n)], "subject": "",
                      "database": "bench", "source": "",
                      "source_subject": [f"B/s{i % subjects}" for i in range(n)]})
    m["label_id"] = [i % 7 for i in range(n)]
    return Dataset(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), m)


def reset_peak():
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb():
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024


def matmul_gflops(n=2048, reps=5):
    a = tf.random.normal((n, n))
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    t = time.perf_counter()
    for _ in range(reps):
        f(a).numpy()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def train_flops(model, batch):
    """3x the forward FLOPs of the trainable Conv2D/Dense layers of `model` (approx.)."""
    import keras
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if not layer.trainable or not layer.weights:
            continue
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw, cin, cout = layer.kernel.shape
            total += 2 * out[1] * out[2] * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * np.prod(layer.kernel.shape)
    return 3 * total * batch


def steady(xs):
    return statistics.median(xs[1:]) if len(xs) > 1 else float("nan")


def bench_backbone(name, args, tmp, peak):
    data, test = synthetic(args.images, args.size, 0), synthetic(70, args.size, 1)
    seed_everything(0)
    weights = tmp / f"{name}.weights.h5"
    build_base(ModelSpec(name=name, k=K[name], preprocess=PRE[name],
                         weights="none", input_size=args.size)).save_weights(weights)
    spec = ModelSpec(name=name, k=K[name], preprocess=PRE[name],
                     weights=str(weights), input_size=args.size)
    os.environ["FER_CACHE_DIR"] = str(tmp / "cache")
    naive = paper_train(epochs_step1=args.epochs1, epochs_step2=args.epochs2, fast_path=False)
    fast = naive.model_copy(update={"fast_path": True})
    runs = {p: [] for p in args.paths}
    cell = {p: 0.0 for p in args.paths}
    rss = {p: 0.0 for p in args.paths}
    both = len(args.paths) == 2
    cells = {}
    for seed in range(args.seeds):
        for path, train in (("naive", naive), ("fast", fast)):
            if path not in args.paths:
                continue
            # each path its own cell, as a grid cell's process keeps one (`train_two_step`
            # keeps a single cell: interleaved, each seed was built and traced again)
            finetune.Cell.current = cells.get(path)
            reset_peak()
            t = time.perf_counter()
            model, history, seconds = train_two_step(spec, train, data, seed,
                                                     reuse=args.reuse)
            p = predict(model, test)
            cell[path] += time.perf_counter() - t
            rss[path] = max(rss[path], peak_mb())
            runs[path].append((history, seconds, p))
            cells[path] = finetune.Cell.current
            if path == "fast":
                trainer = finetune._FAST[model].trainer
    out = {"model": name, "k": K[name], "size": args.size, "images": args.images,
           "epochs_per_step": [args.epochs1, args.epochs2], "seeds": args.seeds,
           "reuse": args.reuse, "paths": list(args.paths)}
    if "fast" in runs:
        out["cut"] = runs["fast"][0][1]["cache"]["cut"]
        out["cache_mb"] = round(runs["fast"][0][1]["cache"]["bytes"] / 2**20, 1)
    for step in ("step1", "step2"):
        for path in runs:
            out[f"{step}_{path}_s"] = round(statistics.median(
                steady(r[1][step]) for r in runs[path]), 3)
            out[f"{step}_{path}_first_s"] = round(statistics.median(
                r[1][step][0] for r in runs[path]), 3)
        if both:
            out[f"{step}_ratio"] = round(out[f"{step}_naive_s"] / out[f"{step}_fast_s"], 2)
    for path in runs:
        out[f"cell_{path}_s"] = round(cell[path], 1)
        epochs = sum(sum(r[1][s][1:]) for r in runs[path] for s in ("step1", "step2"))
        out[f"overhead_share_{path}"] = round(1 - epochs / cell[path], 3)
        out[f"peak_rss_{path}_mb"] = round(rss[path])
    if "fast" in runs:
        n_train = len(validation_split(data, naive, 0)[0])
        out["step2_fast_gflops"] = round(
            train_flops(trainer, n_train) / out["step2_fast_s"] / 1e9, 1)
        out["step2_fast_share_of_matmul_peak"] = round(out["step2_fast_gflops"] / peak, 3)
    if not both:
        return out
    out["cell_ratio"] = round(cell["naive"] / cell["fast"], 2)
    out["max_loss_diff"] = float(max(
        abs(a - b) for (h0, _, _), (h1, _, _) in zip(runs["naive"], runs["fast"])
        for s in h0 for k in h0[s] for a, b in zip(h0[s][k], h1[s][k])))
    out["max_prob_diff"] = float(max(np.abs(a[2] - b[2]).max()
                                     for a, b in zip(runs["naive"], runs["fast"])))
    # ideal step-2 ratio: the prefix's forward pass over the train images, timed alone
    # (normalisation included: the classifier's first layer)
    prefix = finetune._fast_models(*build_classifier(spec), spec.k)[1].prefix
    prefix.predict_on_batch(data.images[:32].astype(np.float32))
    t = time.perf_counter()
    for i in range(0, len(data), 32):
        prefix.predict_on_batch(data.images[i:i + 32].astype(np.float32))
    share = (time.perf_counter() - t) / out["step2_naive_s"]
    out["prefix_forward_share"] = round(share, 3)
    out["ideal_step2"] = round(1 / (1 - share), 2) if share < 1 else None
    if args.switches:
        out.update(switch_bench(spec, naive, data))
    return out


def switch_bench(spec, naive, data):
    """Fast step-2 steady epoch with each switch against the default, interleaved."""
    fast = naive.model_copy(update={"fast_path": True})
    variants = {"default": fast,
                "mixed_bfloat16": fast.model_copy(update={"mixed_precision": "mixed_bfloat16"}),
                "xla": fast.model_copy(update={"jit_compile": True, "deterministic": False}),
                "cache_float16": fast.model_copy(update={"cache_dtype": "float16"})}
    res = {}
    for name, train in variants.items():
        try:
            _, h, s = train_two_step(spec, train, data, 0)
            res[name] = (h, s)
        except Exception as e:       # report, do not hide, a switch this machine lacks
            res[name] = (None, f"{type(e).__name__}: {str(e)[:200]}")
    configure(naive)
    h0, s0 = res["default"]
    out = {}
    for name, (h, s) in res.items():
        if name == "default":
            continue
        if h is None:
            out[f"{name}_error"] = s
            continue
        for step in ("step1", "step2"):
            out[f"{name}_{step}_speedup"] = round(steady(s0[step]) / steady(s[step]), 2)
        out[f"{name}_max_loss_diff"] = float(max(abs(a - b) for st in h0 for k in h0[st]
                                                 for a, b in zip(h0[st][k], h[st][k])))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=list(K))
    p.add_argument("--size", type=int, default=80)
    p.add_argument("--images", type=int, default=224)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--epochs1", type=int, help="step-1 epochs (default: --epochs)")
    p.add_argument("--epochs2", type=int, help="step-2 epochs (default: --epochs)")
    p.add_argument("--paths", nargs="+", choices=("naive", "fast"), default=["naive", "fast"])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--no-reuse", dest="reuse", action="store_false",
                   help="a fresh classifier per seed (default: reused, as a grid cell does)")
    p.add_argument("--switches", action="store_true")
    args = p.parse_args()
    args.epochs1 = args.epochs if args.epochs1 is None else args.epochs1
    args.epochs2 = args.epochs if args.epochs2 is None else args.epochs2
    args.paths = sorted(set(args.paths), key=("naive", "fast").index)
    result = {"machine": f"{__import__('os').cpu_count()} CPU cores, "
                         f"GPUs: {len(tf.config.list_physical_devices('GPU'))}",
              "matmul_peak_gflops": round(matmul_gflops(), 1), "backbones": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = bench_backbone(name, args, Path(tmp), result["matmul_peak_gflops"])
            result["backbones"].append(r)
            print(json.dumps(r), flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
