"""Label fidelity of generated images, after Shmelkov et al. 2018 ("How good is my GAN?").

The real images (the GANs' own training faces) are split by source subject
(`fer.data.splits.holdout_by_source`): the held-out subjects never train a classifier.
Generated images have no single source subject, so they only ever train.

- GAN-test: a classifier trained on the real images of the other subjects classifies
  each emotion's generated images; per emotion, the share given that emotion.
- GAN-train: a classifier trained on the generated images alone is tested on the
  held-out subjects (per emotion and overall); beside it, the real-trained classifier's
  scores there (`real_train`, the reference: GAN-train near it means the generated
  images carry what the real ones do). The GANs learnt from every subject, the held-out
  ones too (their images only ever train, as everywhere in the project), so GAN-train
  here does not measure generalisation to unseen people.

The classifier is whatever `build(seed)` returns (the stage: the `models` entry named
`gan_quality.classifier`): a Keras model taking 0-255 RGB pixels, ending in the 7-way
softmax; images are resized to its input. Both classifiers train the same way: Adam
with a cosine decay over `epochs` epochs (`fer.train.finetune.cosine`), batches keyed by
(seed, epoch) (`fer.train.finetune.batches`), TF op determinism on, so identical inputs
give identical numbers.

`resolution`: the generator's output side (`gan.image_size`). Real faces are shrunk to it
and back before anything sees them, so real and generated images carry the same detail
and a classifier cannot tell them apart by sharpness alone, as Shmelkov et al. compare
at the GAN's resolution. Measured on the demo (32 px DCGANs, 80 px crops): GAN-test 40 %
without this, 56 % with it (docs/benchmarks.md#make-demo).

Ties: the prediction is the argmax of the probabilities, the lowest class index on ties.
Images that carry no emotion (the same distribution for every emotion) score chance,
1/7, as the mean GAN-test over the seven emotions, whatever the classifier predicts.
"""
from __future__ import annotations

import numpy as np
import keras

from fer.data.dataset import Dataset
from fer.data.labels import EMOTIONS
from fer.data.splits import holdout_by_source, source_subjects
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
              steps_per_epoch=-(-len(x) // batch_size), epochs=epochs, verbose=0,
              callbacks=[decay])
    return model


def at_resolution(data: Dataset, side: int | None) -> Dataset:
    """`data` with its images shrunk to `side` px and resized back (None, or not
    smaller: unchanged)."""
    size = data.images.shape[1]
    if not side or side >= size:
        return data
    return Dataset(resize_all(resize_all(np.asarray(data.images), side), size), data.manifest)


def classify(model, images, batch_size: int = 64) -> np.ndarray:
    x = resize_all(np.asarray(images), model.input_shape[1] or images.shape[1])
    probs = [np.asarray(model(x[i:i + batch_size].astype(np.float32), training=False))
             for i in range(0, len(x), batch_size)]
    return np.concatenate(probs).argmax(1)


def per_emotion(model, images, labels) -> dict:
    """Per emotion (present in `labels`), the share of its images `model` gives it."""
    pred, labels = classify(model, images), np.asarray(labels)
    return {e: float((pred[labels == i] == i).mean())
            for i, e in enumerate(EMOTIONS) if (labels == i).any()}


def label_fidelity(build, real: Dataset, generated: Dataset, holdout: float, epochs: int,
                   lr: float, seed: int, resolution: int | None = None) -> dict:
    real = at_resolution(real, resolution)
    tr, va = holdout_by_source(real.manifest, holdout, seed)
    held = real.subset(va)
    on_real = train_classifier(build, real.images[tr], real.labels[tr], epochs, lr, seed)
    on_generated = train_classifier(build, generated.images, generated.labels, epochs, lr,
                                    seed)
    out = {"gan_test": per_emotion(on_real, generated.images, generated.labels),
           "gan_train": per_emotion(on_generated, held.images, held.labels),
           "real_train": per_emotion(on_real, held.images, held.labels)}
    out["gan_test_mean"] = float(np.mean(list(out["gan_test"].values())))
    for key, model in (("gan_train", on_generated), ("real_train", on_real)):
        out[f"{key}_accuracy"] = float((classify(model, held.images) == held.labels).mean())
    return {**out, "train_images": int(len(tr)), "held_out_images": int(len(va)),
            "held_out_subjects": sorted(set(source_subjects(held.manifest))),
            "generated_images": int(len(generated))}
