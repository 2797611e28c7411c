from pathlib import Path

import numpy as np
import pytest
from keras import layers

from fer.gan import GanSpec, build_discriminator, build_generator, generate, make_gan
from fer.gan_train import GanTrainSpec, train_emotion_gan
from fer.kid import FeatureExtractor, kid, pixel_features


def test_paper_architecture_at_224():
    spec = GanSpec()
    g, d = build_generator(spec), build_discriminator(spec)
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
    spec = GanSpec(image_size=32, blocks=3, variant="bn_gap")
    g, d = build_generator(spec), build_discriminator(spec)
    assert sum(isinstance(l, layers.BatchNormalization) for l in g.layers) == 2
    assert any(isinstance(l, layers.GlobalAveragePooling2D) for l in d.layers)
    assert not any(isinstance(l, layers.Flatten) for l in d.layers)
    with pytest.raises(ValueError, match="not divisible"):
        GanSpec(image_size=100, blocks=3)


def test_train_step_moves_both_networks():
    gan = make_gan(GanSpec(image_size=16, blocks=2), seed=0)
    g0 = [w.numpy().copy() for w in gan.generator.trainable_weights]
    d0 = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    out = gan.train_on_batch(real, return_dict=True)
    assert np.isfinite(out["d_loss"]) and np.isfinite(out["g_loss"])
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(g0, gan.generator.trainable_weights))
    assert all(not np.array_equal(a, b.numpy())
               for a, b in zip(d0, gan.discriminator.trainable_weights))


def test_generate_count_shape_range_and_seed():
    gan = make_gan(GanSpec(image_size=16, blocks=2), seed=3)
    a = generate(gan.generator, 10, seed=5)
    assert a.shape == (10, 16, 16, 3) and a.dtype == np.uint8
    assert a.min() >= 0 and a.max() <= 255 and a.std() > 0
    assert np.array_equal(a, generate(gan.generator, 10, seed=5))
    again = make_gan(GanSpec(image_size=16, blocks=2), seed=3)
    assert np.array_equal(a, generate(again.generator, 10, seed=5))


def test_kid_self_and_noise(demo_root):
    from fer.images import read_rgb
    root, _ = demo_root
    faces = np.stack([read_rgb(p) for p in sorted((root / "jaffe").glob("*.tiff"))])
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    f, fn = pixel_features(faces), pixel_features(noise)
    far = kid(f, fn)
    assert far > 1.0
    assert abs(kid(f, f)) < 0.01 * far
    assert abs(kid(f[::2], f[1::2])) < 0.05 * far     # two halves of one database: close
    assert FeatureExtractor("pixels").name == "pixels"
    with pytest.raises(FileNotFoundError, match="no InceptionV3 weights"):
        FeatureExtractor("inception", weights="/nonexistent.h5")


def test_inception_features_from_a_local_weights_file(tmp_path):
    import keras
    net = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                         input_shape=(299, 299, 3))
    path = tmp_path / "inception_notop.weights.h5"
    net.save_weights(path)
    ex = FeatureExtractor("auto", weights=str(path))
    assert ex.name == "inception"
    imgs = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    feats = ex(imgs)
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()


class Killed(Exception):
    pass


def test_resume_equals_uninterrupted(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    spec = GanSpec(image_size=16, blocks=2)
    train = GanTrainSpec(epochs=6, batch_size=4, sample_every=2, keep_from=2, keep_every=2,
                         kid_images=8, seed=1)
    ex = FeatureExtractor("pixels")
    full = train_emotion_gan("sad", real, spec, train, ex, tmp_path / "a")

    def die_at_3(epoch, metrics):
        if epoch == 3:
            raise Killed()

    with pytest.raises(Killed):
        train_emotion_gan("sad", real, spec, train, ex, tmp_path / "b", log=die_at_3)
    resumed = train_emotion_gan("sad", real, spec, train, ex, tmp_path / "b")
    assert sorted(full["kid"]) == ["2", "4", "6"]
    assert full["kid"] == pytest.approx(resumed["kid"], rel=1e-6)
    assert full["chosen_epoch"] == resumed["chosen_epoch"]
    for a, b in zip(full["generator"].weights, resumed["generator"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    for record in (full, resumed):                 # grids from before the kill survive
        assert sorted(p.name for p in Path(record["samples_dir"]).iterdir()) == [
            "epoch_00002.png", "epoch_00004.png", "epoch_00006.png"]
