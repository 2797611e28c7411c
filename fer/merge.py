"""Assemble the train and test sets of paper Table 1 from their parts.

Parts are the outputs of earlier stages; `merge.train_sets` / `merge.test_sets` in
params.yaml list which parts make each set (KDEF_OL = kdef + kdef_da_ol, ...).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .dataset import Dataset, class_counts, concat_datasets, load_dataset
from .images import read_rgb
from .importers import import_label_folders
from .labels import EMOTIONS

PART_DIRS = {
    "kdef": "build/crop/kdef",
    "kdef_da_ol": "build/augment/KDEF_DA_OL",
    "pfa": "build/crop/pfa",
    "gan_q": "build/gan/generated",        # <emotion>/*.png, written by the gan stage
    "ck": "build/crop/ck",
    "jaffe": "build/crop/jaffe",
}


def load_image_folders(root, size: int, database: str) -> Dataset:
    """A `<emotion>/*.png` folder tree as a Dataset, resized to size x size if needed."""
    res = import_label_folders(root, database, require_all=False)
    images = []
    for path in res.manifest["path"]:
        img = read_rgb(path)
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        images.append(img)
    return Dataset(np.stack(images), res.manifest)


def load_part(name: str, size: int, root=".") -> Dataset:
    if name not in PART_DIRS:
        raise ValueError(f"unknown dataset part {name!r}; expected one of {sorted(PART_DIRS)}")
    path = Path(root) / PART_DIRS[name]
    if name == "gan_q":
        ds = load_image_folders(path, size, "KDEF_GAN_Q")
        # a DCGAN learns from every subject of its emotion: no single source subject,
        # so these images only ever train (fer.splits)
        ds.manifest = ds.manifest.assign(source_subject="")
    else:
        ds = load_dataset(path)
    if len(ds) and ds.images.shape[1:] != (size, size, 3):
        raise ValueError(f"{path}: images are {ds.images.shape[1:]}, expected "
                         f"({size}, {size}, 3); re-run the stages with one crop.size")
    return ds


def build_set(name: str, parts: list[str], size: int, root=".", cache=None) -> Dataset:
    cache = {} if cache is None else cache
    loaded = []
    for part in parts:
        if part not in cache:
            cache[part] = load_part(part, size, root)
        loaded.append(cache[part])
    ds = concat_datasets(loaded)
    ds.manifest = ds.manifest.copy()
    ds.manifest["part"] = np.repeat(parts, [len(p) for p in loaded])
    return ds


def counts_table(summaries: dict) -> str:
    """Markdown table: one row per dataset, one column per emotion, plus the total."""
    head = "| dataset | " + " | ".join(EMOTIONS) + " | total |"
    sep = "|---" * (len(EMOTIONS) + 2) + "|"
    rows = [f"| {name} | " + " | ".join(str(s["classes"][e]) for e in EMOTIONS)
            + f" | {s['images']} |" for name, s in summaries.items()]
    return "\n".join([head, sep, *rows]) + "\n"


def check_classes(name: str, manifest: pd.DataFrame) -> None:
    counts = class_counts(manifest)
    missing = [e for e, n in counts.items() if n == 0]
    if missing:
        raise ValueError(f"dataset {name}: no images of class(es) {', '.join(missing)}")
