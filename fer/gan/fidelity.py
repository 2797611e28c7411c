"""Label fidelity of generated images, after Shmelkov et al. 2018 ("How good is my GAN?").

Real images are split by source subject (`holdout_by_source`); generated ones have no
source subject, so they only ever train.
- GAN-test: a classifier trained on the real images of the other subjects classifies each
  emotion's generated images; per emotion, the share given that emotion.
- GAN-train: a classifier trained on the generated images alone is tested on the held-out
  subjects, beside the real-trained one (`real_train`). The GANs saw those subjects too,
  so this does not measure generalisation to unseen people.
Both classifiers (`build(seed)`: 0-255 RGB in, 7-way softmax out) train alike and
deterministically. Real faces are first shrunk to the GAN's `resolution` and back, so
sharpness alone cannot tell them from generated ones (demo GAN-test: 40 % without, 56 %).
"""
from __future__ import annotations

import numpy as np
import keras

from fer.data.dataset import Dataset
from fer.data.splits import holdout_by_source, source_subjects
from fer.evaluate.metrics import classification_metrics
from fer.gan.train import resize_all
from fer.train.finetune import batches, cosine, seed_everything


def train_classifier(build, images, labels, epochs: int, lr: float, seed: int,
                     batch_size: int = 32) -> keras.Model:
    seed_everything(seed)
    model = build(seed)
    x = resize_all(np.asarray(images), model.input_shape[1] or images.shape[1])
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
    decay = keras.callbacks.LearningRateScheduler(lambda e, _: cosine(lr, e, epochs))
    model.fit(batches([x], np.asarray(labels), np.arange(len(x)), batch_size, seed,
                      (0, epochs)),
              steps_per_epoch=-(-len(x) // batch_size), epochs=epochs, shuffle=False,
              verbose=0, callbacks=[decay])
    return model


def at_resolution(data: Dataset, side: int | None) -> Dataset:
    """`data` shrunk to `side` px and resized back (unchanged if None or not smaller)."""
    size = data.images.shape[1]
    if not side or side >= size:
        return data
    return Dataset(resize_all(resize_all(np.asarray(data.images), side), size), data.manifest)


def classify(model, images, batch_size: int = 64) -> np.ndarray:
    x = resize_all(np.asarray(images), model.input_shape[1] or images.shape[1])
    probs = [np.asarray(model(x[i:i + batch_size].astype(np.float32), training=False))
             for i in range(0, len(x), batch_size)]
    return np.concatenate(probs).argmax(1)


def recall_per_emotion(pred, labels) -> dict:
    """Per emotion present in `labels`, the share of its images predicted as it."""
    m = classification_metrics(labels, pred)
    return {e: r for e, r in m["recall"].items() if e not in m["absent_classes"]}


def label_fidelity(build, real: Dataset, generated: Dataset, holdout: float, epochs: int,
                   lr: float, seed: int, resolution: int | None = None) -> dict:
    real = at_resolution(real, resolution)
    tr, va = holdout_by_source(real.manifest, holdout, seed)
    held = real.subset(va)
    on_real = train_classifier(build, real.images[tr], real.labels[tr], epochs, lr, seed)
    on_generated = train_classifier(build, generated.images, generated.labels, epochs, lr,
                                    seed)
    pred = {"gan_train": classify(on_generated, held.images),      # on the held-out subjects
            "real_train": classify(on_real, held.images)}
    gan_test = recall_per_emotion(classify(on_real, generated.images), generated.labels)
    return {"gan_test": gan_test,
            **{k: recall_per_emotion(p, held.labels) for k, p in pred.items()},
            "gan_test_mean": float(np.mean(list(gan_test.values()))),
            **{f"{k}_accuracy": classification_metrics(held.labels, p)["accuracy"]
               for k, p in pred.items()},
            "train_images": int(len(tr)), "held_out_images": int(len(va)),
            "held_out_subjects": sorted(set(source_subjects(held.manifest))),
            "generated_images": int(len(generated))}
