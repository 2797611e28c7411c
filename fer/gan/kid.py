"""Kernel Inception Distance (Binkowski et al. 2018) on the features `gan.kid_features`:
`inception` (InceptionV3 pooled activations, weights `gan.kid_weights`: `imagenet` or a
local no-top .h5; missing weights are an error, never a silent switch) or `pixels`
(16x16 RGB: ranks checkpoints, but not comparable with papers' Inception KID).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import keras
import numpy as np

KID_FEATURES = ("pixels", "inception")
INCEPTION_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                 f"inception_v3/{INCEPTION_NOTOP}")
INCEPTION_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased KID between feature matrices x (n, d) and y (m, d)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m, d = len(x), len(y), x.shape[1]
    if n < 2 or m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def pixel_features(images: np.ndarray, size: int = 16) -> np.ndarray:
    small = np.stack([cv2.resize(np.asarray(im), (size, size), interpolation=cv2.INTER_AREA)
                      for im in images])
    return small.reshape(len(images), -1).astype(np.float32) / 127.5 - 1.0


def inception_weights_file(weights: str = "imagenet", cache_dir=None) -> Path:
    """The local InceptionV3 no-top weights file for `gan.kid_weights`: `imagenet` from
    Keras's cache (`cache_dir`, default ~/.keras), downloaded if absent, else a path."""
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"gan.kid_weights: InceptionV3 weights file {path} not "
                                    "found (expected imagenet or a local no-top .h5)")
        return path
    try:
        return Path(keras.utils.get_file(INCEPTION_NOTOP, INCEPTION_URL, cache_subdir="models",
                                         file_hash=INCEPTION_NOTOP_MD5, cache_dir=cache_dir))
    except Exception as e:  # offline, proxy, corrupt cache ...
        raise RuntimeError(
            f"gan.kid_features=inception, gan.kid_weights=imagenet: the InceptionV3 ImageNet "
            f"weights are not cached and could not be downloaded ({type(e).__name__}: {e}). "
            f"Offline, put {INCEPTION_NOTOP} in ~/.keras/models/, or set gan.kid_weights to "
            "a local no-top .h5, or gan.kid_features=pixels") from None


class FeatureExtractor:
    """KID features of uint8 (N, S, S, 3) images: `pixels`, or `inception` with `weights`.
    `identity` is what the features depend on: recorded with the scores, part of the GAN
    resume key."""

    def __init__(self, kind: str, weights: str = "imagenet", cache_dir=None):
        if kind not in KID_FEATURES:
            raise ValueError(f"gan.kid_features must be one of {', '.join(KID_FEATURES)}, "
                             f"got {kind!r}")
        self.name = kind
        self.identity = {"kid_features": kind, "kid_weights": None, "kid_weights_md5": None}
        self._model = None
        if kind == "inception":
            path = inception_weights_file(weights, cache_dir)
            with open(path, "rb") as f:
                md5 = hashlib.file_digest(f, "md5").hexdigest()
            self.identity |= {"kid_weights": weights, "kid_weights_md5": md5}
            self._model = keras.applications.InceptionV3(
                include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
            self._model.load_weights(path)

    def __call__(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        if self._model is None:
            return pixel_features(images)
        feats = []
        for i in range(0, len(images), batch):
            x = np.stack([cv2.resize(np.asarray(im), (299, 299)) for im in images[i:i + batch]])
            x = x.astype(np.float32) / 127.5 - 1.0  # InceptionV3's own preprocessing
            feats.append(np.asarray(self._model(x, training=False)))
        return np.concatenate(feats)
