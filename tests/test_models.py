import numpy as np
import pytest

from fer.train.finetune import seed_everything, train_two_step, validation_split
from fer.core.schema import BACKBONES
from fer.train.backbones import (ModelSpec, Normalize, build_base, build_classifier, table2,
                                 table2_row, unfreeze_last)
from fer.data.dataset import Dataset
from fer.data.labels import EMOTIONS
from sections import section

PAPER_K = {"vgg16": 5, "vgg19": 9, "inception_v3": 140, "inception_resnet_v2": 371}
PRE = {"vgg16": "caffe", "vgg19": "caffe", "inception_v3": "scale01",
       "inception_resnet_v2": "scale01"}


@pytest.mark.parametrize("name", sorted(PAPER_K))
def test_backbone_output_and_step2_trainable_layers(name):
    spec = ModelSpec(name=name, k=PAPER_K[name], preprocess=PRE[name],
                     weights="none", input_size=75)
    model, base = build_classifier(spec)
    assert model.output_shape == (None, 7)
    assert [l.name for l in model.layers[-3:]] == ["gap", "fc", "emotion"]
    assert model.get_layer("fc").units == 256
    unfreeze_last(base, spec.k)
    assert sum(l.trainable for l in base.layers) == spec.k
    assert all(l.trainable for l in base.layers[-spec.k:])


def test_table2_layer_counts_and_params():
    rows = {r["model"]: r for r in table2([ModelSpec(name=n, k=PAPER_K[n], preprocess=PRE[n],
                                                     weights="none", input_size=224)
                                           for n in PAPER_K])}
    assert {n: r["layers"] for n, r in rows.items()} == {
        "vgg16": 19, "vgg19": 22, "inception_v3": 311, "inception_resnet_v2": 780}
    # the table the config validation and fer.train.grid.check_cell count on, without Keras
    assert {n: BACKBONES[n].layers for n in rows} == {n: r["layers"] for n, r in rows.items()}
    assert rows["vgg16"]["params"] == 14714688 and rows["vgg19"]["params"] == 20024384
    assert rows["inception_v3"]["params"] == 21802784
    assert rows["inception_resnet_v2"]["params"] == 54336736
    assert rows["vgg16"]["trainable_params"] == 7079424


def test_normalization_exact_values():
    px = np.array([[[[10, 20, 30], [255, 51, 0]]]], np.uint8)
    normalize = lambda x, mode: np.asarray(Normalize(mode)(x))         # noqa: E731
    caffe = normalize(px, "caffe")
    np.testing.assert_allclose(caffe[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68],
                               rtol=0, atol=1e-4)
    np.testing.assert_allclose(caffe[0, 0, 1], [0 - 103.939, 51 - 116.779, 255 - 123.68],
                               rtol=0, atol=1e-4)
    np.testing.assert_allclose(normalize(px, "scale01")[0, 0, 1], [1.0, 0.2, 0.0], atol=1e-7)
    # Keras's InceptionV3/InceptionResNetV2 ImageNet weights expect [-1, 1]
    np.testing.assert_allclose(normalize(px, "tf")[0, 0, 1], [1.0, 51 / 127.5 - 1, -1.0],
                               atol=1e-7)
    # float 0-255 pixels give what uint8 ones do
    np.testing.assert_array_equal(normalize(px.astype(np.float32), "caffe"), caffe)
    with pytest.raises(ValueError, match="preprocess"):
        Normalize("torch")


