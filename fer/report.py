"""Paper tables from the grid's per-cell metrics: Table 3 (accuracy mean ± std over seeds,
the selected seed's accuracy, and the paper's max over seeds, labelled test-selected),
Table 6 (per-class precision/recall of the selected model of the selected cell), Table 9
(seconds per epoch).

What is chosen on what: a cell's model is the seed chosen by `train.select_on` (validation
subjects by default; `cell["selection"]`), and Table 6's cell is the one with the best mean
validation accuracy. Whenever test data made a choice, the heading says "test-selected".
"""
from __future__ import annotations

import csv
import io

from .evaluate import pm
from .labels import EMOTIONS


MAX_LABEL = "max, test-selected as in the paper"


def selected_label(cell: dict) -> str:
    return ("test-selected seed" if cell["selection"]["test_selected"]
            else "val-selected seed")


def table3_rows(cells: list[dict], test_sets: list[str]) -> list[dict]:
    rows = []
    for c in cells:
        key = c["selection"]["key"]
        row = {"train_set": c["train_set"], "model": c["model"], "seeds": len(c["seeds"]),
               "selected_on": c["selection"]["on"]}
        for t in test_sets:
            acc = c["summary"][t]["accuracy"]
            row[f"{t} mean"] = round(acc["mean"] * 100, 2)
            row[f"{t} std"] = round(acc["std"] * 100, 2)
            row[f"{t} {key}"] = round(acc[key] * 100, 2)
            row[f"{t} max_test_selected"] = round(acc["max_test_selected"] * 100, 2)
        rows.append(row)
    return rows


def table3_markdown(cells: list[dict], test_sets: list[str]) -> str:
    sel = selected_label(cells[0])
    head = ("| Train dataset | Model | " + " | ".join(
        f"{t} mean ± std (%) | {t} {sel} (%) | {t} {MAX_LABEL} (%)" for t in test_sets) + " |")
    sep = "|---|---|" + "---|---|---|" * len(test_sets)
    lines = [head, sep]
    for c in cells:
        key = c["selection"]["key"]
        cols = " | ".join(f"{pm(c['summary'][t]['accuracy'])} | "
                          f"{c['summary'][t]['accuracy'][key] * 100:.2f} | "
                          f"{c['summary'][t]['accuracy']['max_test_selected'] * 100:.2f}"
                          for t in test_sets)
        lines.append(f"| {c['train_set']} | {c['model']} | {cols} |")
    note = (f"\nmean ± std: over {len(cells[0]['seeds'])} seeds, no selection. {sel}: the "
            f"cell's model, chosen on {cells[0]['selection']['on']}"
            + (" (validation subjects held out of the train set)."
               if not cells[0]["selection"]["test_selected"]
               else " -- a TEST set: the paper's optimistic protocol.")
            + f" {MAX_LABEL}: the best test accuracy over seeds, chosen on the test set "
            "itself; optimistic, shown only to compare with the paper.\n")
    for t in test_sets:
        absent = cells[0]["per_seed"][0]["tests"][t].get("absent_classes") \
            if cells[0].get("per_seed") else None
        if absent:
            note += (f"{t} has no {', '.join(absent)} images: its balanced accuracy and "
                     "macro-F1 average over the classes it has.\n")
    return "\n".join(lines) + "\n" + note


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def best_cell(cells: list[dict], test_set: str) -> tuple[dict, bool]:
    """(cell, test_selected): the cell with the best mean validation accuracy; only
    without validation data (val_fraction 0) the best mean accuracy on `test_set`."""
    if all(c.get("val_summary") for c in cells):
        return max(cells, key=lambda c: c["val_summary"]["accuracy"]["mean"]), False
    return max(cells, key=lambda c: c["summary"][test_set]["accuracy"]["mean"]), True


def table6_markdown(cells: list[dict], test_set: str) -> str:
    cell, cell_test_selected = best_cell(cells, test_set)
    seed = next(r for r in cell["per_seed"] if r["seed"] == cell["selected_seed"])
    m = seed["tests"][test_set]
    how_seed = ("test-selected as in the paper" if cell["selection"]["test_selected"]
                else "selected on validation subjects")
    how_cell = ("best mean test accuracy, test-selected as in the paper"
                if cell_test_selected else "best mean validation accuracy")
    lines = [f"Seed {cell['selected_seed']} ({how_seed}) of {cell['model']} trained on "
             f"{cell['train_set']} (the cell with the {how_cell}), tested on {test_set} "
             f"(accuracy {m['accuracy'] * 100:.2f} %)",
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
