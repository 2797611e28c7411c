"""Intra-database k-fold cross-validation on the union of all sets (paper 5.2, Table 7).

Two protocols: `random` (the paper's, folds over images: related images sit on both sides,
so it is labelled optimistic wherever it appears) and `grouped` (folds over source
subjects, fer.data.splits; the DCGANs still saw every KDEF subject).
"""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold

from fer.data.splits import grouped_folds

PROTOCOLS = ("random", "grouped")
# how each protocol's results are named in metrics/crossval.json: the paper's random folds
# say they are optimistic wherever their numbers appear
RESULT_KEYS = {"random": "random_paper_optimistic", "grouped": "grouped_by_source_subject"}


def folds(manifest, protocol: str, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(train_idx, val_idx)] for `protocol` in {random, grouped}."""
    if protocol == "random":
        return list(KFold(k, shuffle=True, random_state=seed).split(np.arange(len(manifest))))
    if protocol == "grouped":
        return grouped_folds(manifest, k, seed)
    raise ValueError(f"crossval protocol must be random or grouped, got {protocol!r}")


def leakage_note(manifest, augment_part: str) -> str:
    """What the random folds split apart in this union: the kinds of related images its
    manifest holds (augmented copies, derived faces, several images of one person)."""
    source = manifest["source_subject"].astype(str)
    database = manifest["database"].astype(str)
    copies = (manifest["part"] == augment_part).to_numpy()
    kinds = ["an image and its augmented copies"] if copies.any() else []
    named = (source != "").to_numpy() & ~copies       # rows with a source subject, copies aside
    own = np.array([s.startswith(d + "/") for s, d in zip(source, database)], dtype=bool)
    derived = named & ~own
    if derived.any():
        kinds.append("a photo and the faces derived from it in "
                     + ", ".join(sorted(set(database[derived]))))
    if source[named].duplicated().any():
        kinds.append("several images of one person")
    train_only = int((source == "").sum())
    note = ("Random folds (the paper's, optimistic) put related images on both sides"
            + (f" -- {'; '.join(kinds)}" if kinds else "") + "; grouped folds keep each "
            "source subject on one side")
    return note + (f" and only train on the {train_only} images without one." if train_only
                   else ".")
