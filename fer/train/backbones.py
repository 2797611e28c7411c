"""Backbones, classification head and input normalisation (paper sections 4.1, 4.4).

Layers are counted as `len(base.layers)` of `keras.applications.<Net>(include_top=False)`
(Table 2's 19 / 22 / 311 / 780); "the last k layers" are `base.layers[-k:]`. Table 2's
trainable-parameter column does not follow from its own k (VGG19: 14,158,848 is k = 8):
`table2_row()` reports what Keras computes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf
from keras import layers, ops, tree

from fer.data.labels import EMOTIONS
from fer.core.schema import NAMED_WEIGHTS, PREPROCESS, ModelSpec


@keras.saving.register_keras_serializable(package="fer")
class SubsampledConv2D(layers.Conv2D):
    """A strided 1x1 Conv2D computed as every `strides`-th pixel, then a stride-1 1x1
    convolution (same weights and outputs). Why: TF 2.19's oneDNN strided 1x1 kernel
    gradient overruns its buffer below 16 input channels (uxlfoundation/oneDNN#6035) and
    aborted mini_xception on odd-sized batches (docs/status.md)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.kernel_size != (1, 1) or self.data_format != "channels_last" \
                or self.dilation_rate != (1, 1):
            raise ValueError("SubsampledConv2D: a 1x1 kernel, channels_last, no dilation")

    def convolution_op(self, inputs, kernel):
        sh, sw = self.strides
        return ops.conv(inputs[:, ::sh, ::sw, :], kernel, strides=1, padding="valid")


@keras.saving.register_keras_serializable(package="fer")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization, its training pass on TF's fused kernel (one op each
    way): Keras 3's own, built from moments, was half of mini_xception's step time on a
    CPU; fused, a step takes 0.6 of it (docs/benchmarks.md). The same normalisation and
    moving-average update; inference is Keras's own code."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm \
                or len(inputs.shape) != 4 or self.axis not in (-1, 3) \
                or inputs.dtype != tf.float32:
            return super().call(inputs, training=training, mask=mask)
        ones = tf.ones(inputs.shape[-1:])
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma if self.scale else ones, self.beta if self.center else 0 * ones,
            epsilon=self.epsilon, is_training=True)
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance *= (n - 1) / n    # the kernel returns the unbiased variance; Keras: biased
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return y


def mini_xception(include_top=False, weights=None, input_shape=(48, 48, 1)) -> keras.Model:
    """A compact backbone trained from scratch (Arriaga et al. 2017): two 3x3 convolutions,
    then four residual modules of separable convolutions; about 51k parameters. Called as
    the `keras.applications` builders are (no top, no weights)."""
    if include_top or weights is not None:
        raise ValueError("mini_xception: include_top=False, weights=None only")
    x = inputs = keras.Input(input_shape, name="input_layer")

    def bn_relu(x, relu=True):    # momentum 0.9: statistics settle within a short run
        x = FusedBatchNormalization(momentum=0.9)(x)
        return layers.ReLU()(x) if relu else x
    for _ in range(2):
        x = bn_relu(layers.Conv2D(8, 3, use_bias=False)(x))
    for f in (16, 32, 64, 128):
        shortcut = bn_relu(SubsampledConv2D(f, 1, strides=2, padding="same",
                                            use_bias=False)(x), relu=False)
        x = bn_relu(layers.SeparableConv2D(f, 3, padding="same", use_bias=False)(x))
        x = bn_relu(layers.SeparableConv2D(f, 3, padding="same", use_bias=False)(x), relu=False)
        x = layers.Add()([layers.MaxPooling2D(3, 2, padding="same")(x), shortcut])
    return keras.Model(inputs, x, name="mini_xception")


APPLICATIONS = {           # layer counts and minimum sizes: fer.core.schema.BACKBONES
    "vgg16": keras.applications.VGG16,
    "vgg19": keras.applications.VGG19,
    "inception_v3": keras.applications.InceptionV3,
    "inception_resnet_v2": keras.applications.InceptionResNetV2,
    "mini_xception": mini_xception,
}
HEAD_UNITS = 256           # the paper's Dense(256, relu) before the softmax
FIXED_RANDOM_SEED = 0
IMAGENET_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)
LUMA = np.array([[0.299], [0.587], [0.114]], np.float32)     # ITU-R BT.601, as PIL's "L"


