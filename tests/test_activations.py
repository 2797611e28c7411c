"""The activation cache (fer.train.activations) and the fast path it feeds (fer.train.finetune).

Exactness: for the same seed the fast path starts from the same weights and sees the same
batches in the same order as the naive path; only the frozen layers' forward pass runs
once, in other batch compositions (inference batches of 32 instead of shuffled training
batches), which can change a float32 convolution's rounding in the last bit. Over two
epochs per step such differences stay far below 1e-4 (measured: see docs/pipeline.md "Fine-tune
grid"), while a wrong cut, batch order or initialisation changes losses by 1e-2 or more.
"""
import json

import keras
import numpy as np
import pytest

from fer.train.activations import CacheSpec, CacheTooLarge, activations, forward, model_key
from fer.train.finetune import predict, seed_everything, train_two_step
from fer.train.backbones import (ModelSpec, build_base, build_classifier, split_at_cut,
                        unfreeze_last)
from test_models import PAPER_K, PRE, tiny_dataset
from sections import section

TOL = 1e-4
# InceptionResNetV2 (random init, 75 px): measured 4.4e-4 on step 2's val_loss after two
# epochs. Adam's step m/sqrt(v) does not shrink with the gradient, so a parameter whose
# gradient is at rounding level takes a full lr-sized step of either sign; over 371
# trainable layers such steps move the loss by more than float32 epsilon, not by 1e-2.
LOOSE = {"inception_resnet_v2": 1e-3}
EPOCHS = {"inception_v3": 1, "inception_resnet_v2": 1}     # tracing dominates their time
# [index in base.layers, output index] of every tensor crossing the cut at the paper's k:
# VGG16 block4_conv3, VGG19 block4_conv1, InceptionV3 mixed5 + the 7x7 branch's
# activation before conv2d_51 (the cut crosses mixed6), InceptionResNetV2 block17_8_ac +
# a branch activation of block17_9


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """tmp_path, as the activation cache's folder (FER_CACHE_DIR)."""
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path))
    return tmp_path


def one_epoch_each(**overrides):
    """The paper's train section with one epoch per step, batch 8, a fifth validating."""
    return section("train", epochs_step1=1, epochs_step2=1, batch_size=8, val_fraction=0.2,
                   **overrides)


CUTS = {"vgg16": [[13, 0]], "vgg19": [[12, 0]], "inception_v3": [[164, 0], [170, 0]],
        "inception_resnet_v2": [[402, 0], [408, 0]]}


def test_batchnorm_stays_in_inference_mode_when_step2_trains_it():
    # the precondition of the cache, and what the paper's set-up says: Keras 3's fit would
    # otherwise run step 2's trainable BatchNorm layers on batch statistics. A fixed base
    # stands for pretrained weights (a `none` base learns its statistics: next test)
    seed_everything(0)
    model, base = build_classifier(
        ModelSpec(name="inception_v3", k=140, preprocess="scale01",
                  weights="fixed_random", input_size=75))
    unfreeze_last(base, 140)
    x = np.random.default_rng(0).random((4, 75, 75, 3), np.float32)
    np.testing.assert_array_equal(model(x, training=True), model(x, training=False))
    bns = [l for l in base.layers[-140:] if isinstance(l, keras.layers.BatchNormalization)]
    moving = [w.numpy() for l in bns for w in l.non_trainable_weights]
    beta = [w.numpy() for l in bns for w in l.trainable_weights]
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.train_on_batch(x, np.arange(4))
    assert all(np.array_equal(a, w.numpy()) for a, w in
               zip(moving, [w for l in bns for w in l.non_trainable_weights]))
    assert not all(np.array_equal(a, w.numpy()) for a, w in
                   zip(beta, [w for l in bns for w in l.trainable_weights]))


def test_batchnorm_of_a_base_trained_from_scratch_learns_its_statistics():
    # weights `none` (the compact backbone): nothing to keep, so step 2 updates the moving
    # mean and variance as any network trained from scratch does
    seed_everything(0)
    spec = ModelSpec(name="mini_xception", k=43, preprocess="per_image",
                     weights="none", input_size=48, channels=1, size=48)
    model, base = build_classifier(spec)
    unfreeze_last(base, 43)
    bns = [l for l in base.layers if isinstance(l, keras.layers.BatchNormalization)]
    moving = [w.numpy() for l in bns for w in l.non_trainable_weights]
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 48, 48, 3), np.float32) * 255
    model.train_on_batch(x, np.arange(4))
    assert not any(np.array_equal(a, w.numpy()) for a, w in
                   zip(moving, [w for l in bns for w in l.non_trainable_weights]))


def _demo_k() -> dict:
    from fer.core.params import compose
    return {n: m["k"] for n, m in compose(["profile=demo"])["models"].items()}


