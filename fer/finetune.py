"""Two-step transfer learning (paper section 4.2).

Step 1: base frozen, `epochs_step1` epochs of Adam(lr_step1) on the new head.
Step 2: the last k base layers trainable, `epochs_step2` epochs of Adam(lr_step2).
A seed fixes the weight initialisation, the validation split and every epoch's
shuffling; with TensorFlow's op determinism on, a CPU run is bit-reproducible.

`TrainSpec.fast_path` trains on cached frozen activations (`fer.activations`): step 1
trains the head on the base's outputs, step 2 the base's suffix after the cut
(`fer.models.split_at_cut`) plus the head on the activations at the cut. Initial weights,
batches and their order are those of the naive path, so both give the same losses and
predictions up to float rounding (tests/test_activations.py).
"""
from __future__ import annotations

import sys
import time
import weakref
from dataclasses import dataclass

import numpy as np
import keras
import tensorflow as tf

from . import settings
from .activations import CacheSpec, CacheTooLarge, activations, forward, model_key
from .dataset import Dataset
from .feed import BatchFeed, fit as fit_epochs
from .models import (ModelSpec, build_classifier, freeze_base, initial_head,
                     split_at_cut, unfreeze_last)
from .splits import holdout_by_source


@dataclass(frozen=True)
class TrainSpec:
    epochs_step1: int = 10
    epochs_step2: int = 65
    lr_step1: float = 1e-3
    lr_step2: float = 1e-4
    batch_size: int = 32
    val_fraction: float = 0.1    # source subjects held out: val curves and seed selection
    fast_path: bool = False      # train on cached frozen activations (fer.activations)
    cache_dir: str | None = None     # None: the FER_CACHE_DIR execution setting
    cache_dtype: str = "float32"
    cache_limit_gb: float = 20.0
    mixed_precision: str = "off"     # off | mixed_bfloat16 | mixed_float16 (Keras policy)
    jit_compile: bool = False        # XLA
    deterministic: bool = True       # TensorFlow op determinism

    def __post_init__(self):
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"train.mixed_precision must be one of {PRECISIONS}, got "
                             f"{self.mixed_precision!r}")

    @property
    def cache(self) -> CacheSpec:
        """Where (FER_CACHE_DIR, an execution setting) and how activations are cached."""
        return CacheSpec(self.cache_dir or settings.load().cache_dir, self.cache_dtype,
                         self.cache_limit_gb)


PRECISIONS = ("off", "mixed_bfloat16", "mixed_float16")
SWITCHES = ("fast_path", "cache_dtype", "cache_limit_gb", "mixed_precision", "jit_compile",
            "deterministic")


def switches(train_params: dict) -> dict:
    """The speed switches present in params.yaml's `train` (TrainSpec keyword args)."""
    return {k: train_params[k] for k in SWITCHES if k in train_params}


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:      # TensorFlow has no public switch back (tf.config.experimental lacks it)
        from tensorflow.python.framework.config import disable_op_determinism
        disable_op_determinism()


def configure(train: TrainSpec) -> None:
    """Process-wide switches: precision policy and GPU memory growth (FER_GPU_MEMORY_GROWTH,
    an execution setting)."""
    keras.mixed_precision.set_global_policy(
        "float32" if train.mixed_precision == "off" else train.mixed_precision)
    if settings.load().gpu_memory_growth:
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:      # already initialised by an earlier model
                pass


def _compile(model, lr, jit_compile=False):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)


def validation_split(data: Dataset, train: TrainSpec, seed: int, rows=None):
    """(train_idx, val_idx) of `data`: `val_fraction` of its source subjects validate.
    `rows`: split only these rows of `data` (sorted), as `data.subset(rows)` would be
    split; the indices returned are `data`'s."""
    if rows is None:
        return holdout_by_source(data.manifest, train.val_fraction, seed)
    rows = _sorted_rows(rows)
    tr, va = holdout_by_source(data.manifest.iloc[rows].reset_index(drop=True),
                               train.val_fraction, seed)
    return rows[tr], rows[va]


