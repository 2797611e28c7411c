"""Test-set metrics (paper Tables 3 and 6) and their aggregation over seeds."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix,
                             f1_score, precision_recall_fscore_support)

from fer.data.labels import EMOTIONS


def classification_metrics(y_true, probs) -> dict:
    """accuracy, balanced accuracy, macro-F1, per-class precision/recall, confusion.

    A set without some emotions (CK+48 has no neutral) is scored on the classes it has:
    balanced accuracy and macro-F1 average over its present classes, while predictions
    may still be any of the seven (the confusion matrix keeps all seven columns);
    `absent_classes` names the others.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(probs).argmax(axis=1)
    labels = list(range(len(EMOTIONS)))
    present = sorted(set(y_true.tolist()))
    prec, rec, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    recall_present = [rec[c] for c in present]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean(recall_present)) if present else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro",
                                   zero_division=0)) if present else 0.0,
        "absent_classes": [EMOTIONS[c] for c in labels if c not in present],
        "precision": {e: float(p) for e, p in zip(EMOTIONS, prec)},
        "recall": {e: float(r) for e, r in zip(EMOTIONS, rec)},
        "support": {e: int(s) for e, s in zip(EMOTIONS, support)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def summarize(values) -> dict:
    """mean, std (population, as numpy), max and n of a list of numbers."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "max": float(v.max()),
            "n": int(v.size)}


def pm(summary: dict, scale: float = 100.0) -> str:
    """'72.96 ± 8.55' (percent by default)."""
    return f"{summary['mean'] * scale:.2f} ± {summary['std'] * scale:.2f}"


def confusion_png(confusion, title: str, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
