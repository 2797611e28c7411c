"""Batches from (memory-mapped) arrays, and the epoch loop that trains a compiled Keras
model on them.

`fit` runs the model's own `train_step` / `test_step` (what `Model.fit` runs), each
traced once as a `tf.function` whose batch dimension is left open, over `BatchFeed`'s
batches, the next batch read by a background thread while the current step runs.
`Model.fit` took a `keras.utils.PyDataset` before (until c369c23): it wraps one in
`tf.data.Dataset.from_generator` and, as soon as an epoch's batches are used up,
builds the next epoch's iterator; tearing one down kept the main thread waiting
1.4-2.0 s in about half of the epochs (`bench/feed_teardown.py`), a third of a
fast-path VGG16 epoch at the demo size.

The numbers are those `Model.fit` gave that feed, bit for bit (tests/test_feed.py):
- the same batches in the same order: a training feed's rows are permuted by a
  generator keyed by (seed, epoch), where `fit` advances the epoch once as it starts
  and once after every epoch (Keras calls the dataset's `on_epoch_end` when `fit`
  begins), and the batches of an epoch are taken in the order of one
  `random.shuffle(list(range(n_batches)))` from Python's global generator, as Keras
  shuffles a PyDataset's batches (`fit(shuffle=True)`), so the generator state that
  `keras.utils.set_random_seed` fixes is drawn from exactly as before;
- the same graph: `train_step` on (x, y) with an open batch dimension, as `fit` traced
  it for the PyDataset's signature, after `fer.models.normalize_graph` has turned the
  uint8 images into the very floats NumPy's `normalize` gave that feed;
- the same metrics: reset when an epoch starts, accumulated over its batches, then reset
  for the validation pass, whose values come out as `val_<name>`.
"""
from __future__ import annotations

import random
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import keras
import numpy as np
import tensorflow as tf

from .models import normalize, normalize_graph


