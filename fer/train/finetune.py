"""Two-step transfer learning (paper section 4.2): step 1 trains the head on a frozen base,
step 2 also the last k base layers, each Keras's `Model.fit` on a `tf.data` pipeline
(`batches`). A seed fixes the initial weights, validation split and every epoch's order;
with op determinism on, a CPU run is bit-reproducible.

`train.fast_path` trains on cached frozen activations (`fer.train.activations`): step 1 the
head on the base's outputs, step 2 the suffix after the cut (`split_at_cut`) and the head;
same weights and batches as the naive path, so the same numbers up to float rounding.
"""
from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import time
import weakref

import numpy as np
import keras
import tensorflow as tf

from fer.core import settings
from fer.core.schema import BACKBONES, Train
from fer.train.activations import CacheSpec, CacheTooLarge, activations, forward, model_key
from fer.data.dataset import Dataset
from fer.train.backbones import (HEAD, ModelSpec, build_classifier, draw_head, split_at_cut,
                                 unfreeze_last)
from fer.data.splits import holdout_by_source


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


class Validation(keras.callbacks.Callback):
    """`val_loss` and `val_accuracy` after every epoch, as `fit(validation_data=...)` logs
    them, from the model's traced forward pass over the validation rows: fit's own pass
    builds a tf.data iterator and an evaluation loop every epoch, half of a fast step-1
    epoch (bench/finetune_speed.py)."""

    def __init__(self, arrays, labels, rows, batch_size: int):
        super().__init__()
        self.arrays, self.rows, self.labels = arrays, np.asarray(rows), labels[rows]
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        p = probabilities(self.model, self.arrays, self.rows, self.batch_size)
        logs["val_loss"] = float(np.mean(
            keras.losses.sparse_categorical_crossentropy(self.labels, p)))
        logs["val_accuracy"] = float(np.mean(p.argmax(1) == self.labels))


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; `deterministic` turns TF op determinism on
    (TensorFlow has no public switch back: off leaves it as this process has it)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def configure(train: Train) -> None:
    """Process-wide switches: op determinism, precision policy and GPU memory growth
    (FER_GPU_MEMORY_GROWTH, an execution setting, as stages and Ray workers hand it to
    TensorFlow: read when it first starts a GPU)."""
    if train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(
        "float32" if train.mixed_precision == "off" else train.mixed_precision)
    os.environ.update(settings.tensorflow_env())


def validation_split(data: Dataset, train: Train, seed: int, rows=None):
    """(train_idx, val_idx) of `data`: `val_fraction` of its source subjects validate.
    `rows`: split only these rows of `data` (sorted), as `data.subset(rows)` would be
    split; the indices returned are `data`'s."""
    rows = _sorted_rows(data, rows)
    tr, va = holdout_by_source(data.manifest.iloc[rows].reset_index(drop=True),
                               train.val_fraction, seed)
    return rows[tr], rows[va]


def _sorted_rows(data: Dataset, rows) -> np.ndarray:
    """`rows` of `data` (all if None), checked sorted and unique."""
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    if np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be sorted and unique")
    return rows


def epoch_order(rows, seed: int, epoch: int) -> np.ndarray:
    """The order of `rows` in training epoch `epoch` (counted from 0 over both steps)."""
    return np.random.default_rng([seed, epoch]).permutation(np.asarray(rows))


class Reads:
    """The batch reads in flight, so that a process can exit in the middle of an epoch:
    a read still running when the interpreter shuts down never ends (Python stops a
    thread that asks for the GIL then), and TensorFlow's iterator teardown waits for it
    for ever. At exit (atexit runs before the shutdown) `close` waits for them and lets
    no new one start."""

    def __init__(self):
        self.running, self.used, self.closed = 0, False, False
        self.changed = threading.Condition()

    def __enter__(self):
        with self.changed:
            if self.closed:
                raise RuntimeError("the process is exiting")
            self.running, self.used = self.running + 1, True

    def __exit__(self, *exc):
        with self.changed:
            self.running -= 1
            self.changed.notify_all()

    def close(self, timeout: float = 60) -> None:
        with self.changed:
            self.closed = True
        if self.used:           # a moment for a read waiting for the GIL to start
            time.sleep(0.05)
        with self.changed:
            self.changed.wait_for(lambda: self.running == 0, timeout)


