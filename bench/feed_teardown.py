"""How a fast-path epoch is fed to `Model.fit`: the time per epoch, and the time `fit`
takes after an epoch's last batch (where a feed's iterator teardown once stalled it:
1.4-2.0 s in half of the epochs with the PyDataset feed used until c369c23).

The VGG16 step-2 trainer (suffix + head, demo size 80 px, 224 images, batch 32) trains
one epoch at a time on its cut activations, read from a memory-mapped .npy as the
activation cache holds them, the same batches in the same order each way:
  numpy_function    `fer.train.finetune.batches`: rows gathered per batch from the memory map
                    by a `tf.numpy_function`, one batch ahead (what training uses)
  in_graph          the whole array copied into the graph (`from_tensor_slices`) and
                    gathered there: the alternative for sets small enough to copy
  train_on_batch    a bare loop over the same batches: no tf.data, no fit
Usage: PYTHONPATH=. python bench/feed_teardown.py [--rounds 10]
"""
import argparse
import json
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from fer.train.activations import CacheSpec, activations, model_key
from fer.train.finetune import Cell, batches, epoch_order, seed_everything
from fer.train.backbones import ModelSpec, unfreeze_last

from finetune_speed import paper_train


class EpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.at = time.perf_counter()


def in_graph(arrays, labels, rows, batch_size, seed, epoch):
    """`batches`' batches of one epoch, gathered from tensors held whole in the graph."""
    data = tf.data.Dataset.from_tensors((tf.constant(arrays[0]), tf.constant(labels)))
    order = np.array_split(epoch_order(rows, seed, epoch),
                           range(batch_size, len(rows), batch_size))
    idx = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([np.sort(o) for o in order]))
    return tf.data.Dataset.zip((idx, data.repeat())).map(
        lambda i, d: (tf.gather(d[0], i), tf.gather(d[1], i))).prefetch(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    seed_everything(0)
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="none", input_size=80)
    cell = Cell(spec, paper_train(), 0, fast=True)
    trainer, prefix = cell.steps[1], cell.cut.prefix
    unfreeze_last(cell.base, spec.k)
    trainer.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (224, 80, 80, 3), dtype=np.uint8)
    labels = rng.integers(0, 7, 224)
    rows = np.arange(len(images))
    with tempfile.TemporaryDirectory() as tmp:
        (at_cut,), _ = activations(prefix, [images], model_key(prefix, {}, "float32"),
                                   CacheSpec(tmp), log=lambda _: None)
        epoch = [0]

        def fit(make):
            end, start = EpochEnd(), time.perf_counter()
            trainer.fit(make(epoch[0]), epochs=1, verbose=0, callbacks=[end], shuffle=False)
            now = time.perf_counter()
            return now - start, now - end.at

        def loop():
            start = time.perf_counter()
            for x, y in batches([at_cut], labels, rows, 32, 0, (epoch[0], epoch[0] + 1)):
                trainer.train_on_batch(x, y)
            return time.perf_counter() - start, 0.0

        variants = {
            "numpy_function": lambda: fit(lambda e: batches([at_cut], labels, rows, 32, 0,
                                                            (e, e + 1))),
            "in_graph": lambda: fit(lambda e: in_graph([at_cut], labels, rows, 32, 0, e)),
            "train_on_batch": loop}
        for run in variants.values():          # trace and warm up
            run()
        times = {k: [] for k in variants}
        for r in range(args.rounds):
            epoch[0] = r + 1
            for k, run in variants.items():
                times[k].append(run())
    out = {"rounds": args.rounds, "batches": -(-len(rows) // 32),
           "cut_mb": round(at_cut.nbytes / 2**20, 1)}
    for k, ts in times.items():
        out[k] = {"epoch_s": round(statistics.median(t for t, _ in ts), 3),
                  "after_epoch_s": [round(a, 3) for _, a in ts],
                  "stalls": sum(a > 0.5 for _, a in ts)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