class BatchFeed:
    """Batches straight from (memory-mapped) arrays, reshuffled every epoch when `seed` is
    given: uint8 images that the graph normalises (`preprocess`), or float32 rows."""

    def __init__(self, images, labels, indices, batch_size, preprocess, seed=None, epoch=0,
                 pad=False):
        """`images`: one array or a list of arrays (a model's several inputs): uint8
        images whose normalisation `preprocess` names (done in the step's graph,
        `fer.models.normalize_graph`), or with `preprocess` None anything fed as float32
        as it is (cached activations).
        `pad`: fill the last batch up to `batch_size` by repeating its last row (for
        prediction, which then drops those rows): every batch has one shape, so a row's
        numbers never depend on how many rows share its batch.
        `epoch`: a feed taking over from another goes on from its epoch."""
        self.arrays = list(images) if isinstance(images, (list, tuple)) else [images]
        if preprocess and any(a.dtype != np.uint8 for a in self.arrays):
            raise ValueError(f"a feed normalising its images ({preprocess}) takes uint8 "
                             f"arrays, got {[str(a.dtype) for a in self.arrays]}")
        self.labels = labels
        self.indices = np.asarray(indices)
        self.batch_size, self.preprocess, self.seed = batch_size, preprocess, seed
        self.pad = pad
        self.epoch = epoch
        self.order = self._order()

    def _order(self):
        if self.seed is None:
            return self.indices
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.indices)

    def __len__(self):
        return -(-len(self.indices) // self.batch_size)

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        if self.pad and len(idx) < self.batch_size:
            idx = np.concatenate([idx, np.repeat(idx[-1:], self.batch_size - len(idx))])
        xs = [np.asarray(a[idx]) if self.preprocess else np.asarray(a[idx], np.float32)
              for a in self.arrays]
        return (xs[0] if len(xs) == 1 else tuple(xs)), self.labels[idx]

    def signature(self):
        """(x, y) `tf.TensorSpec`s of this feed's batches, batch dimension open."""
        dtype = tf.uint8 if self.preprocess else tf.float32
        xs = tuple(tf.TensorSpec((None, *a.shape[1:]), dtype) for a in self.arrays)
        return (xs[0] if len(xs) == 1 else xs), tf.TensorSpec(
            (None,), tf.as_dtype(self.labels.dtype))

    def next_epoch(self):
        self.epoch += 1
        self.order = self._order()

    def batch_order(self) -> list[int]:
        """This epoch's order of batches: shuffled (Python's `random`) if the rows are."""
        order = list(range(len(self)))
        if self.seed is not None:
            random.shuffle(order)
        return order

    def batches(self, order=None):
        """The batches in `order` (all, in turn, by default), each read ahead by a
        background thread while the caller works on the one before."""
        order = range(len(self)) if order is None else order
        with ThreadPoolExecutor(1) as pool:
            ahead = [pool.submit(self.__getitem__, i) for i in order[:1]]
            for j in range(len(order)):
                batch = ahead.pop().result()
                if j + 1 < len(order):
                    ahead.append(pool.submit(self.__getitem__, order[j + 1]))
                yield batch


class PyDatasetView(keras.utils.PyDataset):
    """`feed` as a `keras.utils.PyDataset`, as fer.finetune gave it to `Model.fit` until
    c369c23: to compare `fit` with this module's loop (tests/test_feed.py,
    bench/feed_teardown.py)."""

    def __init__(self, feed: BatchFeed):
        super().__init__()
        self.feed = feed

    def __len__(self):
        return len(self.feed)

    def __getitem__(self, i):
        x, y = self.feed[i]          # normalised here, as the feed did before
        pre = self.feed.preprocess
        return (tf.nest.map_structure(lambda a: normalize(a, pre), x) if pre else x), y

    def on_epoch_end(self):
        self.feed.next_epoch()


_STEPS = weakref.WeakKeyDictionary()   # model -> {step: (key, compile state held, fn)}


def step_function(model: keras.Model, step: str, feed: BatchFeed):
    """`model.train_step` or `model.test_step` (`step`) on `feed`'s batches, as one
    `tf.function` traced once (batch dimension open), normalising uint8 images first
    if the feed says how. Like `Model.fit`'s, it is made again after every `compile` (a
    new optimizer, loss tracker or metrics: held with it, so their ids name nothing
    else) and the one it replaces is dropped."""
    sig, preprocess = feed.signature(), feed.preprocess
    state = (model.optimizer, *model.metrics)
    key = (tuple(id(o) for o in state), bool(model.jit_compile), preprocess, repr(sig))
    fns = _STEPS.setdefault(model, {})
    if step not in fns or fns[step][0] != key:
        ref = weakref.ref(model)       # the cache must not keep its own key alive

        @tf.autograph.experimental.do_not_convert      # as Keras traces its steps
        def one_step(x, y):
            if preprocess:
                x = tf.nest.map_structure(lambda a: normalize_graph(a, preprocess), x)
            return getattr(ref(), f"{step}_step")((x, y))

        fn = tf.function(one_step, input_signature=sig, jit_compile=bool(model.jit_compile))
        fns[step] = (key, state, fn)
    return fns[step][2]


def _build(model: keras.Model, labels) -> None:
    """Create the optimizer's, loss's and metrics' variables before the first trace, as
    `Model.fit` does (a `tf.function` may create variables on its first trace only),
    from a label of the feed's and a zero prediction. A single-output model, as every
    model here is."""
    if model.optimizer is None:
        raise ValueError(f"model {model.name} must be compiled before fer.feed.fit")
    if len(model.outputs) != 1:
        raise ValueError(f"fer.feed.fit trains single-output models; {model.name} has "
                         f"{len(model.outputs)}")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    y = labels[:1]
    y_pred = tf.zeros((1, *model.outputs[0].shape[1:]), model.outputs[0].dtype)
    model.compute_loss(None, y, y_pred)
    model.compute_metrics(None, y, y_pred, sample_weight=None)
    model.reset_metrics()


def _results(model) -> dict:
    return {k: float(v) for k, v in model.get_metrics_result().items()}


def fit(model: keras.Model, feed: BatchFeed, validation: BatchFeed | None = None,
        epochs: int = 1, initial_epoch: int = 0, callbacks=(), verbose: int = 0) -> dict:
    """Train `model` (compiled) on `feed` from `initial_epoch` up to `epochs`, as
    `Model.fit(feed, validation_data=validation, ...)` would with a PyDataset (module
    doc); returns the history, {metric: [value per epoch]}. Callbacks get the training
    events (`model.stop_training` ends the epoch and the fit, as with `fit`); the
    validation pass calls no test callbacks. One step per call, in graph mode (Keras's
    `steps_per_execution` and `run_eagerly` are not used)."""
    if validation is not None and validation.preprocess != feed.preprocess:
        raise ValueError("the validation feed must normalise as the training feed does")
    _build(model, feed.labels)
    train = step_function(model, "train", feed)
    test = step_function(model, "test", feed) if validation is not None else None
    cbs = keras.callbacks.CallbackList(list(callbacks), add_history=False,
                                       add_progbar=verbose != 0, verbose=verbose,
                                       epochs=epochs, steps=len(feed), model=model)
    model.stop_training = False
    history: dict[str, list[float]] = {}
    feed.next_epoch()
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        with closing(feed.batches(feed.batch_order())) as batches:
            for i, (x, y) in enumerate(batches):
                cbs.on_train_batch_begin(i)
                logs = train(x, y)
                cbs.on_train_batch_end(i, logs)
                if model.stop_training:
                    break
        logs = _results(model)
        if validation is not None:
            model.reset_metrics()
            for x, y in validation.batches():
                test(x, y)
            logs.update({f"val_{k}": v for k, v in _results(model).items()})
        cbs.on_epoch_end(epoch, logs)
        feed.next_epoch()
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        if model.stop_training:
            break
    if epochs > initial_epoch:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    cbs.on_train_end(logs=logs if epochs > initial_epoch else None)
    return history