# the paper's k, and the demo profile's where it differs (the cut of what `make demo` runs)
CASES = [(n, PAPER_K[n]) for n in sorted(PAPER_K)] + [
    (n, k) for n, k in sorted(_demo_k().items()) if n in PAPER_K and k != PAPER_K[n]]


@pytest.mark.parametrize("name,k", CASES)
def test_split_at_cut_keeps_step2_trainable_layers_and_is_exact(name, k):
    base = build_base(ModelSpec(name=name, k=k, preprocess=PRE[name],
                                weights="none", input_size=75))
    cut = split_at_cut(base, k)
    unfreeze_last(base, k)
    trainable = {l.name for l in base.layers if l.trainable}
    assert len(trainable) == k
    assert {l.name for l in cut.suffix.layers if l.trainable
            and not isinstance(l, keras.layers.InputLayer)} == trainable
    assert not any(l.trainable for l in cut.prefix.layers[1:])   # the prefix is all frozen
    if k == PAPER_K[name]:
        assert cut.positions == CUTS[name]
    x = np.random.default_rng(0).random((2, 75, 75, 3), np.float32)
    mid = cut.prefix.predict_on_batch(x)
    np.testing.assert_allclose(cut.suffix.predict_on_batch(mid), base.predict_on_batch(x),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", [
    "vgg16", "vgg19",
    # heavy (out of `make test`): 70 and 175 s here; test_split_at_cut_keeps_step2_
    # trainable_layers_and_is_exact covers the same cut of these two exactly
    pytest.param("inception_v3", marks=pytest.mark.heavy),
    pytest.param("inception_resnet_v2", marks=pytest.mark.heavy)])
def test_fast_path_gives_the_naive_losses_and_predictions(name, cache_dir):
    data, test = tiny_dataset(3, 75, 0), tiny_dataset(2, 75, 1)
    spec = ModelSpec(name=name, k=PAPER_K[name], preprocess=PRE[name],
                     weights="none", input_size=75)
    epochs, tol = EPOCHS.get(name, 2), LOOSE.get(name, TOL)
    naive = section("train", epochs_step1=epochs, epochs_step2=epochs, batch_size=8,
                    val_fraction=0.2, fast_path=False)
    runs = {}
    for fast in (False, True):
        model, history, seconds = train_two_step(spec, naive.model_copy(update={"fast_path": fast}),
                                                 data, seed=0)
        runs[fast] = history, predict(model, test), model
    (h0, p0, _), (h1, p1, m1) = runs[False], runs[True]
    assert seconds["cache"]["fast_path"] and seconds["cache"]["bytes"] > 0
    assert h0.keys() == h1.keys() and h0["step2"].keys() == h1["step2"].keys()
    for step in h0:
        for metric in h0[step]:
            np.testing.assert_allclose(h1[step][metric], h0[step][metric], rtol=0, atol=tol,
                                       err_msg=f"{name} {step} {metric}")
    np.testing.assert_allclose(p1, p0, rtol=0, atol=tol)
    assert (p1.argmax(1) == p0.argmax(1)).all()
    # the returned model is the full classifier, trained: it predicts the same on images
    np.testing.assert_allclose(m1.predict(test.images, verbose=0), p1, rtol=0, atol=tol)


def test_cache_is_reused_bit_exactly_and_keyed_by_content(tmp_path, cache_dir):
    data = tiny_dataset(2, 32, 0)
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="none", input_size=32)
    train = one_epoch_each(fast_path=True)
    m1, h1, s1 = train_two_step(spec, train, data, seed=0)
    m2, h2, s2 = train_two_step(spec, train, data, seed=0)
    assert not s1["cache"]["hit"] and s2["cache"]["hit"]
    assert h1 == h2
    entries = sorted(p.parent for p in tmp_path.glob("*/*/meta.json"))
    assert len(entries) == 2                      # cut activations + base output
    # another seed initialises another random base: a new entry, not a stale hit
    train_two_step(spec, train, data, seed=1)
    assert len(list(tmp_path.glob("*/*/meta.json"))) == 4
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["images"] == len(data)