READS = Reads()
atexit.register(READS.close)


def batches(arrays, labels, rows, batch_size: int, seed: int,
            epochs: tuple = (0, 1)) -> tf.data.Dataset:
    """float32 (x, y) batches of `rows` of `arrays` (one per model input: images or cached
    activations) and `labels`: epochs range(*epochs) one after another, each in
    `epoch_order`. Rows are read per batch by a
    `tf.numpy_function`, never copied whole into the graph (bench/feed_teardown.py), which
    lets go of the arrays with the dataset: TensorFlow keeps every such function alive
    (tensorflow/tensorflow#35084), and with it a seed's arrays, ~60 MB of VGG16 cache each."""
    source, rows = [list(arrays), labels], np.asarray(rows)
    order = np.array([epoch_order(rows, seed, e) for e in range(*epochs)],
                     rows.dtype).reshape(-1, len(rows))
    ds = tf.data.Dataset.from_tensor_slices(order).flat_map(
        lambda o: tf.data.Dataset.from_tensor_slices(o).batch(batch_size))
    shapes = [(None, *a.shape[1:]) for a in source[0]]
    dtypes = [tf.as_dtype(a.dtype) for a in source[0]] + [tf.as_dtype(labels.dtype)]

    def read(idx):
        with READS:
            (xs, y), idx = source, np.sort(idx)
            return (*[np.asarray(a[idx]) for a in xs], np.asarray(y[idx]))

    def gather(idx):
        *xs, y = tf.numpy_function(read, [idx], dtypes, stateful=False)
        xs = [tf.cast(tf.ensure_shape(x, shape), tf.float32) for x, shape in zip(xs, shapes)]
        return (xs[0] if len(xs) == 1 else tuple(xs)), tf.ensure_shape(y, (None,))

    # one batch read ahead, one read at a time (`Reads`: a parallel map would start
    # others); no autotuning: its thread held up the teardown after ~1 fit in 4 by ~2.3 s
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.autotune.enabled = False
    ds = ds.map(gather).prefetch(1).with_options(options)
    weakref.finalize(ds, source.clear)       # an iterator keeps its dataset alive
    return ds


def train_two_step(spec: ModelSpec, train: Train, data: Dataset, seed: int,
                   reuse: bool = False, rows=None):
    """Fine-tune one classifier on `data` minus its validation subjects; returns (model,
    history, seconds per epoch; `seconds["cache"]` describes the fast path's cache).

    `rows` (sorted): train on these rows only, with the numbers of `data.subset(rows)` but
    the activation cache of all of `data`. `reuse`: train on this process's `Cell` for
    (spec, train), the same numbers without building or tracing again; the returned model
    is then shared: use it before the next `reuse` call.
    """
    configure(train)                 # the seed draws weights (`Cell`), split and orders
    tr, va = validation_split(data, train, seed, rows)
    fallback = None
    if train.fast_path and spec.k < BACKBONES[spec.name].layers:   # a frozen part to cache
        try:
            return _train_cached(spec, train, data, tr, va, seed, reuse)
        except CacheTooLarge as e:
            fallback = str(e)
            print(f"{e}: training {spec.name} the naive way", file=sys.stderr)
    cell = Cell.take(spec, train, seed, fast=False, reuse=reuse)
    history, seconds = _two_steps(spec, train, cell, ([data.images], [data.images]),
                                  data.labels, tr, va, seed)
    if fallback:
        seconds["cache"] = {"fast_path": False, "fallback": fallback}
    return cell.model, history, seconds


