"""Subject-grouped splits (scikit-learn's group splitters): a face and everything derived
from it stay on one side, grouped by `source_subject` ("KDEF/AF01" for a KDEF photo, its
augmented copies and PFA faces). Rows without one (DCGAN images) only ever train.
"""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit


def source_subjects(manifest) -> np.ndarray:
    """Each row's source subject; "" marks train-only rows (no single source)."""
    if "source_subject" not in manifest:
        raise ValueError("manifest has no source_subject column: it was written by an "
                         "older import stage; re-run the DAG (dvc repro)")
    return manifest["source_subject"].fillna("").astype(str).to_numpy()


def holdout_by_source(manifest, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): `fraction` of the source subjects (at least one) and all
    their rows validate; the other subjects and every train-only row train."""
    groups = source_subjects(manifest)
    rows = np.arange(len(groups))
    if fraction <= 0:
        return rows, rows[:0]
    grouped = rows[groups != ""]
    n_groups = len(set(groups[grouped]))
    if n_groups < 2:
        raise ValueError(f"a subject-grouped holdout needs at least 2 source subjects, got "
                         f"{n_groups}")
    n_val = min(n_groups - 1, max(1, int(round(fraction * n_groups))))
    split = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    tr, va = next(split.split(grouped, groups=groups[grouped]))
    train = np.sort(np.concatenate([grouped[tr], rows[groups == ""]]))
    return train, np.sort(grouped[va])


def grouped_folds(manifest, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds over source subjects (seeded group order); train-only rows train in
    every fold, every other row validates exactly once."""
    groups = source_subjects(manifest)
    rows = np.arange(len(groups))
    grouped, train_only = rows[groups != ""], rows[groups == ""]
    splits = GroupKFold(k, shuffle=True, random_state=seed).split(grouped, groups=groups[grouped])
    return [(np.sort(np.concatenate([grouped[tr], train_only])), np.sort(grouped[va]))
            for tr, va in splits]
