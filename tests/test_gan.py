import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from keras import layers

import fer.gan.kid
from fer.data.dataset import save_dataset
from fer.gan.dcgan import build_discriminator, build_generator, generate, make_gan
from fer.gan.train import CODE_FILES, fingerprint, saved_state, train_emotion_gan
from fer.gan.kid import FeatureExtractor, kid, pixel_features
from fer.core.params import ROOT
from sections import section


def test_paper_architecture_at_224():
    gan = section("gan")
    g, d = build_generator(gan), build_discriminator(gan)
    ups = [l.output.shape[1:] for l in g.layers if l.name.startswith("up_")]
    assert ups == [(14, 14, 512), (28, 28, 256), (56, 56, 128), (112, 112, 64),
                   (224, 224, 32)]
    assert g.get_layer("image").output.shape[1:] == (224, 224, 3)
    assert g.get_layer("image").activation.__name__ == "tanh"
    assert g.input_shape == (None, 100)
    downs = [l.output.shape[1:] for l in d.layers if l.name.startswith("down_")]
    assert downs == [(112, 112, 32), (56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)]
    assert d.get_layer("conv_in").output.shape[1:] == (224, 224, 32)
    assert any(isinstance(l, layers.Flatten) for l in d.layers)
    assert sum(isinstance(l, layers.LeakyReLU) for l in d.layers) == 6
    assert d.output_shape == (None, 1)


def test_bn_gap_variant():
    gan = section("gan", image_size=32, blocks=3, variant="bn_gap")
    g, d = build_generator(gan), build_discriminator(gan)
    assert sum(isinstance(l, layers.BatchNormalization) for l in g.layers) == 2
    assert any(isinstance(l, layers.GlobalAveragePooling2D) for l in d.layers)
    assert not any(isinstance(l, layers.Flatten) for l in d.layers)
    with pytest.raises(ValueError, match="not divisible"):
        section("gan", image_size=100, blocks=3)


def test_train_step_moves_both_networks():
    gan = make_gan(section("gan", image_size=16, blocks=2, seed=0))
    g0 = [w.numpy().copy() for w in gan.generator.trainable_weights]
    d0 = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    out = gan.train_on_batch(real, return_dict=True)
    assert np.isfinite(out["d_loss"]) and np.isfinite(out["g_loss"])
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(g0, gan.generator.trainable_weights))
    assert all(not np.array_equal(a, b.numpy())
               for a, b in zip(d0, gan.discriminator.trainable_weights))


def test_generate_count_shape_range_and_seed():
    gan = make_gan(section("gan", image_size=16, blocks=2, seed=3))
    a = generate(gan.generator, 10, seed=5)
    assert a.shape == (10, 16, 16, 3) and a.dtype == np.uint8
    assert a.min() >= 0 and a.max() <= 255 and a.std() > 0
    assert np.array_equal(a, generate(gan.generator, 10, seed=5))
    again = make_gan(section("gan", image_size=16, blocks=2, seed=3))
    assert np.array_equal(a, generate(again.generator, 10, seed=5))


def test_kid_self_and_noise(demo_root):
    from fer.data.images import read_rgb
    root, _ = demo_root
    faces = np.stack([read_rgb(p) for p in sorted((root / "jaffe").glob("*.tiff"))])
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    f, fn = pixel_features(faces), pixel_features(noise)
    far = kid(f, fn)
    assert far > 1.0
    assert abs(kid(f, f)) < 0.01 * far
    assert abs(kid(f[::2], f[1::2])) < 0.05 * far     # two halves of one database: close
    assert FeatureExtractor("pixels").identity == {
        "kid_features": "pixels", "kid_weights": None, "kid_weights_md5": None}


def test_kid_features_are_explicit_and_missing_weights_fail(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="gan.kid_features must be one of pixels, "
                                         "inception, got 'auto'"):
        FeatureExtractor("auto")
    with pytest.raises(FileNotFoundError, match="gan.kid_weights: InceptionV3 weights file "
                                                "/nonexistent.h5 not found"):
        FeatureExtractor("inception", weights="/nonexistent.h5")
    # offline: nothing in the (empty) Keras cache and the download fails (a closed
    # loopback port stands for the unreachable storage.googleapis.com)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(fer.gan.kid, "INCEPTION_URL", f"http://127.0.0.1:{port}/notop.h5")
    with pytest.raises(RuntimeError, match="gan.kid_weights=imagenet: the InceptionV3 "
                                           "ImageNet weights are not cached"):
        FeatureExtractor("inception", weights="imagenet", cache_dir=tmp_path / "keras")


@pytest.fixture(scope="module")
def inception_h5(tmp_path_factory):
    """Random-init InceptionV3 no-top weights: the real architecture, made offline."""
    import keras
    net = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                         input_shape=(299, 299, 3))
    path = tmp_path_factory.mktemp("kid") / "inception_notop.weights.h5"
    net.save_weights(path)
    return path


