"""Per-seed overhead: a fresh classifier per seed vs the process's reused, traced-once
classifier (`train_two_step(reuse=True)`), measured side by side in one process.

Per backbone, on synthetic faces at the demo size, the same seeds train both ways,
interleaved (fresh, reused, fresh, reused, ...) so the machine's load hits both alike.
Reported: seconds per seed each way (the reused path's first seed traces, so it is
reported apart), the ratio of medians over the further seeds, whether the per-epoch
histories are identical, and the largest difference of test probabilities.
Usage: python bench/trace_reuse.py [--models vgg16 inception_v3] [--size 80]
       [--images 224] [--epochs 1] [--seeds 3]
"""
import argparse
import json
import statistics
import time

import numpy as np

from fer.train.finetune import predict, train_two_step
from fer.train.backbones import ModelSpec

from finetune_speed import K, PRE, paper_train, synthetic


def bench(name, size, images, epochs, seeds):
    spec = ModelSpec(name=name, k=K[name], preprocess=PRE[name], weights="none", input_size=size)
    train = paper_train(epochs_step1=epochs, epochs_step2=epochs, fast_path=False)
    data, test = synthetic(images, size, 0), synthetic(images // 2, size, 1)
    secs, diff, same = {"fresh": [], "reused": []}, 0.0, True
    for seed in range(seeds):
        out = {}
        for way in ("fresh", "reused"):
            t = time.perf_counter()
            model, history, _ = train_two_step(spec, train, data, seed, reuse=way == "reused")
            out[way] = (history, predict(model, test))
            secs[way].append(round(time.perf_counter() - t, 2))
        same &= out["fresh"][0] == out["reused"][0]
        diff = max(diff, float(np.abs(out["fresh"][1] - out["reused"][1]).max()))
    later = statistics.median(secs["reused"][1:])
    return {"model": name, "size": size, "images": images, "epochs": [epochs, epochs],
            "seed_s": secs, "reused_first_seed_s": secs["reused"][0],
            "fresh_over_reused": round(statistics.median(secs["fresh"][1:]) / later, 2),
            "histories_identical": same, "max_prob_diff": diff}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["vgg16", "inception_v3"])
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--images", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    print(json.dumps([bench(m, a.size, a.images, a.epochs, a.seeds) for m in a.models],
                     indent=1))


if __name__ == "__main__":
    main()
