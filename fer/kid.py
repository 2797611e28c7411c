"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3 between feature sets of two image sets (Binkowski et al. 2018).

Features: InceptionV3 global-average-pooled activations (2048-d) at 299x299 when its
ImageNet weights are available offline (already in the Keras cache, or a local .h5
path); otherwise the documented fallback `pixels`: each image resized to 16x16 RGB and
scaled to [-1, 1] (768-d). Pixel-space KID still ranks checkpoints (closer colour,
layout and shape statistics score lower), but its values are not comparable with
Inception KID values from papers; the chosen extractor is recorded with every score.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

INCEPTION_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased KID between feature matrices x (n, d) and y (m, d)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m, d = len(x), len(y), x.shape[1]
    if n < 2 or m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def pixel_features(images: np.ndarray, size: int = 16) -> np.ndarray:
    small = np.stack([cv2.resize(np.asarray(im), (size, size), interpolation=cv2.INTER_AREA)
                      for im in images])
    return small.reshape(len(images), -1).astype(np.float32) / 127.5 - 1.0


def inception_weights_path(weights: str = "imagenet") -> Path | None:
    """A local InceptionV3 no-top weights file, or None (never downloads)."""
    if weights not in ("imagenet", "auto"):
        p = Path(weights)
        return p if p.is_file() else None
    cached = Path.home() / ".keras" / "models" / INCEPTION_NOTOP
    return cached if cached.is_file() else None


class FeatureExtractor:
    """`name` is 'inception' or 'pixels'; call it on uint8 (N, S, S, 3) images."""

    def __init__(self, kind: str = "auto", weights: str = "imagenet"):
        path = inception_weights_path(weights)
        if kind == "inception" and path is None:
            raise FileNotFoundError(
                f"gan.kid_features=inception but no InceptionV3 weights file is available "
                f"offline (looked for ~/.keras/models/{INCEPTION_NOTOP}); use "
                "kid_features=auto or pixels")
        self.name = "inception" if (kind == "inception" or (kind == "auto" and path)) \
            else "pixels"
        self._model = None
        if self.name == "inception":
            import keras
            self._model = keras.applications.InceptionV3(
                include_top=False, weights=str(path), pooling="avg", input_shape=(299, 299, 3))

    def __call__(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        if self._model is None:
            return pixel_features(images)
        feats = []
        for i in range(0, len(images), batch):
            x = np.stack([cv2.resize(np.asarray(im), (299, 299)) for im in images[i:i + batch]])
            x = x.astype(np.float32) / 127.5 - 1.0  # InceptionV3's own preprocessing
            feats.append(np.asarray(self._model(x, training=False)))
        return np.concatenate(feats)
