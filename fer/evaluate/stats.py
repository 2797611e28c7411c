"""Uncertainty of the grid's numbers: a t interval of the mean over seeds, a seeded
bootstrap interval over test images for one model, paired seed-by-seed comparisons
(mean difference, its t interval, exact or Monte Carlo sign-flip permutation p-value)
and Holm's correction across a family of comparisons.

The bootstrap needs no per-image predictions: a confusion matrix is the multiset of
(true, predicted) pairs, so resampling its entries is resampling the test images.
Metrics are fer.evaluate.metrics.confusion_metrics: balanced accuracy and macro-F1 average over the classes
present in the (resampled) test set.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from fer.evaluate.metrics import confusion_metrics

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")

LEVEL = 0.95


def mean_ci(values, level: float = LEVEL) -> tuple[float, float] | None:
    """Student-t interval of the mean of `values` (sample std, n - 1 degrees of
    freedom); None below 2 values. Equal values give a zero-width interval."""
    v = np.asarray(values, np.float64)
    if v.size < 2:
        return None
    half = stats.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def metrics_from_confusion(confusion) -> dict:
    """The three headline metrics of one confusion matrix."""
    return {k: float(v[0]) for k, v in confusion_metrics(np.asarray(confusion)[None]).items()
            if k in HEADLINE}


def bootstrap_ci(confusion, n_resamples: int, seed: int, level: float = LEVEL,
                 batch: int = 1000) -> dict:
    """Percentile bootstrap over test images of one model's confusion matrix: for each
    metric {estimate, low, high, n_resamples, seed}. Seeded: identical inputs give
    identical intervals."""
    cm = np.asarray(confusion, np.int64)
    c = cm.shape[0]
    if cm.ndim != 2 or cm.shape[1] != c or cm.sum() == 0:
        raise ValueError(f"bootstrap needs a non-empty square confusion matrix, got {cm.shape}")
    pairs = np.repeat(np.arange(c * c), cm.ravel())          # true * C + predicted
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
    for start in range(0, n_resamples, batch):
        b = min(batch, n_resamples - start)
        sample = pairs[rng.integers(0, pairs.size, size=(b, pairs.size))]
        flat = (sample + (np.arange(b) * c * c)[:, None]).ravel()
        cms = np.bincount(flat, minlength=b * c * c).reshape(b, c, c)
        resampled = confusion_metrics(cms)
        for k in HEADLINE:
            draws[k].append(resampled[k])
    point = metrics_from_confusion(cm)
    alpha = (1 - level) / 2
    return {k: {"estimate": point[k],
                "low": float(np.quantile(np.concatenate(v), alpha)),
                "high": float(np.quantile(np.concatenate(v), 1 - alpha)),
                "n_resamples": int(n_resamples), "seed": int(seed)}
            for k, v in draws.items()}


def paired_test(a, b, n_resamples: int = 10_000, seed: int = 0,
                level: float = LEVEL) -> dict:
    """Seed-by-seed comparison of a and b (same seeds, same order): mean difference
    a - b, its t interval, and the two-sided paired permutation p-value (signs of the
    differences flipped; exact when 2**n <= n_resamples, else `n_resamples` seeded
    draws). `min_p` is the smallest p-value the design can reach."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 1:
        raise ValueError("paired test needs two equal-length 1-d samples, got "
                         f"{a.shape}, {b.shape}")
    d = a - b
    n = d.size
    exact = 2 ** n <= n_resamples
    if np.all(d == 0):
        p = 1.0
    else:
        res = stats.permutation_test((a, b), lambda x, y: np.mean(x - y),
                                     permutation_type="samples", alternative="two-sided",
                                     n_resamples=np.inf if exact else n_resamples,
                                     random_state=seed)
        p = float(min(1.0, res.pvalue))
    return {"n": int(n), "mean_diff": float(d.mean()), "ci": mean_ci(d, level),
            "p": p, "exact": bool(exact),
            "min_p": float(2 / 2 ** n) if exact else float(1 / (n_resamples + 1))}


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    p = np.asarray(pvalues, np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _clip(iv):
    return None if iv is None else (max(0.0, iv[0]), min(1.0, iv[1]))


def cell_intervals(cell: dict, test_sets: list[str], cfg: dict) -> dict:
    """Per test set and metric of a grid cell: `mean_ci`, the t interval of the mean over
    seeds, and `bootstrap`, the interval over test images of the cell's selected seed
    (its confusion matrix), from `cfg` (report params: level, bootstrap_resamples, seed).
    The t interval is clipped to [0, 1], the range of every metric here."""
    chosen = next(r for r in cell["per_seed"] if r["seed"] == cell["selected_seed"])
    out = {}
    for t in test_sets:
        boot = bootstrap_ci(chosen["tests"][t]["confusion"], cfg["bootstrap_resamples"],
                            cfg["seed"], cfg["level"])
        out[t] = {m: {"mean_ci": _clip(mean_ci([r["tests"][t][m] for r in cell["per_seed"]],
                                               cfg["level"])),
                      "bootstrap": [boot[m]["low"], boot[m]["high"]]}
                  for m in ("accuracy", "balanced_accuracy", "macro_f1")}
    return out