def _sorted_rows(rows) -> np.ndarray:
    rows = np.asarray(rows)
    if np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be sorted and unique")
    return rows


def train_two_step(spec: ModelSpec, train: TrainSpec, data: Dataset, seed: int,
                   callbacks=(), verbose: int = 0, reuse: bool = False, rows=None):
    """Fine-tune one model on `data` minus its validation subjects
    (`validation_split(data, train, seed)`); returns (model, history, seconds per epoch).

    `rows` (sorted): train on these rows of `data` only, with the same numbers as on
    `data.subset(rows)` (the naive path) while the activation cache is that of the whole
    of `data`, shared by every subset of it (folds, k values, seeds).

    `model` is always the full classifier. With `train.fast_path` the training runs on
    cached activations (falling back to the naive path, with a message, when the cache
    would exceed `train.cache_limit_gb`), and `seconds["cache"]` describes the cache.

    `reuse`: train (on either path) on this process's classifier for (spec, train),
    whose two training steps were compiled and traced by an earlier call, after loading
    this seed's initial weights into it and rewinding its optimizers (`_Traced`): the
    same weights, batches and graph as a fresh build, so the same numbers, without
    building the backbone (unless its weights are `none`) or tracing its training graph
    again. The returned model is then that shared classifier: use it (predict, save)
    before the next `reuse` call changes it.
    """
    configure(train)
    seed_everything(seed, train.deterministic)
    tr, va = validation_split(data, train, seed, rows)
    fallback = None
    if train.fast_path:
        try:
            return _train_cached(spec, train, data, tr, va, seed, callbacks, verbose, reuse)
        except CacheTooLarge as e:
            fallback = str(e)
            print(f"{e}: training {spec.name} the naive way", file=sys.stderr)
    if reuse:
        traced = _Traced.take(spec, train, seed, _step_models)
        model, base, fits, compile_step = (traced.model, traced.base, traced.steps,
                                           traced.compile_step)
    else:
        model, base = build_classifier(spec, seed)     # this seed's initial weights
        fits, compile_step = (model, model), _compile_step
    feed = BatchFeed(data.images, data.labels, tr, train.batch_size, spec.preprocess, seed)
    val = (BatchFeed(data.images, data.labels, va, train.batch_size, spec.preprocess)
           if len(va) else None)
    history, seconds = _two_steps(spec, train, base, (fits[0], feed, val),
                                  lambda: (fits[1], feed, val), callbacks, verbose,
                                  compile_step)
    if fallback:
        seconds["cache"] = {"fast_path": False, "fallback": fallback}
    return model, history, seconds


def _compile_step(step, model, lr, jit_compile):
    _compile(model, lr, jit_compile)


def _two_steps(spec, train, base, step1, step2, callbacks, verbose,
               compile_step=_compile_step):
    """Step 1 then step 2: `step1` is (model to fit, feed, validation feed or None),
    `step2` a function returning the same, called once step 1 is done;
    `compile_step(step, model, lr, jit_compile)` compiles the step's model."""
    history, seconds = {}, {}
    for step, epochs, lr, stage in ((1, train.epochs_step1, train.lr_step1, lambda: step1),
                                    (2, train.epochs_step2, train.lr_step2, step2)):
        model, feed, val = stage()
        if step == 1:
            freeze_base(base)
        else:
            unfreeze_last(base, spec.k)
        compile_step(step, model, lr, train.jit_compile)
        timer = EpochTimer()
        start = train.epochs_step1 if step == 2 else 0
        history[f"step{step}"] = fit_epochs(model, feed, val, epochs=start + epochs,
                                            initial_epoch=start,
                                            callbacks=[timer, *callbacks], verbose=verbose)
        seconds[f"step{step}"] = timer.seconds
    return history, seconds


