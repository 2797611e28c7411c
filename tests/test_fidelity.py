"""Label fidelity (GAN-test, GAN-train) on cases whose answers are known, with a real
tiny classifier on drawn faces."""
import warnings

import cv2
import numpy as np
import pandas as pd
import pytest
import keras
from keras import layers

from fer.data.dataset import Dataset, with_label_ids
from fer.data.demo import TIGHT_STYLE, _face
from fer.data.labels import EMOTIONS
from fer.data.splits import holdout_by_source
from fer.gan.fidelity import (at_resolution, classify, label_fidelity, recall_per_emotion,
                              train_classifier)

SIZE = 32


def small_cnn(seed: int) -> keras.Model:
    """A plain small CNN on 0-255 RGB pixels (the stage builds a `models` entry)."""
    x = inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Rescaling(1 / 255)(x)
    for filters in (8, 16):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(len(EMOTIONS), activation="softmax")(x))


def faces(subjects, keys=(0, 1)) -> Dataset:
    rows, images = [], []
    for s in subjects:
        for e in EMOTIONS:
            for k in keys:
                img = _face("tight", s, 0, e, 1.0, k, 1.0, style=TIGHT_STYLE)
                images.append(cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
                rows.append({"path": f"S{s}/{e}/{k}", "label": e, "subject": f"S{s}",
                             "database": "TIGHT", "source": "", "source_subject": f"TIGHT/S{s}"})
    return Dataset(np.stack(images), with_label_ids(pd.DataFrame(rows)))


@pytest.fixture(scope="module")
def real():
    return faces(range(1, 9))


def test_real_images_posing_as_generated_score_the_classifier(real):
    """Generated := the held-out subjects' images: GAN-test is exactly the real-trained
    classifier's recall per emotion there, well above chance; generated := the real
    training images: GAN-train is exactly that too (same images, seed and batches)."""
    train, held = holdout_by_source(real.manifest, 0.25, 0)
    out = label_fidelity(small_cnn, real, real.subset(held), holdout=0.25, epochs=40,
                         lr=3e-3, seed=0)
    assert out["held_out_images"] == len(held) == 2 * 7 * 2
    assert out["real_train_accuracy"] > 0.6       # the classifier learns the drawn expressions
    assert out["gan_test"] == out["real_train"]
    again = label_fidelity(small_cnn, real, real.subset(train), 0.25, 40, 3e-3, 0)
    assert again["gan_train"] == again["real_train"] == out["real_train"]  # repeatable
    assert again["gan_train_accuracy"] == out["real_train_accuracy"]


def test_images_without_emotion_score_chance(real):
    """The same noise images under every emotion: mean GAN-test is exactly 1/7; a
    classifier trained on noise is near chance on real faces."""
    noise = np.random.default_rng(0).integers(0, 256, (20, SIZE, SIZE, 3), dtype=np.uint8)
    model = small_cnn(0)
    test = recall_per_emotion(classify(model, np.concatenate([noise] * 7)),
                              np.repeat(np.arange(7), len(noise)))
    assert list(test) == list(EMOTIONS)
    assert np.mean(list(test.values())) == pytest.approx(1 / 7)
    assert classify(model, noise[:1]).shape == (1,)
    generated = Dataset(np.concatenate([noise] * 7), with_label_ids(pd.DataFrame({
        "label": np.repeat(EMOTIONS, len(noise)), "source_subject": ""})))
    out = label_fidelity(small_cnn, real, generated, 0.25, 40, 3e-3, 0)
    assert out["gan_test_mean"] == pytest.approx(1 / 7)
    assert out["gan_train_accuracy"] < 0.3 < out["real_train_accuracy"]


def test_real_faces_are_compared_at_the_gans_resolution(real):
    """`resolution`: real faces are shrunk to the generator's side and back before any
    classifier sees them. Generated := the held-out subjects' faces at 8 px: at
    resolution 8 they are exactly what the real-trained classifier is scored on, so
    GAN-test equals its recall there; at full size the real-trained classifier learns
    from detail these images lack."""
    _, held = holdout_by_source(real.manifest, 0.25, 0)
    generated = at_resolution(real.subset(held), 8)
    assert generated.images.shape == real.subset(held).images.shape
    assert not np.array_equal(generated.images, real.subset(held).images)
    out = label_fidelity(small_cnn, real, generated, 0.25, 40, 3e-3, 0, resolution=8)
    assert out["gan_test"] == out["real_train"]
    full = label_fidelity(small_cnn, real, generated, 0.25, 40, 3e-3, 0)
    assert full["gan_test"] != full["real_train"]
    assert at_resolution(real, SIZE) is real and at_resolution(real, None) is real


def test_the_classifier_trains_in_the_pipelines_order_without_a_keras_warning(real):
    """The batches come seeded from `fer.train.finetune.batches`: fit is told not to shuffle
    (Keras warned on every gan_quality run that shuffle=True was ignored)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train_classifier(small_cnn, real.images[:20], real.labels[:20], 1, 1e-3, 0)
    assert model.built
    assert not [w for w in caught if "shuffle" in str(w.message)]