def _two_steps(spec, train, cell, arrays, labels, tr, va, seed):
    """Step 1 then step 2, each `Model.fit` of the cell's step model on its `arrays`;
    epochs are counted on across both steps."""
    history, seconds, first = {}, {}, 0
    bs, steps = train.batch_size, -(-len(tr) // train.batch_size)
    for step, epochs, lr in ((1, train.epochs_step1, train.lr_step1),
                             (2, train.epochs_step2, train.lr_step2)):
        if not epochs:             # one step: nothing pretrained to train a head on first
            history[f"step{step}"], seconds[f"step{step}"] = {}, []
            continue
        if step == 1:
            cell.base.trainable = False
        else:
            unfreeze_last(cell.base, spec.k)
        model, xs = cell.compile(step, lr, train.jit_compile, steps), arrays[step - 1]
        timer = EpochTimer()
        decay = [keras.callbacks.LearningRateScheduler(
            lambda e, _, lr=lr, start=first, n=epochs: cosine(lr, e - start, n))
        ] if train.lr_decay == "cosine" else []
        val = [Validation(xs, labels, va, bs)] if len(va) else []
        fit = model.fit(batches(xs, labels, tr, bs, seed, (first, first + epochs)),
                        epochs=first + epochs, initial_epoch=first, steps_per_epoch=steps,
                        shuffle=False, callbacks=[*val, timer, *decay], verbose=0)
        history[f"step{step}"] = fit.history
        seconds[f"step{step}"] = timer.seconds
        first += epochs
    return history, seconds


def cosine(lr: float, epoch: int, epochs: int) -> float:
    """Epoch `epoch`'s (0-based) learning rate: a cosine from `lr` towards 0 after the last."""
    return lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))