class _Traced:
    """One classifier per process whose step-1 and step-2 training graphs are traced once
    and reused by every seed of a cell (and every fold of a cross-validation).

    Keras traces `fit`'s graph again after every `compile`, and the two steps need two
    compiles (their trainable sets differ), so a fresh model per seed traces the whole
    backbone twice per seed: most of a demo cell's time (InceptionResNetV2: ~65 of
    ~90 s per seed). Here each step is its own `keras.Model` over the same layers
    (`make_steps`: the classifier twice on the naive path, head and cut trainer on the
    fast path), compiled once with its own Adam; its graph fixes the trainable set it
    was traced with. A seed loads its freshly built initial weights into these layers
    and rewinds both optimizers to their state before their first step (Adam's zeros),
    so it runs the graph a fresh build would trace, on the same weights and batches.
    """
    _current = None         # the last (spec, train)'s: backbones are large, keep one

    def __init__(self, key, model, base, make_steps):
        self.key, self.model, self.base = key, model, base
        self.steps, self.cut = make_steps(key[0], model, base)
        self.initial_optimizer_state = {}
        # a base that does not depend on the seed is kept as built; a new seed then only
        # draws a head (fer.models.initial_head) instead of building a whole backbone
        self.initial_base = (None if key[0].weights == "none"
                             else [w.numpy() for w in base.weights])

    @classmethod
    def take(cls, spec: ModelSpec, train: TrainSpec, seed: int, make_steps) -> "_Traced":
        """The process's traced classifier for (spec, train, make_steps) holding the
        initial weights of `build_classifier(spec, seed)`; `make_steps(spec, model, base)`
        gives its ((step-1 model, step-2 model), cut or None)."""
        key = (spec, train, make_steps)
        if cls._current is None or cls._current.key != key:
            cls._current = cls(key, *build_classifier(spec, seed), make_steps)
        else:
            cls._current.load_initial_weights(seed)
        return cls._current

    def load_initial_weights(self, seed: int) -> None:
        spec, model = self.key[0], self.model
        if self.initial_base is None:
            fresh, _ = build_classifier(spec, seed)
            pairs = zip(model.weights, fresh.weights)
        else:
            head = initial_head(spec, self.base.output.shape[1:], seed)
            mine = [w for n in ("fc", "emotion") for w in model.get_layer(n).weights]
            pairs = [*zip(self.base.weights, self.initial_base), *zip(mine, head.weights)]
        for w, value in pairs:
            w.assign(value)

    def compile_step(self, step, model, lr, jit_compile):
        """`_two_steps`' compile: the first time for real, later a rewind of the step's
        optimizer to its state before its first update."""
        if step not in self.initial_optimizer_state:
            _compile(model, lr, jit_compile)
            model.optimizer.build(model.trainable_variables)
            self.initial_optimizer_state[step] = [v.numpy() for v in model.optimizer.variables]
        else:
            for v, value in zip(model.optimizer.variables, self.initial_optimizer_state[step]):
                v.assign(value)


def _step_models(spec, model, base):
    """The naive path's two step models: the classifier, wrapped twice; no cut."""
    return tuple(keras.Model(model.inputs, model.outputs, name=f"{model.name}_step{i}")
                 for i in (1, 2)), None


_FAST = weakref.WeakKeyDictionary()     # full classifier -> how `predict` reaches its cache


@dataclass
class _Fast:
    prefix: keras.Model
    key: str
    trainer: keras.Model                # cut tensors -> class probabilities
    cache: CacheSpec


def _model_parts(spec: ModelSpec, cut) -> dict:
    return {"backbone": spec.name, "input_size": spec.input_size,
            "preprocess": spec.preprocess, "cut": cut.positions}


def _fast_models(spec: ModelSpec, model, base):
    """The fast path's step models over `model`'s layers: ((head on the base output,
    suffix + head on the cut tensors), cut)."""
    cut = split_at_cut(base, spec.k)
    head = [model.get_layer(n) for n in ("gap", "fc", "emotion")]

    def on(inputs, x):
        for layer in head:
            x = layer(x)
        return keras.Model(inputs, x)

    feat_in = keras.Input(base.output.shape[1:], name="base_output")
    cut_in = [keras.Input(t.shape[1:], name=f"cut_{i}") for i, t in enumerate(cut.prefix.outputs)]
    trainer = on(cut_in, cut.suffix(cut_in if len(cut_in) > 1 else cut_in[0], training=False))
    return (on(feat_in, feat_in), trainer), cut


