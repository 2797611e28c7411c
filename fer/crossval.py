"""Intra-database 5-fold cross-validation on the union of all sets (paper 5.2, Table 7).

Two protocols, side by side:
- `random`: the paper's, folds drawn over images. An augmented copy and its original,
  or two frames of one CK+ sequence, can sit on both sides, so scores are optimistic.
- `grouped`: leakage-free. Real images are folded by subject (a KDEF subject's augmented
  copies follow it); synthetic images (PFA, DCGAN) have no single source subject and only
  ever train, never validate. (The DCGANs themselves were trained on every KDEF subject;
  a fully clean estimate would retrain them per fold.)
"""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold, KFold

SYNTHETIC_PARTS = ("pfa", "gan_q")


def folds(manifest, protocol: str, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(train_idx, val_idx)] for `protocol` in {random, grouped}."""
    n = len(manifest)
    if protocol == "random":
        return list(KFold(k, shuffle=True, random_state=seed).split(np.arange(n)))
    if protocol != "grouped":
        raise ValueError(f"crossval protocol must be random or grouped, got {protocol!r}")
    synthetic = manifest["part"].isin(SYNTHETIC_PARTS).to_numpy()
    real = np.flatnonzero(~synthetic)
    groups = (manifest["database"].str.replace("KDEF_DA_OL", "KDEF") + ":"
              + manifest["subject"]).to_numpy()[real]
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    relabel = dict(zip(names, rng.permutation(len(names))))   # seeded group order
    out = []
    for tr, va in GroupKFold(k).split(real, groups=[relabel[g] for g in groups]):
        out.append((np.sort(np.concatenate([real[tr], np.flatnonzero(synthetic)])), real[va]))
    return out
