"""On-disk dataset format: one memory-mappable uint8 array plus its manifest.

A dataset directory holds images.npy ((N, S, S, 3) uint8 RGB), manifest.csv (one row per
image) and counts.json (images per class): an epoch is one sequential read, not N decodes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.atomic import atomic_dir
from fer.data.labels import EMOTIONS, EMOTION_INDEX


@dataclass
class Dataset:
    images: np.ndarray        # (N, S, S, 3) uint8
    manifest: pd.DataFrame    # N rows

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def labels(self) -> np.ndarray:
        return self.manifest["label_id"].to_numpy(dtype=np.int64)

    def subset(self, idx) -> "Dataset":
        """Rows `idx` (in that order) with a fresh 0..n-1 index."""
        idx = np.asarray(idx)
        return Dataset(self.images[idx], self.manifest.iloc[idx].reset_index(drop=True))


def class_counts(manifest: pd.DataFrame) -> dict:
    counts = manifest["label"].value_counts()
    return {e: int(counts.get(e, 0)) for e in EMOTIONS}


def with_label_ids(manifest: pd.DataFrame) -> pd.DataFrame:
    manifest = manifest.reset_index(drop=True).copy()
    manifest["label_id"] = manifest["label"].map(EMOTION_INDEX).astype("int64")
    return manifest


def save_dataset(path, images: np.ndarray, manifest: pd.DataFrame, name: str = "") -> dict:
    """Write a dataset directory atomically; returns its counts summary."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"{path}: images must be (N, S, S, 3) uint8, got "
                         f"{images.dtype} {images.shape}")
    if len(images) != len(manifest):
        raise ValueError(f"{path}: {len(images)} images but {len(manifest)} manifest rows")
    manifest = with_label_ids(manifest)
    summary = {"name": name or Path(path).name, "images": int(len(manifest)),
               "size": int(images.shape[1]) if len(images) else 0,
               "classes": class_counts(manifest)}
    with atomic_dir(path) as tmp:
        np.save(tmp / "images.npy", np.ascontiguousarray(images))
        manifest.to_csv(tmp / "manifest.csv", index=False)
        (tmp / "counts.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_dataset(path) -> Dataset:
    path = Path(path)
    for f in ("images.npy", "manifest.csv"):
        if not (path / f).is_file():
            raise FileNotFoundError(f"{path / f}: missing; is {path} a dataset directory "
                                    "written by an earlier stage?")
    images = np.load(path / "images.npy", mmap_mode="r")
    manifest = pd.read_csv(path / "manifest.csv", keep_default_na=False, dtype={"subject": str})
    if len(images) != len(manifest):
        raise ValueError(f"{path}: images.npy has {len(images)} rows, manifest.csv {len(manifest)}")
    return Dataset(images, manifest)


def concat_datasets(parts: list[Dataset]) -> Dataset:
    images = np.concatenate([np.asarray(p.images) for p in parts], axis=0)
    manifest = pd.concat([p.manifest for p in parts], ignore_index=True)
    return Dataset(images, manifest)


def stratified_subset(data: Dataset, max_images: int | None, seed: int) -> Dataset:
    """At most `max_images` images, the same number per class (seeded), order kept."""
    if not max_images or len(data) <= max_images:
        return data
    per_class = max_images // len(EMOTIONS)
    rng = np.random.default_rng([seed, 7])
    keep = []
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero(data.labels == c)
        keep.extend(rng.choice(idx, min(per_class, len(idx)), replace=False))
    return data.subset(np.sort(keep))