def _train_cached(spec, train, data, tr, va, seed, callbacks, verbose, reuse):
    if reuse:
        traced = _Traced.take(spec, train, seed, _fast_models)
        model, base, compile_step = traced.model, traced.base, traced.compile_step
        (head_model, trainer), cut = traced.steps, traced.cut
    else:
        model, base = build_classifier(spec, seed)     # this seed's initial weights
        (head_model, trainer), cut = _fast_models(spec, model, base)
        compile_step = _compile_step
    cache = train.cache
    key = model_key(cut.prefix, _model_parts(spec, cut), cache.dtype)
    at_cut, info = activations(cut.prefix, [data.images], key, cache, spec.preprocess)
    # step 1's base output: the suffix is frozen until step 2, so compute it once too
    out_key = model_key(cut.suffix, {"of": key}, cache.dtype)
    base_out, info1 = activations(cut.suffix, at_cut, out_key, cache)
    labels, bs = data.labels, train.batch_size
    feed1 = BatchFeed(base_out, labels, tr, bs, None, seed)
    val1 = BatchFeed(base_out, labels, va, bs, None) if len(va) else None

    def step2():       # the naive path's single feed goes on shuffling where step 1 ended
        return (trainer, BatchFeed(at_cut, labels, tr, bs, None, seed, epoch=feed1.epoch),
                BatchFeed(at_cut, labels, va, bs, None) if len(va) else None)

    history, seconds = _two_steps(spec, train, base, (head_model, feed1, val1), step2,
                                  callbacks, verbose, compile_step)
    _FAST[model] = _Fast(cut.prefix, key, trainer, cache)
    total = info["bytes"] + info1["bytes"]
    print(f"{spec.name}: activation cache {total / 2**20:.1f} MiB "
          f"({'reused' if info['hit'] else 'built'}; cut at {', '.join(cut.tensors)})",
          file=sys.stderr)
    seconds["cache"] = {
        "fast_path": True, "bytes": total, "hit": info["hit"], "cut": cut.tensors,
        "build_s": round((0 if info["hit"] else info["build_s"])
                         + (0 if info1["hit"] else info1["build_s"]), 3)}
    return model, history, seconds


def predict(model, data: Dataset, preprocess: str, batch_size: int = 64,
            rows=None) -> np.ndarray:
    """Class probabilities of `data` (of its `rows`, sorted, if given) by `model`; a model
    trained on the fast path reads the frozen prefix's activations from the cache
    (computed once per image set: with `rows`, the whole of `data`'s)."""
    rows = np.arange(len(data)) if rows is None else _sorted_rows(rows)
    fast = _FAST.get(model)
    if fast is not None:
        try:
            at_cut, _ = activations(fast.prefix, [data.images], fast.key, fast.cache,
                                    preprocess)
            return _predict(fast.trainer, BatchFeed(at_cut, data.labels, rows, batch_size,
                                                    None, pad=True))[:len(rows)]
        except CacheTooLarge as e:
            print(f"{e}: predicting the naive way", file=sys.stderr)
    feed = BatchFeed(data.images, data.labels, rows, batch_size, preprocess, pad=True)
    return _predict(model, feed)[:len(rows)]


def _predict(model, feed: BatchFeed) -> np.ndarray:
    """`model`'s inference pass over `feed`'s batches, traced once
    (`fer.activations.forward`, with XLA if the model was compiled with it); what
    `Model.predict` computed on the same batches."""
    run = forward(model, bool(getattr(model, "jit_compile", False)), feed.preprocess)
    return np.concatenate([run(*tf.nest.flatten(x))[0].numpy() for x, _ in feed.batches()])