def test_the_classifier_takes_pixels_and_loads_back(tmp_path):
    """The first layer normalises: model.keras (and so the TF.js export) takes 0-255
    pixels, and loads back with its normalisation."""
    import keras
    from fer.train.keras_io import save_model
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="none", input_size=32)
    model, base = build_classifier(spec, 0)
    assert model.layers[1].name == "normalize" and model.layers[2] is base
    x = tiny_dataset().images[:3]
    want = base(Normalize("caffe")(x), training=False)
    np.testing.assert_array_equal(model.get_layer("gap")(want),
                                  model.get_layer("gap")(base(model.layers[1](x))))
    save_model(model, tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_model_specs():
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        ModelSpec(name="resnet50", k=5, preprocess="caffe", weights="imagenet", input_size=224)
    with pytest.raises(ValueError, match="below the backbone's minimum of 75"):
        ModelSpec(name="inception_v3", k=140, preprocess="scale01", weights="none", input_size=64)
    with pytest.raises(ValueError, match="k = 25 exceeds its 19 layers"):
        build_base(ModelSpec(name="vgg16", k=25, preprocess="caffe",
                             weights="none", input_size=32))
    with pytest.raises(FileNotFoundError, match="missing.h5 not found"):
        build_base(ModelSpec(name="vgg16", k=5, preprocess="caffe",
                             weights="/tmp/missing.h5", input_size=32))


def tiny_dataset(n_per_class=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    n = n_per_class * len(EMOTIONS)
    import pandas as pd
    labels = [EMOTIONS[i % 7] for i in range(n)]
    manifest = pd.DataFrame({"path": [f"x{i}" for i in range(n)], "label": labels,
                             "subject": [f"s{i % 5}" for i in range(n)], "database": "T",
                             "source": "", "source_subject": [f"T/s{i % 5}" for i in range(n)]})
    manifest["label_id"] = [i % 7 for i in range(n)]
    return Dataset(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), manifest)


def test_fit_changes_only_trainable_weights_and_is_reproducible():
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="none", input_size=32)
    data = tiny_dataset()
    seed_everything(3)
    initial, _ = build_classifier(spec)
    before = {w.path: w.numpy().copy() for w in initial.weights}
    train = section("train", epochs_step1=1, epochs_step2=1, batch_size=7, val_fraction=0.2,
                    fast_path=False)
    model, history, seconds = train_two_step(spec, train, data, seed=3)
    after = {w.path: w.numpy() for w in model.weights}
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    frozen_convs = ["block1_conv1", "block3_conv3", "block4_conv2", "block4_conv3"]
    assert not any(n in p for p in changed for n in frozen_convs)
    for n in ("block5_conv1", "block5_conv3", "fc", "emotion"):
        assert any(n in p for p in changed), n
    assert set(history) == {"step1", "step2"}
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history["step2"])
    assert len(seconds["step1"]) == 1 and len(seconds["step2"]) == 1
    # the logged validation numbers are Keras's own evaluation of the validation subjects
    _, va = validation_split(data, train, 3)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_val = model.evaluate(data.images[va], data.labels[va], batch_size=7, verbose=0,
                               return_dict=True)
    assert history["step2"]["val_accuracy"] == [keras_val["accuracy"]]
    assert history["step2"]["val_loss"][0] == pytest.approx(keras_val["loss"], rel=1e-6)
    again, _, _ = train_two_step(spec, train, data, seed=3)
    for a, b in zip(model.weights, again.weights):
        assert np.array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("weights,fast_path", [("none", False), ("fixed_random", False),
                                               ("fixed_random", True)])
