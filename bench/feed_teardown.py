"""Where a fast-path epoch lost time inside Keras's `fit`: the PyDataset feed fer.finetune
used until c369c23 vs the same batches through a plain tf.data pipeline, a bare
`train_on_batch` loop, and `fer.feed.fit`, the epoch loop that replaced `Model.fit`.

On VGG16's fast-path step-2 trainer (80 px, k = 5, cached cut activations of 224
synthetic images, batch 32), measured in one process, variants interleaved:
  epoch_s           wall time of one `fit(epochs=1)` / one loop over the batches
  after_epoch_s     from the end of the epoch (`on_epoch_end`) until `fit` returns: for
                    Keras's fit, the feed's iterator being torn down
  stalls            calls whose after_epoch_s exceeds 0.5 s
The feeds yield identical batches (`fer.feed.BatchFeed`); only the wrapper differs.
Usage: PYTHONPATH=. python bench/feed_teardown.py [--rounds 10]
"""
import argparse
import json
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from fer import feed as fer_feed
from fer.feed import BatchFeed, PyDatasetView
from fer.finetune import _compile, _fast_models, seed_everything
from fer.models import ModelSpec, build_classifier, normalize, unfreeze_last


class EpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.at = time.perf_counter()


def as_tf_data(feed):
    """The batches of `feed`, in its order, through `tf.data.Dataset.from_generator`."""
    x = tf.TensorSpec((None,) + feed.arrays[0].shape[1:], tf.float32)
    y = tf.TensorSpec((None,), tf.as_dtype(feed.labels.dtype))

    def batches():
        for i in range(len(feed)):
            yield feed[i]
    return tf.data.Dataset.from_generator(batches, output_signature=(x, y)).prefetch(
        tf.data.AUTOTUNE)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    seed_everything(0)
    spec = ModelSpec("vgg16", 5, "caffe", "none", 80)
    model, base = build_classifier(spec, 0)
    (_, trainer), cut = _fast_models(spec, model, base)
    unfreeze_last(base, spec.k)
    _compile(trainer, 1e-4)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (224, 80, 80, 3), dtype=np.uint8)
    labels = rng.integers(0, 7, 224)
    at_cut = np.concatenate([cut.prefix.predict_on_batch(normalize(images[i:i + 32], "caffe"))
                             for i in range(0, len(images), 32)])
    feed = BatchFeed(at_cut, labels, np.arange(len(images)), 32, None, seed=0)

    def fit(data, fit=None):
        end, start = EpochEnd(), time.perf_counter()
        if fit is None:
            trainer.fit(data, epochs=1, verbose=0, callbacks=[end])
        else:
            fit(trainer, data, epochs=1, callbacks=[end])
        now = time.perf_counter()
        return now - start, now - end.at

    def loop():
        start = time.perf_counter()
        for i in range(len(feed)):
            trainer.train_on_batch(*feed[i])
        return time.perf_counter() - start, 0.0

    variants = {"pydataset": lambda: fit(PyDatasetView(feed)),
                "tf_data": lambda: fit(as_tf_data(feed)),
                "train_on_batch": loop, "fer_feed_fit": lambda: fit(feed, fer_feed.fit)}
    for run in variants.values():          # trace and warm up
        run()
    times = {k: [] for k in variants}
    for _ in range(args.rounds):
        for k, run in variants.items():
            times[k].append(run())
    out = {"rounds": args.rounds, "batches": len(feed)}
    for k, ts in times.items():
        out[k] = {"epoch_s": round(statistics.median(t for t, _ in ts), 2),
                  "after_epoch_s": [round(a, 2) for _, a in ts],
                  "stalls": sum(a > 0.5 for _, a in ts)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
