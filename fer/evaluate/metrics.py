"""Test-set metrics (paper Tables 3 and 6) and their aggregation over seeds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from fer.core.schema import HEADLINE
from fer.data.labels import EMOTIONS


def confusion_metrics(cms) -> dict:
    """accuracy, balanced accuracy and macro-F1 of a stack of confusion matrices (B, C, C)
    (rows true): arrays of B values, vectorised for the bootstrap's thousands of resamples.
    As scikit-learn's with `labels` = the present classes: a set without some emotions
    (CK+48 has no neutral) is scored on the classes it has (tests/test_stats.py)."""
    cms = np.asarray(cms, np.float64)
    diag = np.einsum("bii->bi", cms)
    support, predicted = cms.sum(2), cms.sum(1)
    present = support > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(present, diag / support, 0.0)
        precision = np.where(predicted > 0, diag / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        n_present = present.sum(1)
        return {"accuracy": diag.sum(1) / support.sum(1),
                "balanced_accuracy": np.where(n_present, (recall * present).sum(1) / n_present, 0),
                "macro_f1": np.where(n_present, (f1 * present).sum(1) / n_present, 0),
                "precision": precision, "recall": recall, "support": support}


def classification_metrics(y_true, predicted) -> dict:
    """accuracy, balanced accuracy, macro-F1 (`confusion_metrics`), per-class precision,
    recall and support, the confusion matrix (all seven columns) and `absent_classes` of
    `predicted`: class probabilities (N, 7) or classes (N,)."""
    labels, predicted = list(range(len(EMOTIONS))), np.asarray(predicted)
    cm = confusion_matrix(np.asarray(y_true),
                          predicted.argmax(axis=1) if predicted.ndim == 2 else predicted,
                          labels=labels)
    m = {k: v[0] for k, v in confusion_metrics(cm[None]).items()}
    return {
        **{k: float(m[k]) for k in HEADLINE},
        "absent_classes": [EMOTIONS[c] for c in labels if not m["support"][c]],
        **{k: {e: (int if k == "support" else float)(v) for e, v in zip(EMOTIONS, m[k])}
           for k in ("precision", "recall", "support")},
        "confusion": cm.tolist(),
    }


def summarize(values) -> dict:
    """mean, std (population, as numpy), max and n of a list of numbers."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "max": float(v.max()),
            "n": int(v.size)}


def pm(summary: dict) -> str:
    """'72.96 ± 8.55' (percent)."""
    return f"{summary['mean'] * 100:.2f} ± {summary['std'] * 100:.2f}"


def confusion_png(confusion, title: str, path) -> None:
    from matplotlib.figure import Figure         # lazily: training imports this module
    ax = Figure(figsize=(5.2, 4.6)).subplots()
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=EMOTIONS).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45, text_kw={"fontsize": 8})
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=100)


def write_confusions(tests: dict, title: str, folder, file_key=str) -> None:
    """Per test set of `tests` ({name: classification_metrics}) its confusion matrix as
    `confusion_<file_key(name)>.png` (titled "`title` on <name>") and `.json` in `folder`."""
    for t, m in tests.items():
        name = file_key(t)
        confusion_png(m["confusion"], f"{title} on {t}", Path(folder) / f"confusion_{name}.png")
        (Path(folder) / f"confusion_{name}.json").write_text(
            json.dumps({"labels": list(EMOTIONS), "matrix": m["confusion"]}) + "\n")