@keras.saving.register_keras_serializable(package="fer")
class Normalize(layers.Layer):
    """0-255 RGB pixels -> the backbone's input: grey (`channels` 1, BT.601 luma), area-
    resized to `size` (as cv2's INTER_AREA), then normalised per `mode` (`PREPROCESS`).
    The classifier's first layer, so saved and exported models take raw pixels; plain ops
    only (the TF.js converter converts them), in float32 under any precision policy."""

    def __init__(self, mode: str, channels: int = 3, size: int | None = None, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        if mode not in PREPROCESS:
            raise ValueError(f"unknown preprocess {mode!r}; expected one of {PREPROCESS}")
        if mode == "caffe" and channels != 3:
            raise ValueError("preprocess caffe needs 3 channels (RGB -> BGR)")
        self.mode, self.channels, self.size = mode, channels, size

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if self.channels == 1:
            x = ops.matmul(x, LUMA)
        if self.size and self.size != x.shape[1]:
            rows, cols = (area_matrix(x.shape[i], self.size) for i in (1, 2))
            x = ops.transpose(x, (0, 3, 1, 2))                          # B C H W
            x = ops.transpose(ops.matmul(ops.matmul(rows, x), cols.T), (0, 2, 3, 1))
        if self.mode == "scale01":
            return x / 255.0
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "per_image":
            mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
            std = ops.sqrt(ops.mean(ops.square(x - mean), axis=(1, 2, 3), keepdims=True))
            return (x - mean) / ops.maximum(std, 1.0 / float(np.sqrt(np.prod(x.shape[1:]))))
        return ops.flip(x, axis=-1) - IMAGENET_BGR_MEAN

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size or input_shape[1], self.size or input_shape[2],
                self.channels)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "channels": self.channels,
                "size": self.size}


def area_matrix(n: int, m: int) -> np.ndarray:
    """(m, n): row i averages input pixels [i n/m, (i+1) n/m) weighted by their overlap."""
    edges = np.arange(m + 1) * n / m
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n)[None]
    return (np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) * m / n
            ).astype(np.float32)


