"""Assemble the train and test sets (paper Table 1) from their parts.

A part is a database of `data.databases` (its cropped faces) or a derived part under
build/derived/: the augmented copies (`augment.part`) or the DCGAN images (`gan.part`).
`merge.train_sets` / `merge.test_sets` list the parts of each set (see fer.data.layout).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer.data.dataset import Dataset, class_counts, concat_datasets, load_dataset
from fer.data.labels import EMOTIONS
from fer.data.layout import CROP_DIR, DERIVED_DIR


def load_part(name: str, params: dict, root=".") -> Dataset:
    """One part as a Dataset at `crop.size`, with a source_subject for every row."""
    size, databases = params["crop"]["size"], params["data"]["databases"]
    path = Path(root) / (CROP_DIR if name in databases else DERIVED_DIR) / name
    if name in databases or name == params["augment"]["part"]:
        ds = load_dataset(path)
    elif name == params["gan"]["part"]:      # one directory per emotion's gan stage
        ds = concat_datasets([load_dataset(path / e) for e in params["gan"]["emotions"]])
        # a DCGAN learns from every subject of its emotion: its images only ever train
        named = ds.manifest["source_subject"].astype(str) != ""
        if named.any():
            raise ValueError(f"{path}: {int(named.sum())} generated images name a source "
                             "subject; DCGAN images must have none (they only ever train)")
    else:
        raise ValueError(f"unknown dataset part {name!r}: a part is a database of "
                         f"data.databases {sorted(databases)}, "
                         f"augment.part {params['augment']['part']!r} or gan.part "
                         f"{params['gan']['part']!r}")
    if len(ds) and ds.images.shape[1:] != (size, size, 3):
        raise ValueError(f"{path}: images are {ds.images.shape[1:]}, expected "
                         f"({size}, {size}, 3); re-run the stages with one crop.size")
    return ds


def build_set(name: str, parts: list[str], params: dict, root=".", cache=None) -> Dataset:
    cache = {} if cache is None else cache
    for part in parts:
        if part not in cache:
            cache[part] = load_part(part, params, root)
    ds = concat_datasets([cache[part] for part in parts])
    ds.manifest["part"] = np.repeat(parts, [len(cache[part]) for part in parts])
    return ds


def counts_table(summaries: dict) -> str:
    """Markdown table: one row per dataset, one column per emotion, plus the total."""
    head = "| dataset | " + " | ".join(EMOTIONS) + " | total |"
    sep = "|---" * (len(EMOTIONS) + 2) + "|"
    rows = [f"| {name} | " + " | ".join(str(s["classes"][e]) for e in EMOTIONS)
            + f" | {s['images']} |" for name, s in summaries.items()]
    return "\n".join([head, sep, *rows]) + "\n"


def check_classes(name: str, manifest: pd.DataFrame, allowed: bool = False) -> list[str]:
    """The classes train set `name` has no image of: an error, unless `allowed` (the set
    is in merge.allow_missing_classes); a model trained on it never learns them."""
    counts = class_counts(manifest)
    missing = [e for e, n in counts.items() if n == 0]
    if missing and not allowed:
        raise ValueError(f"dataset {name}: no images of class(es) {', '.join(missing)}; "
                         "a model trained on it could never predict them. If that is "
                         f"intended, add {name} to merge.allow_missing_classes")
    return missing