def test_activation_keys_follow_content_not_names(tmp_path):
    cache = CacheSpec(str(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)

    def net(seed):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((8, 8, 3))
        return keras.Model(inp, keras.layers.Conv2D(4, 3)(inp))

    a, b, c = net(0), net(0), net(1)     # a and b: same weights, other layer names
    assert model_key(a, {}, "float32") == model_key(b, {}, "float32")
    assert model_key(a, {}, "float32") != model_key(c, {}, "float32")
    key = model_key(a, {}, "float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:                                 # activations computed in bfloat16 differ
        assert model_key(a, {}, "float32") != key
    finally:
        keras.mixed_precision.set_global_policy("float32")
    key = model_key(a, {}, "float32")
    (x,), info = activations(a, [images], key, cache)
    assert not info["hit"] and x.dtype == np.float32 and x.shape == (5, 6, 6, 4)
    np.testing.assert_array_equal(x, a.predict_on_batch(images.astype(np.float32)))
    (y,), info = activations(a, [images], key, cache)
    assert info["hit"] and np.array_equal(x, y)
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1                 # one pixel: a new entry
    _, info = activations(a, [changed], key, cache)
    assert not info["hit"]
    (h,), _ = activations(a, [images], model_key(a, {}, "float16"),
                          CacheSpec(str(tmp_path), "float16"))
    assert h.dtype == np.float16
    np.testing.assert_allclose(h.astype(np.float32), x, rtol=1e-3, atol=1e-3)


def test_a_cache_over_the_limit_falls_back_to_the_naive_path(tmp_path, cache_dir, capsys):
    data = tiny_dataset(2, 32, 0)
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="none", input_size=32)
    train = one_epoch_each(fast_path=False)
    _, naive, _ = train_two_step(spec, train, data, seed=0)
    small = train.model_copy(update={"fast_path": True, "cache_limit_gb": 1e-6})
    _, history, seconds = train_two_step(spec, small, data, seed=0)
    assert history == naive                    # it is the naive path, bit for bit
    assert not seconds["cache"]["fast_path"]
    assert "train.cache_limit_gb" in seconds["cache"]["fallback"]
    assert "naive way" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())        # nothing half-written
    with pytest.raises(CacheTooLarge, match="cache_limit_gb"):
        activations(build_base(spec), [data.images], "k", CacheSpec(str(tmp_path),
                    limit_gb=1e-6))


def test_deterministic_switch_turns_op_determinism_on_and_off_leaves_it():
    import os
    import subprocess
    import sys
    check = ("from tensorflow.python.framework.config import is_op_determinism_enabled as on\n"
             "from fer.train.finetune import seed_everything\n"
             "seed_everything(0, deterministic=False); a = on()\n"
             "seed_everything(0); b = on()\n"
             "seed_everything(0, deterministic=False); print(a, b, on())\n")
    from pathlib import Path
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    assert out == ["False", "True", "True"]    # TensorFlow has no public switch back


def test_rows_train_as_the_subset_would_and_share_one_cache_entry(tmp_path, cache_dir):
    """Folds and k values train on rows of one dataset: the naive path gives the numbers
    of training on `data.subset(rows)` bit for bit; the fast path caches `data` once."""
    data = tiny_dataset(3, 32, 0)                                     # 21 images
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="fixed_random", input_size=32)
    naive = one_epoch_each(fast_path=False)
    folds = [np.arange(0, 21, 2), np.arange(1, 21, 2)]
    # naive: one fold (its rows skip row 0 and every other one, so a row offset or an
    # ignored `rows` shows); training runs dominate this test's time
    fit, held = folds[::-1]
    m, h, _ = train_two_step(spec, naive, data.subset(fit), seed=0)
    p = predict(m, data.subset(held))
    m2, h2, _ = train_two_step(spec, naive, data, seed=0, rows=fit)
    assert h2 == h
    assert np.array_equal(predict(m2, data, rows=held), p)
    fast = naive.model_copy(update={"fast_path": True})
    for seed, (fit, held) in enumerate((folds, folds[::-1])):
        m, _, s = train_two_step(spec, fast, data, seed=seed, rows=fit)
        predict(m, data, rows=held)
        # a fixed base: the second seed's fold reuses the first one's entry
        assert s["cache"]["hit"] == (seed == 1)
    entries = list(tmp_path.glob("*/*/meta.json"))
    assert len(entries) == 2                      # cut activations + base output, of data
    assert {json.loads(e.read_text())["images"] for e in entries} == {21}
    with pytest.raises(ValueError, match="sorted"):
        predict(m, data, rows=[3, 1])


@pytest.mark.parametrize("n", [40, 32, 5])
def test_an_entry_traces_its_network_once_whatever_the_last_batch(tmp_path, n):
    """n images in batches of 32: a short last batch runs on the same graph, not on a
    trace of its own (a retrace of a large prefix costs seconds per entry)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    net = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp)))
    images = np.random.default_rng(1).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    cache = CacheSpec(str(tmp_path), batch_size=32)
    (x,), info = activations(net, [images], model_key(net, {}, "float32"), cache)
    assert not info["hit"] and x.shape == (n, 3)
    assert forward(net).experimental_get_tracing_count() == 1
    # every row is its own image's output
    want = np.asarray(net(images.astype(np.float32)))
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-6)


def test_forward_graphs_do_not_keep_their_models_alive():
    import gc
    import weakref
    inp = keras.Input((4,))
    net = keras.Model(inp, keras.layers.Dense(2)(inp))
    forward(net)(np.zeros((3, 4), np.float32))
    gone = weakref.ref(net)
    del net, inp
    gc.collect()
    assert gone() is None