def build_base(spec: ModelSpec) -> keras.Model:
    """The backbone without its top, with `spec.weights`: `imagenet` (Keras's, cached in
    ~/.keras/models/), a local file path, `none` (drawn from the global seed: a base per
    seed) or `fixed_random` (drawn from `FIXED_RANDOM_SEED`, the same base for every seed,
    as pretrained weights would be; it reseeds the global generators)."""
    fn, shape = APPLICATIONS[spec.name], spec.base_shape
    path = None if spec.weights in NAMED_WEIGHTS else Path(spec.weights)
    if path and not path.is_file():
        raise FileNotFoundError(f"model {spec.name}: weights file {path} not found")
    if spec.weights == "fixed_random":
        keras.utils.set_random_seed(FIXED_RANDOM_SEED)
    if spec.weights != "imagenet":
        base = fn(include_top=False, weights=None, input_shape=shape)
    else:
        try:
            base = fn(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as e:  # no network, proxy, corrupt cache ...
            raise RuntimeError(
                f"model {spec.name}: could not load ImageNet weights ({type(e).__name__}: "
                f"{e}). Offline, put the file in ~/.keras/models/, pass its path as "
                "weights, or use weights=none") from None
    if path:
        base.load_weights(path)
    if spec.k > len(base.layers):
        raise ValueError(f"model {spec.name}: k = {spec.k} exceeds its {len(base.layers)} "
                         "layers")
    return base


def build_classifier(spec: ModelSpec, seed: int | None = None
                     ) -> tuple[keras.Model, keras.Model]:
    """(model, base): 0-255 RGB pixels -> `Normalize` -> base -> GlobalAveragePooling ->
    Dense(256, relu) -> Dense(7, softmax). `seed` seeds the global generators that draw a
    `none` base and its head; with other weights the head is drawn from the seed alone
    (`draw_head`) and the base's BatchNormalization runs in inference mode
    (`batchnorm_inference`)."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    base = build_base(spec)
    head_seed = None if spec.weights == "none" else seed
    if spec.weights != "none":
        batchnorm_inference(base)
    inputs = keras.Input((spec.input_size, spec.input_size, 3), name="image")
    x = Normalize(spec.preprocess, spec.channels, spec.size, name="normalize")(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(base(x, training=False))
    x = layers.Dense(HEAD_UNITS, activation="relu", name="fc",
                     kernel_initializer=head_initializer(head_seed, "fc"))(x)
    # float32 softmax also under a mixed-precision policy (train.mixed_precision)
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", name="emotion",
                           dtype="float32",
                           kernel_initializer=head_initializer(head_seed, "emotion"))(x)
    return keras.Model(inputs, outputs, name=f"fer_{spec.name}"), base


HEAD = ("fc", "emotion")


def head_initializer(seed: int | None, layer: str) -> keras.initializers.Initializer:
    """The kernel initializer of head layer `layer` for `seed`: drawn from (seed, layer)
    alone, so that `draw_head` draws a seed's head again in place without seeding
    anything globally (`tf.random.set_seed` clears TensorFlow's kernel cache: each traced
    function then starts again, 0.15 s a VGG16 step-1 `fit`)."""
    if seed is None:                    # Keras's default: from the global generators
        return keras.initializers.GlorotUniform()
    return keras.initializers.GlorotUniform(
        seed=int(np.random.SeedSequence([seed, HEAD.index(layer)]).generate_state(1)[0]))


def draw_head(model: keras.Model, seed: int) -> None:
    """Give `model`'s head the initial weights `build_classifier(spec, seed)` gives it
    (`spec.weights` not `none`)."""
    for name in HEAD:
        layer = model.get_layer(name)
        layer.kernel.assign(head_initializer(seed, name)(layer.kernel.shape, layer.kernel.dtype))
        layer.bias.assign(np.zeros(layer.bias.shape, layer.bias.dtype))


def batchnorm_inference(base: keras.Model) -> None:
    """Make every BatchNormalization layer of `base` run in inference mode whatever
    `training` it gets (gamma and beta still train). Calling the base with training=False
    is not enough: `fit`'s training=True overrides it in Keras 3 (keras-team/keras#20285)."""
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.call = _inference_call(layer.call)


def _inference_call(call):
    def inference(inputs, training=None, mask=None):
        return call(inputs, training=False, mask=mask)
    return inference


def unfreeze_last(base: keras.Model, k: int) -> None:
    """Step 2: the last k layers of the base trainable, the rest frozen."""
    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= len(base.layers) - k


@dataclass
class Cut:
    """A base split where step 2's trainable layers begin: `prefix` maps the base's input
    to every tensor a later layer reads from it (several across Inception branches),
    `suffix` those to the base output; both share the base's layers."""
    prefix: keras.Model
    suffix: keras.Model
    tensors: list            # names "<producing layer>:<output index>", in suffix input order
    positions: list          # [index in base.layers, output index]: stable, for cache keys


def split_at_cut(base: keras.Model, k: int) -> Cut:
    """Split `base` before its last k layers: the prefix is every layer frozen in step 2
    that reads only from frozen layers, so its output is a function of the image alone.
    With k = 0 the prefix is the whole base and the suffix the identity."""
    n = len(base.layers)
    # tensor -> [index in base.layers of the layer that outputs it, output index]
    made_by = {id(t): [i, j] for i, layer in enumerate(base.layers)
               for j, t in enumerate(tree.flatten(layer.output))}
    reads = [[] if isinstance(l, layers.InputLayer) else tree.flatten(l.input)
             for l in base.layers]
    prefix = set()
    for i in range(n - k):                 # functional layer order is topological
        if all(made_by[id(t)][0] in prefix for t in reads[i]):
            prefix.add(i)
    crossing = {}                          # id -> tensor, in the order layers read them
    for i in range(n):
        if i not in prefix:
            crossing.update((id(t), t) for t in reads[i] if made_by[id(t)][0] in prefix)
    tensors = list(crossing.values()) or [base.output]     # k = 0: nothing trains in the base
    positions = [made_by[id(t)] for t in tensors]
    names = [f"{base.layers[i].name}:{j}" for i, j in positions]
    prefix_model = keras.Model(base.input, tensors, name=f"{base.name}_prefix")
    if not crossing:
        inp = keras.Input(base.output.shape[1:], name="cut_0")
        suffix_model = keras.Model(inp, inp, name=f"{base.name}_suffix")
    else:
        suffix_model = keras.Model(tensors, base.output, name=f"{base.name}_suffix")
    return Cut(prefix_model, suffix_model, names, positions)


def count_params(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def table2_row(spec: ModelSpec, base: keras.Model) -> dict:
    """Paper Table 2's row of `base` as Keras computes it; leaves `base` in its step-2
    state (`unfreeze_last`), the state training ends in."""
    unfreeze_last(base, spec.k)
    return {"model": spec.name, "layers": len(base.layers), "k": spec.k,
            "params": count_params(base.weights),
            "trainable_params": count_params(base.trainable_weights)}


def table2(specs: list[ModelSpec]) -> list[dict]:
    """Table 2's rows, each from a freshly built random base."""
    return [table2_row(spec, build_base(spec.model_copy(update={"weights": "none"})))
            for spec in specs]
