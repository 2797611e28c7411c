"""Uncertainty of the grid's numbers: t intervals of the mean over seeds, seeded bootstrap
intervals over test images (resampling a confusion matrix's entries is resampling the
images), paired sign-flip permutation tests of seed-by-seed differences, Holm's correction.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from fer.evaluate.metrics import HEADLINE, confusion_metrics

LEVEL = 0.95


def mean_ci(values, level: float = LEVEL) -> tuple[float, float] | None:
    """Student-t interval of the mean of `values` (sample std, n - 1 degrees of
    freedom); None below 2 values. Equal values give a zero-width interval."""
    v = np.asarray(values, np.float64)
    if v.size < 2:
        return None
    half = stats.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def bootstrap_ci(confusion, n_resamples: int, seed: int, level: float = LEVEL,
                 batch: int = 1000) -> dict:
    """Seeded percentile bootstrap over the test images of one model's confusion matrix:
    per metric {estimate, low, high, n_resamples, seed}."""
    cm = np.asarray(confusion, np.int64)
    c = cm.shape[0]
    if cm.ndim != 2 or cm.shape[1] != c or cm.sum() == 0:
        raise ValueError(f"bootstrap needs a non-empty square confusion matrix, got {cm.shape}")
    pairs = np.repeat(np.arange(c * c), cm.ravel())          # true * C + predicted
    rng, cms = np.random.default_rng(seed), []
    for start in range(0, n_resamples, batch):          # batches bound the memory
        size = (min(batch, n_resamples - start), pairs.size)
        cms += [np.bincount(s, minlength=c * c) for s in pairs[rng.integers(0, pairs.size, size)]]
    draws = confusion_metrics(np.reshape(cms, (-1, c, c)))
    point, alpha = confusion_metrics(cm[None]), (1 - level) / 2
    return {k: {"estimate": float(point[k][0]), "low": float(np.quantile(draws[k], alpha)),
                "high": float(np.quantile(draws[k], 1 - alpha)),
                "n_resamples": int(n_resamples), "seed": int(seed)} for k in HEADLINE}


def paired_test(a, b, n_resamples: int = 10_000, seed: int = 0,
                level: float = LEVEL) -> dict:
    """Seed-by-seed comparison of a and b: mean difference a - b, its t interval, the
    two-sided sign-flip permutation p-value (exact when 2**n <= n_resamples, else seeded
    Monte Carlo) and `min_p`, the smallest p-value the design can reach."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 1:
        raise ValueError("paired test needs two equal-length 1-d samples, got "
                         f"{a.shape}, {b.shape}")
    d = a - b
    n = d.size
    exact = 2 ** n <= n_resamples
    # scipy clips p to [0, 1]; equal samples (every difference 0) get p = 1
    res = stats.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                 alternative="two-sided",
                                 n_resamples=np.inf if exact else n_resamples, random_state=seed)
    return {"n": int(n), "mean_diff": float(d.mean()), "ci": mean_ci(d, level),
            "p": float(res.pvalue), "exact": bool(exact),
            "min_p": float(2 / 2 ** n) if exact else float(1 / (n_resamples + 1))}


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    p = np.asarray(pvalues, np.float64)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(p.size)
    adjusted[order] = np.maximum.accumulate(
        np.minimum(1.0, (p.size - np.arange(p.size)) * p[order]))
    return adjusted.tolist()


def cell_intervals(cell: dict, test_sets: list[str], cfg: dict) -> dict:
    """Per test set and metric of a grid cell: `mean_ci` over seeds (clipped to [0, 1]) and
    `bootstrap` over the test images of its selected seed (`cfg`: the report params)."""
    chosen = next(r for r in cell["per_seed"] if r["seed"] == cell["selected_seed"])
    out = {}
    for t in test_sets:
        boot = bootstrap_ci(chosen["tests"][t]["confusion"], cfg["bootstrap_resamples"],
                            cfg["seed"], cfg["level"])
        for m in HEADLINE:
            iv = mean_ci([r["tests"][t][m] for r in cell["per_seed"]], cfg["level"])
            out.setdefault(t, {})[m] = {
                "mean_ci": None if iv is None else (max(0.0, iv[0]), min(1.0, iv[1])),
                "bootstrap": [boot[m]["low"], boot[m]["high"]]}
    return out