class Cell:
    """A classifier and its two step models (each its own `keras.Model` over the same
    layers with its own Adam), compiled once. With `take(..., reuse=True)` every seed of a
    process reuses one, loading its initial weights and resetting the optimizers: tracing
    `fit` again per seed was most of a demo cell's time (InceptionResNetV2: ~65 of ~90 s)."""
    current = None          # the last (spec, train, fast)'s: backbones are large, keep one

    def __init__(self, spec: ModelSpec, train: Train, seed: int, fast: bool):
        self.key = (spec, train, fast)
        self.model, self.base = build_classifier(spec, seed)
        self.steps, self.cut = (_fast_models if fast else _step_models)(self.model, self.base,
                                                                      spec.k)
        self.compiled = {}          # step -> (batches an epoch, its optimizer's non-zero start)
        # a base that does not depend on the seed is kept; a new seed only draws a head
        self.initial_base = None if spec.weights == "none" else self.base.get_weights()

    @classmethod
    def take(cls, spec: ModelSpec, train: Train, seed: int, fast: bool,
             reuse: bool) -> "Cell":
        """A cell holding the initial weights of `build_classifier(spec, seed)`: with
        `reuse`, this process's for (spec, train, fast) if it has one, else a new one."""
        if not reuse:
            return cls(spec, train, seed, fast)
        if cls.current is None or cls.current.key != (spec, train, fast):
            cls.current = None          # free the old backbone before building another
            cls.current = cls(spec, train, seed, fast)
        else:
            cls.current.load_initial_weights(seed)
        return cls.current

    def load_initial_weights(self, seed: int) -> None:
        spec = self.key[0]
        if self.initial_base is None:
            self.model.set_weights(build_classifier(spec, seed)[0].get_weights())
            return
        self.base.set_weights(self.initial_base)
        draw_head(self.model, seed)

    def compile(self, step: int, lr: float, jit_compile: bool, steps: int) -> keras.Model:
        """The step's model, compiled the first time (and when an epoch's number of
        batches changes) to run a whole epoch per call: Keras's work per call in Python
        was a third of a fast step-1 epoch. Later its optimizer is reset to its start:
        Adam's moments start at zero, so only the variables that do not are kept (a
        copy of every moment held VGG16's step 2 ~57 MB higher)."""
        model = self.steps[step - 1]
        if self.compiled.get(step, (None,))[0] != steps:
            model.compile(optimizer=keras.optimizers.Adam(lr), jit_compile=jit_compile,
                          steps_per_execution=steps,
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.optimizer.build(model.trainable_variables)
            self.compiled[step] = steps, {i: x for i, v in enumerate(model.optimizer.variables)
                                          if (x := v.numpy()).any()}
        else:
            start = self.compiled[step][1]
            for i, v in enumerate(model.optimizer.variables):
                v.assign(start[i] if i in start else np.zeros(v.shape, v.dtype))
        return model


def _step_models(model, base, k):
    """The naive path's two step models: the classifier, wrapped twice; no cut."""
    return tuple(keras.Model(model.inputs, model.outputs, name=f"{model.name}_step{i}")
                 for i in (1, 2)), None


# full classifier -> how `predict` reaches its cache; trainer: cut tensors -> probabilities
_FAST = weakref.WeakKeyDictionary()
_Fast = collections.namedtuple("_Fast", "prefix key trainer cache")


def _fast_models(model, base, k):
    """The fast path's step models over `model`'s layers: ((head on the base output,
    suffix + head on the cut tensors), cut), the cut's prefix from the classifier's
    input (normalisation included) to the cut tensors."""
    cut = split_at_cut(base, k)
    head = [model.get_layer(n) for n in ("gap", *HEAD)]

    def on(inputs, x):
        for layer in head:
            x = layer(x)
        return keras.Model(inputs, x)

    feat_in = keras.Input(base.output.shape[1:], name="base_output")
    cut_in = [keras.Input(t.shape[1:], name=f"cut_{i}") for i, t in enumerate(cut.prefix.outputs)]
    trainer = on(cut_in, cut.suffix(cut_in if len(cut_in) > 1 else cut_in[0], training=False))
    cut.prefix = keras.Model(model.input, cut.prefix(model.get_layer("normalize").output),
                             name=f"{model.name}_prefix")
    return (on(feat_in, feat_in), trainer), cut


def _train_cached(spec, train, data, tr, va, seed, reuse):
    cell = Cell.take(spec, train, seed, fast=True, reuse=reuse)
    trainer, cut = cell.steps[1], cell.cut
    # where: FER_CACHE_DIR, an execution setting; how: the train section
    cache = CacheSpec(settings.load().cache_dir, train.cache_dtype, train.cache_limit_gb)
    key = model_key(cut.prefix, {"backbone": spec.name, "input_size": spec.input_size,
                                 "preprocess": spec.preprocess, "cut": cut.positions},
                    cache.dtype)
    at_cut, info = activations(cut.prefix, [data.images], key, cache)
    # step 1's base output: the suffix is frozen until step 2, so compute it once too
    out_key = model_key(cut.suffix, {"of": key}, cache.dtype)
    base_out, info1 = activations(cut.suffix, at_cut, out_key, cache)
    history, seconds = _two_steps(spec, train, cell, (base_out, at_cut), data.labels, tr, va, seed)
    _FAST[cell.model] = _Fast(cut.prefix, key, trainer, cache)
    total = info["bytes"] + info1["bytes"]
    print(f"{spec.name}: activation cache {total / 2**20:.1f} MiB "
          f"({'reused' if info['hit'] else 'built'}; cut at {', '.join(cut.tensors)})",
          file=sys.stderr)
    seconds["cache"] = {
        "fast_path": True, "bytes": total, "hit": info["hit"], "cut": cut.tensors,
        "build_s": round(sum(i["build_s"] for i in (info, info1) if not i["hit"]), 3)}
    return cell.model, history, seconds


def predict(model, data: Dataset, batch_size: int = 64, rows=None) -> np.ndarray:
    """Class probabilities of `data` (of its sorted `rows`, if given) by `model`; a fast-path
    model reads the prefix's activations from the cache. One graph whatever the batch
    sizes (`fer.train.activations.forward`)."""
    rows = _sorted_rows(data, rows)
    arrays, fast = [data.images], _FAST.get(model)
    if fast is not None:
        try:
            arrays, _ = activations(fast.prefix, arrays, fast.key, fast.cache)
            model = fast.trainer
        except CacheTooLarge as e:
            print(f"{e}: predicting the naive way", file=sys.stderr)
    return probabilities(model, arrays, rows, batch_size)


def probabilities(model, arrays, rows, batch_size: int) -> np.ndarray:
    """`model`'s outputs for `rows` of `arrays` (one per model input), read a batch at a
    time (memory maps stay on disk) through its forward pass, traced once."""
    run = forward(model, bool(getattr(model, "jit_compile", False)))
    return np.concatenate([
        run(*[np.asarray(a[rows[i:i + batch_size]], np.float32) for a in arrays])[0].numpy()
        for i in range(0, len(rows), batch_size)])