def test_seeds_on_the_reused_traced_classifier_equal_fresh_builds_bit_for_bit(
        weights, fast_path, tmp_path, monkeypatch):
    from fer.train.finetune import Cell, predict
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights=weights, input_size=32)
    data = tiny_dataset()
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path))
    train = section("train", epochs_step1=2, epochs_step2=2, batch_size=7, val_fraction=0.2,
                    fast_path=fast_path)
    fresh = {}
    for seed in (0, 1):
        model, history, _ = train_two_step(spec, train, data, seed)
        fresh[seed] = (history, [w.numpy() for w in model.weights],
                       predict(model, data))
    traces = []
    for seed in (1, 0, 1):               # a seed after another one, and again
        model, history, _ = train_two_step(spec, train, data, seed, reuse=True)
        assert history == fresh[seed][0], seed
        for a, b in zip(model.weights, fresh[seed][1]):
            assert np.array_equal(a.numpy(), b), (seed, a.path)
        assert np.array_equal(predict(model, data), fresh[seed][2])
        traces.append([s.train_function for s in Cell.current.steps])
    # the graphs the first seed traced, never rebuilt (a compile per seed would)
    assert all(a is b for t in traces[1:] for a, b in zip(traces[0], t))
    assert model is Cell.current.model
    # rewinding the optimizers keeps their non-zero start (the learning rates), not a
    # copy of every Adam moment (~57 MB for VGG16's step 2)
    kept = [x for _, start in Cell.current.compiled.values() for x in start.values()]
    assert sum(x.nbytes for x in kept) <= 16, [x.shape for x in kept]
    # half the rows, fewer batches an epoch (a call of `fit` runs an epoch): the same
    # numbers as a fresh build again
    rows = np.arange(len(data) // 2)
    want = train_two_step(spec, train, data, 0, rows=rows)[1]
    assert train_two_step(spec, train, data, 0, reuse=True, rows=rows)[1] == want


def test_a_later_seed_on_a_reused_cell_leaves_tensorflows_kernel_cache_alone(tmp_path,
                                                                            monkeypatch):
    """`tf.random.set_seed` clears TensorFlow's kernel cache: every traced function starts
    again (+0.15 s a VGG16 step-1 fit, bench/finetune_speed.py). A reused fixed-base cell
    draws a seed's head from the seed alone and seeds nothing globally."""
    import tensorflow as tf
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="fixed_random", input_size=32)
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path))
    train = section("train", epochs_step1=1, epochs_step2=1, batch_size=7, val_fraction=0.2)
    train_two_step(spec, train, tiny_dataset(), 0, reuse=True)
    seeded = []
    monkeypatch.setattr(tf.random, "set_seed", seeded.append)
    train_two_step(spec, train, tiny_dataset(), 1, reuse=True)
    assert seeded == []


def test_a_fixed_base_is_the_same_for_every_seed_and_the_head_is_the_seeds():
    from fer.train.backbones import draw_head
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="fixed_random", input_size=32)
    (a, base_a), (b, base_b) = build_classifier(spec, 0), build_classifier(spec, 1)
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(base_a.weights,
                                                                    base_b.weights))
    fc = lambda m: m.get_layer("fc").kernel.numpy()                       # noqa: E731
    assert not np.array_equal(fc(a), fc(b))
    # the same fixed base whatever was drawn before; a `none` base is the seed's own
    seed_everything(5)
    np.random.rand(3)
    c, base_c = build_classifier(spec, 0)
    assert np.array_equal(base_c.weights[0].numpy(), base_a.weights[0].numpy())
    assert np.array_equal(fc(c), fc(a))
    none1, _ = build_classifier(ModelSpec(name="vgg16", k=5, preprocess="caffe",
                                          weights="none", input_size=32), 1)
    assert not np.array_equal(none1.weights[0].numpy(), base_a.weights[0].numpy())
    # the head alone, drawn again in place as a reused cell draws a seed's
    draw_head(a, 1)
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(
        a.get_layer("fc").weights + a.get_layer("emotion").weights,
        b.get_layer("fc").weights + b.get_layer("emotion").weights))


def test_predict_traces_once_whatever_the_last_batch():
    from fer.train.activations import forward
    from fer.train.finetune import predict
    spec = ModelSpec(name="vgg16", k=5, preprocess="caffe", weights="none", input_size=32)
    seed_everything(0)
    model, _ = build_classifier(spec)
    sets = [tiny_dataset(n, seed=n) for n in (1, 2, 10)]        # 7, 14, 70 images
    probs = [predict(model, d, batch_size=16) for d in sets]
    assert [len(p) for p in probs] == [7, 14, 70]
    assert forward(model).experimental_get_tracing_count() == 1
    for d, p in zip(sets, probs):                # each row is its own image's answer
        one = model(d.images[-1:].astype(np.float32), training=False).numpy()
        np.testing.assert_allclose(p[-1:], one, rtol=0, atol=1e-6)