def test_inception_features_from_a_local_weights_file(inception_h5):
    ex = FeatureExtractor("inception", weights=str(inception_h5))
    md5 = hashlib.md5(inception_h5.read_bytes()).hexdigest()
    assert ex.identity == {"kid_features": "inception", "kid_weights": str(inception_h5),
                           "kid_weights_md5": md5}
    imgs = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    feats = ex(imgs)
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()


class Killed(Exception):
    pass


def _small_gan(epochs):
    """(real images, gan section, pixel features): a GAN that trains in seconds, state
    saved every 2 epochs."""
    real = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    gan = section("gan", image_size=16, blocks=2, epochs=epochs, batch_size=4, sample_every=2,
                  keep_from=2, keep_every=2, kid_images=8, seed=1)
    return real, gan, FeatureExtractor("pixels")


def die_at_3(rows):
    """A `log` that kills the run when it is given epoch 3 (before the epoch-4 save)."""
    if any(epoch == 3 for epoch, _ in rows):
        raise Killed()


def test_resume_equals_uninterrupted(tmp_path):
    real, gan, ex = _small_gan(epochs=6)
    calls = []
    full = train_emotion_gan("sad", real, gan, ex, tmp_path / "a", log=calls.append)
    # every epoch logged once, batched up to each state save (every 2 epochs)
    assert [[e for e, _ in rows] for rows in calls] == [[1, 2], [3, 4], [5, 6]]
    assert [m["d_loss"] for rows in calls for _, m in rows] == [
        h["d_loss"] for h in full["history"]]

    with pytest.raises(Killed):
        train_emotion_gan("sad", real, gan, ex, tmp_path / "b", log=die_at_3)
    resumed = train_emotion_gan("sad", real, gan, ex, tmp_path / "b")
    assert (full["resumed_from"], resumed["resumed_from"]) == (0, 2)
    assert sorted(full["kid"]) == ["2", "4", "6"]
    assert full["kid"] == pytest.approx(resumed["kid"], rel=1e-6)
    assert full["chosen_epoch"] == resumed["chosen_epoch"]
    for a, b in zip(full["generator"].weights, resumed["generator"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    for record in (full, resumed):                 # grids from before the kill survive
        assert sorted(p.name for p in Path(record["samples_dir"]).iterdir()) == [
            "epoch_00002.png", "epoch_00004.png", "epoch_00006.png"]


def test_resume_state_is_keyed_by_content_params_and_code(tmp_path):
    real, gan, ex = _small_gan(epochs=4)
    extra = {"crop_size": 80}
    with pytest.raises(Killed):
        train_emotion_gan("sad", real, gan, ex, tmp_path / "s", log=die_at_3, key_extra=extra)

    def epoch(*args, **kw):
        state = saved_state(tmp_path / "s", fingerprint(*args, **kw))
        return state["epoch"] if state else 0

    assert epoch("sad", real, gan, ex.identity, extra) == 2        # unchanged
    assert epoch("sad", real.copy(), gan.model_copy(), ex.identity, dict(extra)) == 2
    other = real.copy()
    other[5, 7, 7, 1] ^= 1                                    # one bit, same size
    assert epoch("sad", other, gan, ex.identity, extra) == 0
    for key, value in (("lr", 1e-4), ("variant", "bn_gap"), ("n_generate", 21)):
        assert epoch("sad", real, gan.model_copy(update={key: value}), ex.identity,
                     extra) == 0, key
    assert epoch("sad", real, gan, ex.identity, {"crop_size": 81}) == 0
    assert epoch("sad", real, gan, {**ex.identity, "kid_features": "inception",
                                    "kid_weights_md5": "0" * 32}, extra) == 0
    # the bytes of the GAN code: a one-character edit of a copy of fer/gan/dcgan.py
    code = [tmp_path / f.name for f in CODE_FILES]
    for f, c in zip(CODE_FILES, code):
        shutil.copy(f, c)
    same = fingerprint("sad", real, gan, ex.identity, extra, code_files=code)
    assert same == fingerprint("sad", real, gan, ex.identity, extra)
    code[0].write_text(code[0].read_text() + " ")
    assert fingerprint("sad", real, gan, ex.identity, extra, code_files=code) != same

    # through the trainer: other params never resume (and the stale state is replaced)
    rerun = train_emotion_gan("sad", real, gan, ex, tmp_path / "s", key_extra={"crop_size": 81})
    assert rerun["resumed_from"] == 0 and [h["epoch"] for h in rerun["history"]] == [1, 2, 3, 4]


def _stage_dir(tmp_path, sad=8, **gan):
    """A repository-like folder with cropped 'sad' KDEF faces and tiny GAN params."""
    from test_grid import vgg16_demo_params
    params = vgg16_demo_params("KDEF_OL")
    params["gan_quality"]["classifier"] = None
    params["gan"].update({**dict(image_size=16, blocks=2, epochs=6, batch_size=4,
                                 sample_every=2, keep_from=2, keep_every=2, kid_images=8,
                                 n_generate=5, extra_source="kdef"), **gan})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    n = sad + 6
    labels = ["sad"] * sad + ["happy"] * 6
    m = pd.DataFrame({"path": [f"k{i}.jpg" for i in range(n)], "label": labels,
                      "subject": [f"s{i % 4}" for i in range(n)], "database": "kdef",
                      "source": "", "source_subject": [f"KDEF/s{i % 4}" for i in range(n)]})
    images = np.random.default_rng(2).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    save_dataset(tmp_path / "build/crop/kdef", images, m)
    return params


# Runs the GAN stage and SIGKILLs its process right after epochs 3 and 4 were logged,
# before epoch 4's state was saved (the state on disk is from epoch 2): the resumed run
# logs epochs 3 and 4 again, and MLflow must keep one of each.
KILLED_STAGE = """
import os, signal
import stages.gan as stage
real = stage.train_emotion_gan

def killed_after_4(*args, log, **kw):
    def log_then_die(rows):
        log(rows)
        if any(epoch == 4 for epoch, _ in rows):
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, log=log_then_die, **kw)

stage.train_emotion_gan = killed_after_4
stage.main("sad")
"""


def test_gan_stage_killed_and_resumed_keeps_one_whole_mlflow_run(tmp_path, monkeypatch):
    _stage_dir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri,
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-c", KILLED_STAGE], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-3000:]
    assert saved_state(tmp_path / ".cache/gan/sad",
                       json.loads((tmp_path / ".cache/gan/sad/state/record.json").read_text())
                       ["fingerprint"])["epoch"] == 2

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from stages import gan as stage
    stage.main("sad")

    import mlflow
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "dcgan-sad"
    for key in ("d_loss", "g_loss"):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == [
            1, 2, 3, 4, 5, 6]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "kid")) == [
        2, 4, 6]
    assert run.data.params["kid_features"] == "pixels"
    summary = json.loads((tmp_path / "metrics/gan/sad.json").read_text())
    assert summary["kid_features"] == "pixels" and summary["kid_weights_md5"] is None
    assert summary["train_images"] == 8 and summary["generated"] == 5
    losses = (tmp_path / "reports/gan/sad_losses.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in losses[1:]] == ["1", "2", "3", "4", "5", "6"]
    from fer.data.dataset import load_dataset
    generated = load_dataset(tmp_path / "build/derived/gan_q/sad")    # like every producer
    assert generated.images.shape[0] == 5 and set(generated.manifest["label"]) == {"sad"}
    assert (generated.manifest["source_subject"] == "").all()          # train-only rows
    assert not (tmp_path / ".cache/gan/sad").exists()


def test_gan_stage_records_the_inception_weights(tmp_path, monkeypatch, inception_h5):
    local = tmp_path / "kid_weights" / inception_h5.name      # where the schema wants it
    local.parent.mkdir()
    shutil.copy(inception_h5, local)
    _stage_dir(tmp_path, sad=2, epochs=2, batch_size=2, kid_images=2,
               kid_features="inception", kid_weights=f"kid_weights/{inception_h5.name}")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from stages import gan as stage
    stage.main("sad")
    md5 = hashlib.md5(inception_h5.read_bytes()).hexdigest()
    summary = json.loads((tmp_path / "metrics/gan/sad.json").read_text())
    assert (summary["kid_features"], summary["kid_weights"], summary["kid_weights_md5"]) == (
        "inception", f"kid_weights/{inception_h5.name}", md5)
    assert set(summary["kid"]) == {"2"}
    import mlflow
    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("dcgan").experiment_id])[0]
    assert run.data.params["kid_features"] == "inception"
    assert run.data.params["kid_weights_md5"] == md5


def test_the_demo_schedule_draws_toward_the_faces(tmp_path):
    """The demo's recipe (thin nets, Adam 1e-3, every face in each step) on 12 drawn
    faces at 16 px: within 150 steps the chosen checkpoint's pixel KID to the faces is
    well below the untrained generator's (measured: 0.12 -> 0.04-0.05 for seeds 0, 1)."""
    from fer.data.demo import _face
    real = np.stack([cv2.resize(_face("kdef", s, 0, "happy", 1.0, 0, 0.3), (16, 16),
                                interpolation=cv2.INTER_AREA) for s in range(12)])
    gan, ex = section("gan", image_size=16, blocks=2, base_filters=16, epochs=150,
                      batch_size=32, lr=1e-3, sample_every=150, keep_from=50, keep_every=25,
                      kid_images=32, seed=0), FeatureExtractor("pixels")
    untrained = kid(ex(generate(make_gan(gan).generator, 32, 7)), ex(real))
    record = train_emotion_gan("happy", real, gan, ex, tmp_path)
    assert record["kid"][str(record["chosen_epoch"])] < 0.6 * untrained
