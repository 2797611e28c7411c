"""Deterministic .keras files: the same weights give the same bytes, at any time."""
import io
import time
import zipfile

import h5py
import keras
import numpy as np

from fer.train.finetune import seed_everything
from fer.gan.dcgan import build_generator
from fer.train.keras_io import ZIP_EPOCH, save_model
from sections import section


def test_same_model_same_bytes_and_loads_back(tmp_path):
    seed_everything(0)
    model = build_generator(section("gan", image_size=16, blocks=2, latent_dim=8,
                                    variant="bn_gap", base_filters=4))
    model.get_layer("up_1").trainable = False
    model.compile(keras.optimizers.Adam(1e-3), "mse")    # optimizer state and BN statistics
    z = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
    model.fit(z, np.zeros((8, 16, 16, 3), np.float32), epochs=1, verbose=0)
    save_model(model, tmp_path / "a.keras")
    time.sleep(2.1)                         # zip times have 2 s resolution, date_saved 1 s
    save_model(model, tmp_path / "b.keras")
    data = (tmp_path / "a.keras").read_bytes()
    assert data == (tmp_path / "b.keras").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras", "b.keras"]

    with zipfile.ZipFile(io.BytesIO(data)) as z_:
        assert [i.filename for i in z_.infolist()] == ["config.json", "metadata.json",
                                                       "model.weights.h5"]
        assert {i.date_time for i in z_.infolist()} == {ZIP_EPOCH}
        assert b"date_saved" not in z_.read("metadata.json")
        with h5py.File(io.BytesIO(z_.read("model.weights.h5")), "r") as h5:
            assert "optimizer" not in h5                 # kept models are for inference
    loaded = keras.models.load_model(tmp_path / "a.keras")
    assert np.array_equal(loaded.predict(z, verbose=0), model.predict(z, verbose=0))
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))
    assert loaded.get_layer("up_1").trainable is False


def test_a_saved_classifier_loaded_and_saved_again_is_the_same_file(tmp_path):
    # the finetune stage publishes the selected seed's file as it is (a copy), which is
    # what loading it and saving it again would write
    from fer.train.keras_io import keras_bytes
    from fer.train.backbones import ModelSpec, build_classifier
    seed_everything(0)
    model, _ = build_classifier(ModelSpec(name="vgg16", k=5, preprocess="caffe",
                                          weights="none", input_size=32))
    save_model(model, tmp_path / "seed.keras")
    again = keras_bytes(keras.models.load_model(tmp_path / "seed.keras"))
    assert again == (tmp_path / "seed.keras").read_bytes()


def test_an_uncompiled_classifier_is_saved_as_it_is_with_a_rebuilt_ones_bytes():
    # the grid's classifier is never compiled (its step models are): saved without the
    # rebuild, its config still carries no per-process `shared_object_id` (a memory
    # address), so it has the bytes of the compiled-and-rebuilt path, in any process
    from fer.train.keras_io import keras_bytes
    from fer.train.backbones import ModelSpec, build_classifier
    model, _ = build_classifier(ModelSpec(name="vgg16", k=5, preprocess="caffe",
                                          weights="fixed_random", input_size=32), 0)
    direct = keras_bytes(model)
    with zipfile.ZipFile(io.BytesIO(direct)) as z_:
        assert b"shared_object_id" not in z_.read("config.json")
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    assert keras_bytes(model) == direct
