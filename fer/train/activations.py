"""On-disk, memory-mapped, content-keyed cache of frozen activations (issue 8).

The frozen base (step 1) and the prefix before the cut (step 2, `split_at_cut`) run with
BatchNorm in inference mode on fixed images, so their activations are computed once, not
every epoch. An entry `<root>/<model key>/<inputs key>/` holds one `.npy` per output and
`meta.json`, published atomically (the first of concurrent writers wins). The model key
hashes the parts given, the dtypes, every weight and the code of this module and
`fer.train.backbones`; the inputs key, the input arrays.
"""
from __future__ import annotations

import json
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer.train import backbones as models
from fer.core.atomic import atomic_dir
from fer.core.keys import content_key

DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class CacheSpec:
    root: str = ".cache/activations"
    dtype: str = "float32"          # float16 halves the size; effect: docs/benchmarks.md
    limit_gb: float = 20.0          # larger entries fall back to the naive path
    batch_size: int = 32

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"train.cache_dtype must be one of {DTYPES}, got {self.dtype!r}")


class CacheTooLarge(Exception):
    """An entry would exceed `CacheSpec.limit_gb`; the caller trains the naive way."""


def model_key(model, parts: dict, dtype: str) -> str:
    """Content key of the network that computes the activations (see module doc)."""
    policy = keras.mixed_precision.global_policy().name      # the compute precision
    # weights by position: Keras numbers their names per process
    return content_key({**parts, "dtype": dtype, "policy": policy}, models,
                       sys.modules[__name__], *(w.numpy() for w in model.weights))


_FORWARD = weakref.WeakKeyDictionary()


def forward(model: keras.Model, jit_compile: bool = False):
    """`model`'s inference pass as one tf.function traced once for any batch size (Keras's
    `predict_on_batch` retraces for a short last batch: 6 of InceptionResNetV2's 12.6 s
    demo entry). Takes float32 arrays; returns a list of output tensors."""
    fns = _FORWARD.setdefault(model, {})
    if jit_compile not in fns:
        spec = [tf.TensorSpec((None, *t.shape[1:]), t.dtype) for t in model.inputs]
        ref = weakref.ref(model)     # the entry must not keep its own key alive

        def run(*xs):
            ys = ref()(list(xs) if len(xs) > 1 else xs[0], training=False)
            return list(ys) if isinstance(ys, (list, tuple)) else [ys]

        fns[jit_compile] = tf.function(run, input_signature=spec, jit_compile=jit_compile)
    return fns[jit_compile]


def activations(model, inputs, key: str, cache: CacheSpec, log=print):
    """`model`'s outputs for `inputs` (a list of arrays: uint8 images, or activations),
    as read-only memory-mapped arrays, computed once per content key `key` (`model_key`)
    and input content. Returns (arrays, info); raises CacheTooLarge before computing
    anything if the entry would exceed the limit."""
    inputs = list(inputs)
    n, path = len(inputs[0]), Path(cache.root) / key / content_key(*inputs)
    names = [f"t{i}.npy" for i in range(len(model.outputs))]
    hit = (path / "meta.json").is_file()
    if not hit:
        size = int(n * sum(np.prod(t.shape[1:]) for t in model.outputs)
                   * np.dtype(cache.dtype).itemsize)
        if size > cache.limit_gb * 2**30:
            raise CacheTooLarge(f"activation cache entry {path} would take "
                                f"{size / 2**30:.2f} GB, over train.cache_limit_gb = "
                                f"{cache.limit_gb}")
        start = time.perf_counter()
        with atomic_dir(path, keep_existing=True) as tmp:
            out = [np.lib.format.open_memmap(tmp / f, mode="w+", dtype=cache.dtype,
                                             shape=(n, *t.shape[1:]))
                   for f, t in zip(names, model.outputs)]
            run = forward(model)
            for i in range(0, n, cache.batch_size):
                xs = [np.asarray(a[i:i + cache.batch_size], np.float32) for a in inputs]
                for o, y in zip(out, run(*xs)):
                    o[i:i + len(y)] = np.asarray(y, dtype=np.float32)
            for o in out:
                o.flush()
            del out
            build_s = round(time.perf_counter() - start, 3)
            (tmp / "meta.json").write_text(json.dumps({
                "images": n, "bytes": size, "dtype": cache.dtype,
                "shapes": [list(t.shape[1:]) for t in model.outputs], "build_s": build_s}))
        log(f"activation cache: wrote {path} ({size / 2**20:.1f} MiB, {build_s} s)")
    arrays = [np.load(path / f, mmap_mode="r") for f in names]
    return arrays, {**json.loads((path / "meta.json").read_text()), "hit": hit}
