"""mini_xception's training step with its FusedBatchNormalization layers against the same
network with Keras's own BatchNormalization, interleaved in one process (the demo's
48 px grey input, batch 32). Prints JSON: ms per step of each and their ratio.
Usage: python bench/batchnorm_speed.py [--steps 40] [--rounds 3]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fer.train.backbones import FusedBatchNormalization, mini_xception  # noqa: E402


def with_keras_batchnorm(layer):
    cls = (keras.layers.BatchNormalization if isinstance(layer, FusedBatchNormalization)
           else type(layer))
    return cls.from_config(layer.get_config())


def classifier(base: keras.Model) -> keras.Model:
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, keras.layers.Dense(7, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args()
    keras.utils.set_random_seed(0)
    fused = mini_xception()
    models = {"fused": classifier(fused),
              "keras": classifier(keras.models.clone_model(
                  fused, clone_function=with_keras_batchnorm))}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.batch, 48, 48, 1)).astype("float32")
    y = rng.integers(0, 7, a.batch)
    for m in models.values():                    # build and trace, not timed
        m.train_on_batch(x, y)
    ms = {k: [] for k in models}
    for _ in range(a.rounds):                    # interleaved: both see the same load
        for name, m in models.items():
            t = time.perf_counter()
            for _ in range(a.steps):
                m.train_on_batch(x, y)
            ms[name].append(1000 * (time.perf_counter() - t) / a.steps)
    best = {k: min(v) for k, v in ms.items()}
    print(json.dumps({"bench": "batchnorm_speed", "batch": a.batch, "steps": a.steps,
                      "rounds": a.rounds,
                      "ms_per_step": {k: round(v, 1) for k, v in best.items()},
                      "fused_over_keras": round(best["fused"] / best["keras"], 3)}))


if __name__ == "__main__":
    main()
