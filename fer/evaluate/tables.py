"""Paper Tables 2, 3, 6 and 9 from the grid's per-cell metrics. A cell's model is the seed
chosen by `train.select_on` (`cell["selection"]`); whenever test data made a choice, the
table says "test-selected".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fer.evaluate.metrics import pm
from fer.data.labels import EMOTIONS
from fer.core.timing import shared_note


MAX_LABEL = "max, test-selected as in the paper"


def _iv(iv) -> str:
    """'[61.20, 84.72]' (percent) or '—' (no interval: one seed)."""
    return "—" if iv is None else f"[{iv[0] * 100:.2f}, {iv[1] * 100:.2f}]"


def _round_pct(v) -> float | None:
    return None if v is None else round(v * 100, 2)


def table3_rows(cells: list[dict], test_sets: list[str], intervals: dict | None = None,
                references: list[dict] | None = None) -> list[dict]:
    """Table 3 as CSV rows; `intervals[cell][test]["accuracy"]` (fer.evaluate.stats.cell_intervals)
    adds the CI columns, `references` (metrics/baselines.json models) the reference rows."""
    rows = []
    for c in cells:
        key = c["selection"]["key"]
        row = ({"kind": "trained here"} if references else {}) | {
            "train_set": c["train_set"], "model": c["model"], "seeds": len(c["seeds"]),
            "selected_on": c["selection"]["on"]}
        for t in test_sets:
            acc = c["summary"][t]["accuracy"]
            row |= {f"{t} mean": _round_pct(acc["mean"]), f"{t} std": _round_pct(acc["std"])}
            if intervals:
                iv = intervals[c["cell"]][t]["accuracy"]
                for name, v in (("mean_ci", iv["mean_ci"]), (f"{key}_bootstrap", iv["bootstrap"])):
                    row[f"{t} {name} low"], row[f"{t} {name} high"] = map(
                        _round_pct, v or (None, None))
            row |= {f"{t} {key}": _round_pct(acc[key]),
                    f"{t} max_test_selected": _round_pct(acc["max_test_selected"])}
        rows.append(row)
    key = cells[0]["selection"]["key"]
    for r in references or []:
        row = dict.fromkeys(rows[0]) | {"kind": "reference, not trained here", "train_set": "",
                                        "model": r["name"], "seeds": None, "selected_on": None}
        for t in test_sets:
            row[f"{t} mean"] = _round_pct(r["tests"][t]["accuracy"])
            if intervals:
                b = r["tests"][t]["bootstrap"]["accuracy"]
                row[f"{t} {key}_bootstrap low"], row[f"{t} {key}_bootstrap high"] = map(
                    _round_pct, (b["low"], b["high"]))
        rows.append(row)
    return rows


def table3_markdown(cells: list[dict], test_sets: list[str], intervals: dict | None = None,
                    references: list[dict] | None = None, level: float = 0.95) -> str:
    sel = "test-selected seed" if cells[0]["selection"]["test_selected"] else "val-selected seed"
    lvl = f"{level * 100:g} %"
    head = ("| Train dataset | Model | " + " | ".join(
        f"{t} mean ± std (%)"
        + (f" | {t} {lvl} CI of mean (%)" if intervals else "")
        + f" | {t} {sel} (%)"
        + (f" | {t} {sel} bootstrap {lvl} CI (%)" if intervals else "")
        + f" | {t} {MAX_LABEL} (%)" for t in test_sets) + " |")
    lines = [head, "|---|---|" + "---|" * (5 if intervals else 3) * len(test_sets)]
    for c in cells:
        key = c["selection"]["key"]
        cols = []
        for t in test_sets:
            acc = c["summary"][t]["accuracy"]
            iv = intervals[c["cell"]][t]["accuracy"] if intervals else None
            cols.append(pm(acc) + (f" | {_iv(iv['mean_ci'])}" if iv else "")
                        + f" | {acc[key] * 100:.2f}"
                        + (f" | {_iv(iv['bootstrap'])}" if iv else "")
                        + f" | {acc['max_test_selected'] * 100:.2f}")
        lines.append(f"| {c['train_set']} | {c['model']} | {' | '.join(cols)} |")
    for r in references or []:
        cols = []
        for t in test_sets:
            m = r["tests"][t]
            b = m["bootstrap"]["accuracy"]
            cols.append(f"{m['accuracy'] * 100:.2f} (one model)" + (" | —" if intervals else "")
                        + f" | {m['accuracy'] * 100:.2f}"
                        + (f" | {_iv((b['low'], b['high']))}" if intervals else "") + " | —")
        lines.append(f"| reference, not trained here | {r['name']} ({r['package']}) | "
                     f"{' | '.join(cols)} |")
    note = (f"\nmean ± std: over {len(cells[0]['seeds'])} seeds, no selection. {sel}: the "
            f"cell's model, chosen on {cells[0]['selection']['on']}"
            + (" (validation subjects held out of the train set)."
               if not cells[0]["selection"]["test_selected"]
               else " -- a TEST set: the paper's optimistic protocol.")
            + f" {MAX_LABEL}: the best test accuracy over seeds, chosen on the test set "
            "itself; optimistic, shown only to compare with the paper.\n")
    if intervals:
        note += (f"{lvl} CI of mean: Student t interval of the mean over seeds (seed noise "
                 f"only; clipped to [0, 100]). bootstrap {lvl} CI: percentile interval of "
                 f"the {sel}'s accuracy over test images resampled with replacement "
                 "(test-set sampling only).\n")
    if references:
        note += ("reference, not trained here: pretrained models shipped in registry "
                 "packages, run on the same face crops with their own preprocessing "
                 "(docs/evidence.md); one deterministic model, so no seeds.\n")
    gan_cells = [c["cell"] for c in cells if c["selection"].get("train_only_images")]
    if gan_cells and not cells[0]["selection"]["test_selected"]:
        note += (f"{', '.join(gan_cells)}: their train sets hold DCGAN images, generated from "
                 "every subject including the validation subjects, so their validation "
                 "accuracy (and which seed it selects) is optimistic; their test accuracies "
                 "are not affected.\n")
    for t in test_sets:
        absent = cells[0]["per_seed"][0]["tests"][t].get("absent_classes") \
            if cells[0].get("per_seed") else None
        if absent:
            note += (f"{t} has no {', '.join(absent)} images: its balanced accuracy and "
                     "macro-F1 average over the classes it has.\n")
    return "\n".join(lines) + "\n" + note


def to_csv(rows: list[dict]) -> str:
    return pd.DataFrame(rows, dtype=object).to_csv(index=False, lineterminator="\r\n")


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
    gan = any(c["selection"].get("train_only_images") for c in cells)
    how_cell = ("best mean test accuracy, test-selected as in the paper"
                if cell_test_selected else
                "best mean validation accuracy; each train set holds out its own validation "
                "subjects" + (", and sets with DCGAN images validate optimistically"
                              if gan else ""))
    lines = [f"Seed {cell['selected_seed']} ({how_seed}) of {cell['model']} trained on "
             f"{cell['train_set']} (the cell with the {how_cell}), tested on {test_set} "
             f"(accuracy {m['accuracy'] * 100:.2f} %)",
             "", "| Emotion | Precision (%) | Recall (%) |", "|---|---|---|"]
    predicted = np.asarray(m["confusion"]).sum(axis=0)
    lines += [f"| {e} | {_pct(m['precision'][e], predicted[i] > 0)} | "
              f"{_pct(m['recall'][e], m['support'][e] > 0)} |" for i, e in enumerate(EMOTIONS)]
    notes = [f"n/a: no {test_set} image of that class (recall) or no prediction of it "
             "(precision); not 0."] if "n/a" in "".join(lines) else []
    return "\n".join(lines + notes) + "\n"


def _pct(value: float, defined: bool) -> str:
    """A rate in whole percent, or n/a when its denominator is empty."""
    return f"{value * 100:.0f}" if defined else "n/a"


def table9_markdown(cells: list[dict]) -> str:
    lines = ["| Train dataset | Model | Images | Step 1 (s/epoch) | Step 2 (s/epoch) |",
             "|---|---|---|---|---|"]
    lines += [f"| {c['train_set']} | {c['model']} | {c['train_images']} | "
              + " | ".join("—" if c["epoch_seconds"][s] is None else
                           f"{c['epoch_seconds'][s]:.1f}" for s in ("step1", "step2")) + " |"
              for c in cells]
    note = shared_note(max((c.get("concurrent_stages", 1) for c in cells), default=1))
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def table2_markdown(rows: list[dict]) -> str:
    lines = ["| Base model | Layers | k | Params | Trainable params |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['layers']} | {r['k']} | {r['params']:,} | "
              f"{r['trainable_params']:,} |" for r in rows]
    return "\n".join(lines) + "\n"
