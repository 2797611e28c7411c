"""Reference models: pretrained facial-expression networks shipped in registry packages
(face-api: `@vladmandic/face-api`, TF.js on Node's WASM backend via `web/baseline.mjs`),
run offline on the project's face crops and scored exactly like the grid's models.
"""
from __future__ import annotations

import numpy as np

from fer.core.timing import concurrent_stages
from fer.data.labels import EMOTIONS
from fer.edge.tfjs import latency, run_node_script
from fer.evaluate.metrics import classification_metrics
from fer.evaluate.stats import bootstrap_ci

# Each reference model's own label order -> the project's emotion names.
LABEL_MAPS = {
    "face-api": {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                 "fearful": "fear", "disgusted": "disgust", "surprised": "surprise"},
}
RUNNERS = {"face-api": "baseline.mjs"}


def to_emotions(probs: np.ndarray, labels: list[str], mapping: dict) -> np.ndarray:
    """Reorder (N, len(labels)) probabilities into the project's EMOTIONS order; every
    label must map to exactly one emotion, and every emotion be covered."""
    unknown = [lab for lab in labels if lab not in mapping]
    if unknown:
        raise ValueError(f"reference model labels {unknown} have no emotion mapping")
    targets = [mapping[lab] for lab in labels]
    missing = [e for e in EMOTIONS if e not in targets]
    if missing or len(set(targets)) != len(targets):
        raise ValueError(f"label map {mapping} must cover each of {list(EMOTIONS)} once "
                         f"(missing {missing})")
    return np.asarray(probs, np.float32)[:, [targets.index(e) for e in EMOTIONS]]


def run_reference(name: str, images: np.ndarray, runs: int = 30) -> dict:
    """Run reference model `name` on uint8 RGB crops (N, S, S, 3) in TF.js (Node, WASM):
    probs (N, 7) in EMOTIONS order, batch-1 latencies (ms), size_mb, backend, package."""
    if name not in RUNNERS:
        raise ValueError(f"unknown reference model {name!r}; expected one of {sorted(RUNNERS)}")
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"expected (N, S, S, 3) uint8 crops, got shape {images.shape}")
    res = run_node_script(RUNNERS[name], images, [runs], f"reference model {name} in Node",
                          package="@vladmandic/face-api")
    return {"probs": to_emotions(res["probs"], res["labels"], LABEL_MAPS[name]),
            "ms": res["ms"], "size_mb": res["weight_bytes"] / 1e6, "backend": res["backend"],
            "package": res["package"]}


def score_reference(name: str, tests: dict, report: dict) -> dict:
    """Reference model `name` on every test set (name -> Dataset) at once: its row of
    metrics/baselines.json, per test set the grid's metrics and a bootstrap interval."""
    images = np.concatenate([np.asarray(ds.images) for ds in tests.values()])
    bounds = np.cumsum([0] + [len(ds) for ds in tests.values()])
    res = run_reference(name, images, report["latency_runs"])
    row = {"name": name, "kind": "reference, not trained here", "package": res["package"],
           "runtime": f"node ({res['backend']})", "size_mb": round(res["size_mb"], 3),
           "label_map": LABEL_MAPS[name], **latency(res["ms"]), "tests": {},
           "concurrent_stages": concurrent_stages()}
    for i, (t, ds) in enumerate(tests.items()):
        m = classification_metrics(ds.labels, res["probs"][bounds[i]:bounds[i + 1]])
        m["bootstrap"] = bootstrap_ci(m["confusion"], report["bootstrap_resamples"],
                                      report["seed"], report["level"])
        row["tests"][t] = m
    return row


def baselines_markdown(models: list[dict], level: float) -> list[str]:
    lines = ["| Reference model (not trained here) | Test set | Accuracy (%) | bootstrap "
             f"{level * 100:g} % CI (%) | Balanced acc. (%) | Macro-F1 (%) | "
             "Size (MB) | Latency median / p90 (ms) |", "|---|---|---|---|---|---|---|---|"]
    for r in models:
        for t, m in r["tests"].items():
            b = m["bootstrap"]["accuracy"]
            lines.append(f"| {r['name']} ({r['package']}) | {t} | {m['accuracy'] * 100:.2f} "
                         f"| [{b['low'] * 100:.2f}, {b['high'] * 100:.2f}] | "
                         f"{m['balanced_accuracy'] * 100:.2f} | {m['macro_f1'] * 100:.2f} | "
                         f"{r['size_mb']:.2f} | {r['median_ms']:.1f} / {r['p90_ms']:.1f} |")
    return lines
