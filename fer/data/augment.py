"""Offline geometric and colour augmentation (paper section 3.1).

Each copy draws rotation (U(-rho, rho) turns), zoom, flip, height and width stretch and
contrast from its own generator (seed, image index, copy index), so the result does not
depend on order or a restart. The geometry is one affine warp about the centre; uncovered
pixels are filled by reflection by default, as Keras's preprocessing layers do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from tqdm import tqdm

from fer.core.schema import Augment

FILL_MODES = {"reflect": cv2.BORDER_REFLECT, "constant": cv2.BORDER_CONSTANT,
              "nearest": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP}


@dataclass(frozen=True)
class Draw:
    angle_deg: float
    zoom: float
    flip: bool
    height: float
    width: float
    contrast: float


def draw(augment: Augment, index: int, copy: int) -> Draw:
    """The transform of copy `copy` of image `index`."""
    rng = np.random.default_rng([augment.seed, index, copy])
    u = rng.uniform(-1, 1, 5)
    return Draw(angle_deg=float(u[0] * augment.rotation * 360.0),
                zoom=float(1 + u[1] * augment.zoom),
                flip=bool(augment.flip and rng.random() < 0.5),
                height=float(1 + u[2] * augment.height),
                width=float(1 + u[3] * augment.width),
                contrast=float(1 + u[4] * augment.contrast))


def apply(img: np.ndarray, d: Draw, fill_mode: str = "reflect") -> np.ndarray:
    """Apply one drawn transform to an (H, W, 3) uint8 image."""
    h, w = img.shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    t = np.deg2rad(d.angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    a = rot @ np.diag([d.zoom * d.width, d.zoom * d.height])
    m = np.hstack([a, (c - a @ c)[:, None]])
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=FILL_MODES[fill_mode])
    if d.flip:
        out = out[:, ::-1]
    x = out.astype(np.float32)
    mean = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - mean) * d.contrast + mean, 0, 255).round().astype(np.uint8)


def augment_images(images: np.ndarray, augment: Augment):
    """(copies, draws): `augment.copies` copies per image, image-major order."""
    n = len(images)
    out = np.empty((n * augment.copies, *images.shape[1:]), np.uint8)
    draws = []
    for i in tqdm(range(n), desc="augment", unit="img"):
        for k in range(augment.copies):
            d = draw(augment, i, k)
            out[i * augment.copies + k] = apply(np.asarray(images[i]), d, augment.fill_mode)
            draws.append(d)
    return out, draws


def describe(d: Draw) -> str:
    return ";".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                    for k, v in asdict(d).items())


def sample_grid(originals: np.ndarray, copies: np.ndarray, n_copies: int,
                rows: int = 6) -> np.ndarray:
    """Grid image: each row an original followed by its copies, 4-px white gutters."""
    rows, s, g = min(rows, len(originals)), originals.shape[1], 4
    grid = np.full((rows * (s + g) + g, (n_copies + 1) * (s + g) + g, 3), 255, np.uint8)
    for r in range(rows):
        for c, tile in enumerate([originals[r], *copies[r * n_copies:(r + 1) * n_copies]]):
            y, x = g + r * (s + g), g + c * (s + g)
            grid[y:y + s, x:x + s] = tile
    return grid