def test_compact_input_grey_area_resize_and_per_image_standardisation():
    """The compact backbone's preprocessing lives in the model: BT.601 grey, then the
    area resize as cv2's INTER_AREA shrinks (80 -> 48: overlapping weights), then each
    image to zero mean and unit variance."""
    import cv2
    px = np.random.default_rng(0).integers(0, 256, (2, 80, 80, 3), dtype=np.uint8)
    grey = px.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    area = np.stack([cv2.resize(g, (48, 48), interpolation=cv2.INTER_AREA) for g in grey])
    out = np.asarray(Normalize("scale01", 1, 48)(px))
    assert out.shape == (2, 48, 48, 1)
    np.testing.assert_allclose(out[..., 0] * 255, area, rtol=0, atol=1e-4)
    std = np.asarray(Normalize("per_image", 1, 48)(px))
    np.testing.assert_allclose(std.mean((1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(std.std((1, 2, 3)), 1, atol=1e-5)
    flat = np.asarray(Normalize("per_image", 1, 48)(np.full((1, 80, 80, 3), 7, np.uint8)))
    assert np.abs(flat).max() < 1e-3              # a flat image: no division by zero
    model, base = build_classifier(ModelSpec(name="mini_xception", k=43, preprocess="per_image",
                                             weights="none", input_size=80,
                                             size=48, channels=1), seed=0)
    assert model.input_shape == (None, 80, 80, 3) and base.input_shape == (None, 48, 48, 1)
    assert table2_row(ModelSpec(name="mini_xception", k=43, preprocess="per_image",
                                weights="none", input_size=80, size=48,
                                channels=1), base)["params"] == 50352


def test_subsampled_conv_is_the_strided_1x1_conv():
    """mini_xception's shortcut projection (SubsampledConv2D) gives what a stride-2 1x1
    Conv2D with the same weights gives, for even and odd sides."""
    import keras
    from fer.train.backbones import SubsampledConv2D
    for side in (44, 45):
        x = np.random.default_rng(side).normal(size=(3, side, side, 8)).astype(np.float32)
        conv = keras.layers.Conv2D(16, 1, strides=2, padding="same", use_bias=False)
        sub = SubsampledConv2D(16, 1, strides=2, padding="same", use_bias=False)
        want = np.asarray(conv(x))
        sub.build(x.shape)
        sub.set_weights(conv.get_weights())
        np.testing.assert_array_equal(np.asarray(sub(x)), want)

def test_fused_batchnorm_is_keras_batchnorm():
    """mini_xception's FusedBatchNormalization trains as Keras's BatchNormalization does:
    the same outputs, gradients and moving statistics (biased variance), and the same
    inference."""
    import keras
    import tensorflow as tf
    from fer.train.backbones import FusedBatchNormalization
    x = tf.constant(np.random.default_rng(0).normal(2, 3, (7, 11, 13, 8)).astype(np.float32))
    gamma = np.random.default_rng(1).normal(1, 0.2, 8).astype(np.float32)
    got = []
    for bn in (keras.layers.BatchNormalization(momentum=0.9),
               FusedBatchNormalization(momentum=0.9)):
        bn.build(x.shape)
        bn.gamma.assign(gamma)
        bn.beta.assign(gamma - 1)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bn(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(x))
        got.append([y, *tape.gradient(loss, [x, bn.gamma, bn.beta]), bn.moving_mean,
                    bn.moving_variance, bn(x, training=False)])
    for want, have, atol in zip(*got, (1e-5, 1e-5, 1e-3, 1e-3, 1e-6, 1e-5, 1e-5)):
        np.testing.assert_allclose(np.asarray(have), np.asarray(want), atol=atol)



MINI_XCEPTION_ODD_BATCHES = """
import numpy as np, keras
from fer.train.backbones import ModelSpec, build_classifier
model, _ = build_classifier(ModelSpec(name="mini_xception", k=43, preprocess="per_image",
                                      weights="none", input_size=80, size=48,
                                      channels=1), seed=1)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
for n in (7, 1, 9, 3):                      # odd batches: an epoch's last partial batch
    model.train_on_batch(rng.integers(0, 256, (n, 80, 80, 3)).astype("float32"),
                         np.arange(n) % 7)
print("trained")
"""


def test_mini_xception_trains_on_odd_batches_with_onednn():
    """Regression: with oneDNN on (TensorFlow's CPU default), the gradient of a stride-2
    1x1 convolution of an 8-channel input overran a oneDNN buffer on odd batch sizes
    (uxlfoundation/oneDNN#6035) and the process died ("double free or corruption",
    SIGABRT / SIGSEGV) in mini_xception's first training epoch with such a last batch.
    In a subprocess, since the failure is a crash."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", MINI_XCEPTION_ODD_BATCHES], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "trained" in out.stdout, (out.returncode, out.stderr[-2000:])
