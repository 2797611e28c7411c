"""Paper tables from the grid's per-cell metrics: Table 3 (accuracy mean ± std, max),
Table 6 (per-class precision/recall of the best model), Table 9 (seconds per epoch)."""
from __future__ import annotations

import csv
import io

from .evaluate import pm
from .labels import EMOTIONS


def table3_rows(cells: list[dict], test_sets: list[str]) -> list[dict]:
    rows = []
    for c in cells:
        row = {"train_set": c["train_set"], "model": c["model"], "seeds": len(c["seeds"])}
        for t in test_sets:
            acc = c["summary"][t]["accuracy"]
            row[f"{t} mean"] = round(acc["mean"] * 100, 2)
            row[f"{t} std"] = round(acc["std"] * 100, 2)
            row[f"{t} max"] = round(acc["max"] * 100, 2)
        rows.append(row)
    return rows


def table3_markdown(cells: list[dict], test_sets: list[str]) -> str:
    head = "| Train dataset | Model | " + " | ".join(f"{t} (%) | {t} max" for t in test_sets) + " |"
    sep = "|---|---|" + "---|---|" * len(test_sets)
    lines = [head, sep]
    for c in cells:
        cols = " | ".join(f"{pm(c['summary'][t]['accuracy'])} | "
                          f"{c['summary'][t]['accuracy']['max'] * 100:.2f}" for t in test_sets)
        lines.append(f"| {c['train_set']} | {c['model']} | {cols} |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def best_cell(cells: list[dict], test_set: str) -> dict:
    return max(cells, key=lambda c: c["summary"][test_set]["accuracy"]["mean"])


def table6_markdown(cell: dict, test_set: str) -> str:
    seed = next(r for r in cell["per_seed"] if r["seed"] == cell["best_seed"])
    m = seed["tests"][test_set]
    lines = [f"Best seed ({cell['best_seed']}) of {cell['model']} trained on "
             f"{cell['train_set']}, tested on {test_set} (accuracy {m['accuracy'] * 100:.2f} %)",
             "", "| Emotion | Precision (%) | Recall (%) |", "|---|---|---|"]
    lines += [f"| {e} | {m['precision'][e] * 100:.0f} | {m['recall'][e] * 100:.0f} |"
              for e in EMOTIONS]
    return "\n".join(lines) + "\n"


def table9_markdown(cells: list[dict]) -> str:
    lines = ["| Train dataset | Model | Images | Step 1 (s/epoch) | Step 2 (s/epoch) |",
             "|---|---|---|---|---|"]
    lines += [f"| {c['train_set']} | {c['model']} | {c['train_images']} | "
              f"{c['epoch_seconds']['step1']:.1f} | {c['epoch_seconds']['step2']:.1f} |"
              for c in cells]
    return "\n".join(lines) + "\n"


def table2_markdown(rows: list[dict]) -> str:
    lines = ["| Base model | Layers | k | Params | Trainable params |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['layers']} | {r['k']} | {r['params']:,} | "
              f"{r['trainable_params']:,} |" for r in rows]
    return "\n".join(lines) + "\n"
