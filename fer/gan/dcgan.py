"""Per-emotion DCGAN (paper section 3.2): `blocks` stride-2 convolutions each way
(`bn_gap` variant: BatchNormalization in the generator, global pooling in the
discriminator). Noise is keyed by (seed, step), so a resumed run draws what an
uninterrupted one would."""
from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf
import keras
from keras import layers

from fer.core.schema import Gan


def build_discriminator(params: Gan) -> keras.Model:
    s = params.image_size
    x = inputs = keras.Input((s, s, 3), name="image")
    x = layers.Conv2D(params.base_filters, 3, padding="same", name="conv_in")(x)
    x = layers.LeakyReLU(0.2)(x)
    for i in range(params.blocks):
        x = layers.Conv2D(params.base_filters * 2 ** i, 4, strides=2, padding="same",
                          name=f"down_{i + 1}")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = (layers.GlobalAveragePooling2D() if params.variant == "bn_gap" else layers.Flatten())(x)
    out = layers.Dense(1, activation="sigmoid", name="real_prob")(x)
    return keras.Model(inputs, out, name="discriminator")


def build_generator(params: Gan) -> keras.Model:
    top = params.base_filters * 2 ** (params.blocks - 1)
    s0 = params.image_size // 2 ** params.blocks
    z = inputs = keras.Input((params.latent_dim,), name="latent")
    x = layers.Dense(s0 * s0 * top)(z)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Reshape((s0, s0, top))(x)
    for i in range(params.blocks):
        x = layers.Conv2DTranspose(top // 2 ** i, 4, strides=2, padding="same",
                                   name=f"up_{i + 1}")(x)
        if params.variant == "bn_gap" and i < 2:
            x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
    out = layers.Conv2D(3, 5, padding="same", activation="tanh", name="image")(x)
    return keras.Model(inputs, out, name="generator")


class DCGAN(keras.Model):
    """Both networks and their Adam optimizers; a train step is one D step, then one G step."""

    def __init__(self, params: Gan):
        super().__init__()
        self.discriminator = build_discriminator(params)
        self.generator = build_generator(params)
        self.latent_dim = params.latent_dim
        self.seed = params.seed
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="noise_step")
        self.d_optimizer = keras.optimizers.Adam(params.lr, beta_1=params.beta_1)
        self.g_optimizer = keras.optimizers.Adam(params.lr, beta_1=params.beta_1)
        self.loss_fn = keras.losses.BinaryCrossentropy()

    def _noise(self, n, salt):
        seed = tf.stack([tf.cast(self.seed, tf.int64) * 1000003 + salt, self.step])
        return tf.random.stateless_normal((n, self.latent_dim), seed=seed)

    def train_step(self, data):
        real = data[0]                          # train_on_batch's (x, y, sample_weight)
        n = tf.shape(real)[0]
        fake = self.generator(self._noise(n, 1), training=True)
        images = tf.concat([real, fake], axis=0)
        labels = tf.concat([tf.ones((n, 1)), tf.zeros((n, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(images, training=True))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        with tf.GradientTape() as tape:  # discriminator frozen: only G's weights move
            fake = self.generator(self._noise(n, 2), training=True)
            g_loss = self.loss_fn(tf.ones((n, 1)), self.discriminator(fake, training=True))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.step.assign_add(1)
        return {"d_loss": d_loss, "g_loss": g_loss}    # one batch's: no running means


def make_gan(params: Gan) -> DCGAN:
    """The compiled DCGAN of `params` (architecture, Adam lr and beta_1, seed)."""
    keras.utils.set_random_seed(params.seed)
    gan = DCGAN(params)
    gan.compile()
    # build optimizer slots now so a saved state can be restored before training
    gan.d_optimizer.build(gan.discriminator.trainable_weights)
    gan.g_optimizer.build(gan.generator.trainable_weights)
    return gan


def generate(generator: keras.Model, n: int, seed: int, batch: int = 64) -> np.ndarray:
    """`n` images as uint8 (n, S, S, 3), from noise fixed by `seed`."""
    z = np.random.default_rng(seed).standard_normal((n, generator.input_shape[-1]))
    out = [np.asarray(generator(z[i:i + batch].astype(np.float32), training=False))
           for i in range(0, n, batch)]
    return np.clip((np.concatenate(out) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


def state_variables(gan: DCGAN) -> dict:
    """Every variable a resumed run needs: both networks, both optimizers, the step."""
    groups = {"g": gan.generator.weights, "d": gan.discriminator.weights,
              "go": gan.g_optimizer.variables, "do": gan.d_optimizer.variables}
    return {f"{k}_{i}": v for k, vs in groups.items() for i, v in enumerate(vs)} | {
        "step": gan.step}


def generated_manifest(emotion: str, n: int, part: str, source: str) -> pd.DataFrame:
    """The manifest of one emotion's `n` generated images: no single source subject (a
    DCGAN learns from all), so these rows only ever train (fer.data.splits)."""
    return pd.DataFrame({"path": [f"{part}/{emotion}/{i:04d}" for i in range(n)],
                         "label": emotion, "subject": "",
                         "database": f"{source}_{part}".upper(),
                         "source": [f"generated={i}" for i in range(n)],
                         "source_subject": ""})
