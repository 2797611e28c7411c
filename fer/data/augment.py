"""Offline geometric and colour augmentation (paper section 3.1).

Each copy draws, from its own seeded generator (seed, image index, copy index):
  rotation  angle ~ U(-rho, rho) * 2*pi      (rho = 0.1 -> up to +-36 degrees)
  zoom      scale ~ U(1 - zeta, 1 + zeta)
  flip      horizontal with probability 0.5
  height    vertical stretch ~ U(1 - theta, 1 + theta)
  width     horizontal stretch ~ U(1 - omega, 1 + omega)
  contrast  c ~ U(1 - gamma, 1 + gamma): (x - mean) * c + mean per channel, clipped
The geometric parts are one affine warp about the image centre; the frame stays
size x size (the paper stores every image at 224x224), uncovered pixels are filled by
reflection as Keras's preprocessing layers do by default. Because every copy has its own
generator, the result does not depend on chunking, order or a restart.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from tqdm import tqdm

FILL_MODES = {"reflect": cv2.BORDER_REFLECT, "constant": cv2.BORDER_CONSTANT,
              "nearest": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP}


@dataclass(frozen=True)
class AugmentSpec:
    copies: int = 5
    rotation: float = 0.1
    zoom: float = 0.1
    flip: bool = True
    height: float = 0.2
    width: float = 0.2
    contrast: float = 0.2
    fill_mode: str = "reflect"
    seed: int = 42

    def __post_init__(self):
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"augment.fill_mode must be one of {sorted(FILL_MODES)}")
        for k in ("rotation", "zoom", "height", "width", "contrast"):
            v = getattr(self, k)
            if not 0 <= v < 1:
                raise ValueError(f"augment.{k} must be in [0, 1), got {v}")
        if self.copies < 1:
            raise ValueError("augment.copies must be >= 1")


@dataclass(frozen=True)
class Draw:
    angle_deg: float
    zoom: float
    flip: bool
    height: float
    width: float
    contrast: float


def draw(spec: AugmentSpec, index: int, copy: int) -> Draw:
    rng = np.random.default_rng([spec.seed, index, copy])
    u = rng.uniform(-1, 1, 5)
    return Draw(angle_deg=float(u[0] * spec.rotation * 360.0),
                zoom=float(1 + u[1] * spec.zoom),
                flip=bool(spec.flip and rng.random() < 0.5),
                height=float(1 + u[2] * spec.height),
                width=float(1 + u[3] * spec.width),
                contrast=float(1 + u[4] * spec.contrast))


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


def augment_images(images: np.ndarray, spec: AugmentSpec):
    """Return (copies, draws): `spec.copies` copies per image, image-major order."""
    n = len(images)
    out = np.empty((n * spec.copies, *images.shape[1:]), np.uint8)
    draws = []
    for i in tqdm(range(n), desc="augment", unit="img"):
        for k in range(spec.copies):
            d = draw(spec, i, k)
            out[i * spec.copies + k] = apply(np.asarray(images[i]), d, spec.fill_mode)
            draws.append(d)
    return out, draws


def describe(d: Draw) -> str:
    return ";".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                    for k, v in asdict(d).items())


def sample_grid(originals: np.ndarray, copies: np.ndarray, n_copies: int,
                rows: int = 6) -> np.ndarray:
    """Grid image: each row an original followed by its copies, 4-px white gutters."""
    rows = min(rows, len(originals))
    s = originals.shape[1]
    g = 4
    grid = np.full((rows * (s + g) + g, (n_copies + 1) * (s + g) + g, 3), 255, np.uint8)
    for r in range(rows):
        tiles = [originals[r]] + [copies[r * n_copies + k] for k in range(n_copies)]
        for c, tile in enumerate(tiles):
            y, x = g + r * (s + g), g + c * (s + g)
            grid[y:y + s, x:x + s] = tile
    return grid
