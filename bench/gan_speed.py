"""DCGAN training speed on this machine: seconds per epoch and images/s, at the demo
size (the demo profile's gan: 32 px, 3 blocks) and at the paper's 224 px (5 blocks, one
epoch of 144 images).
Prints JSON. Usage: python bench/gan_speed.py [--skip-224]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from fer.core.params import compose  # noqa: E402
from fer.core.schema import Gan  # noqa: E402
from fer.gan.dcgan import make_gan  # noqa: E402


def epoch_time(params: Gan, n: int, batch: int, epochs: int) -> dict:
    gan = make_gan(params)
    x = np.random.default_rng(0).uniform(-1, 1, (n, params.image_size, params.image_size, 3))
    x = x.astype("float32")
    gan.train_on_batch(x[:batch])                        # build + trace, not timed
    t = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, n, batch):
            gan.train_on_batch(x[i:i + batch])
    s = (time.perf_counter() - t) / epochs
    return {"image_size": params.image_size, "blocks": params.blocks,
            "base_filters": params.base_filters, "images": n,
            "batch_size": batch, "seconds_per_epoch": round(s, 3),
            "images_per_s": round(n / s, 1),
            "generator_params": gan.generator.count_params(),
            "discriminator_params": gan.discriminator.count_params()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--skip-224", action="store_true")
    args = p.parse_args()
    demo, paper = (Gan.model_validate(compose(o)["gan"]) for o in (["profile=demo"], []))
    out = {"demo": epoch_time(demo, 20, 32, 20)}
    if not args.skip_224:
        out["paper_224"] = epoch_time(paper, 144, 32, 1)
    out["paper_2000_epochs_hours_here"] = (
        round(out["paper_224"]["seconds_per_epoch"] * 2000 / 3600, 1) if "paper_224" in out
        else None)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
