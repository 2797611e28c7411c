"""Two-step transfer learning (paper section 4.2).

Step 1: base frozen, `epochs_step1` epochs of Adam(lr_step1) on the new head.
Step 2: the last k base layers trainable, `epochs_step2` epochs of Adam(lr_step2).
A seed fixes the weight initialisation, the validation split and every epoch's
shuffling; with TensorFlow's op determinism on, a CPU run is bit-reproducible.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import keras
import tensorflow as tf

from .dataset import Dataset
from .models import ModelSpec, build_classifier, freeze_base, normalize, unfreeze_last
from .splits import holdout_by_source


@dataclass(frozen=True)
class TrainSpec:
    epochs_step1: int = 10
    epochs_step2: int = 65
    lr_step1: float = 1e-3
    lr_step2: float = 1e-4
    batch_size: int = 32
    val_fraction: float = 0.1    # source subjects held out: val curves and seed selection


class BatchFeed(keras.utils.PyDataset):
    """Normalised batches straight from a (memory-mapped) uint8 array, reshuffled every
    epoch by a generator keyed by (seed, epoch)."""

    def __init__(self, images, labels, indices, batch_size, preprocess, seed=None):
        super().__init__()
        self.images, self.labels = images, labels
        self.indices = np.asarray(indices)
        self.batch_size, self.preprocess, self.seed = batch_size, preprocess, seed
        self.epoch = 0
        self.order = self._order()

    def _order(self):
        if self.seed is None:
            return self.indices
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.indices)

    def __len__(self):
        return -(-len(self.indices) // self.batch_size)

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        return normalize(self.images[idx], self.preprocess), self.labels[idx]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _compile(model, lr):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def validation_split(data: Dataset, train: TrainSpec, seed: int):
    """(train_idx, val_idx) of `data`: `val_fraction` of its source subjects validate."""
    return holdout_by_source(data.manifest, train.val_fraction, seed)


def train_two_step(spec: ModelSpec, train: TrainSpec, data: Dataset, seed: int,
                   callbacks=(), verbose: int = 0):
    """Fine-tune one model on `data` minus its validation subjects
    (`validation_split(data, train, seed)`); returns (model, history, seconds per epoch)."""
    seed_everything(seed)
    labels = data.labels
    tr, va = validation_split(data, train, seed)
    feed = BatchFeed(data.images, labels, tr, train.batch_size, spec.preprocess, seed)
    val = (BatchFeed(data.images, labels, va, train.batch_size, spec.preprocess)
           if len(va) else None)
    model, base = build_classifier(spec)
    history, seconds = {}, {}
    for step, epochs, lr in ((1, train.epochs_step1, train.lr_step1),
                             (2, train.epochs_step2, train.lr_step2)):
        if step == 1:
            freeze_base(base)
        else:
            unfreeze_last(base, spec.k)
        _compile(model, lr)
        timer = EpochTimer()
        start = train.epochs_step1 if step == 2 else 0
        h = model.fit(feed, validation_data=val, epochs=start + epochs, initial_epoch=start,
                      callbacks=[timer, *callbacks], verbose=verbose)
        history[f"step{step}"] = {k: [float(v) for v in vs] for k, vs in h.history.items()}
        seconds[f"step{step}"] = timer.seconds
    return model, history, seconds


def predict(model, data: Dataset, preprocess: str, batch_size: int = 64) -> np.ndarray:
    feed = BatchFeed(data.images, data.labels, np.arange(len(data)), batch_size, preprocess)
    return model.predict(feed, verbose=0)
