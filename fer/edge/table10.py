"""Paper Table 10, measured: each exported model's Keras twin and TF.js variants in each
configured runtime (accuracy, largest difference from Keras, batch-1 latency)."""
from __future__ import annotations

import shutil

import keras
import numpy as np

from fer.edge.tfjs import latency, run_js_models, server_latency
from fer.evaluate.metrics import classification_metrics
from fer.train.finetune import predict


def measure(exports: dict, variants: list, sizes: dict, tests: dict, edge: dict) -> tuple:
    """`exports`: backbone -> train set; `sizes`: backbone -> {variant or "keras": MB}. The
    rows (Keras first, then each variant in each runtime) and {(backbone, variant,
    runtime index): row} of what ran."""
    images = np.concatenate([np.asarray(ds.images) for ds in tests.values()])
    bounds = np.cumsum([0] + [len(ds) for ds in tests.values()])
    rows, reference = [], {}
    for name, train_set in exports.items():        # each exported model's Keras row
        model = keras.models.load_model(f"build/tfjs/{name}/model.keras")   # export's copy
        reference[name] = {t: predict(model, ds) for t, ds in tests.items()}
        rows.append({"model": f"{name} on {train_set} (Keras)", "size_mb": sizes[name]["keras"],
                     **{t: classification_metrics(ds.labels, reference[name][t])["accuracy"]
                        for t, ds in tests.items()},
                     "max_abs_diff": 0.0, "location": "server (Python TF, this machine)",
                     **latency(server_latency(model, images[0], edge["runs"], edge["warmup"]))})
    runs = [(name, v) for name in exports for v in variants]
    measured = {}
    for r, rt in enumerate(edge["runtimes"]):
        if rt["where"] == "chromium" and not shutil.which("chromium"):
            print(f"edge: no chromium on this machine, skipping {rt}")
            continue
        batch = images if rt["accuracy"] else images[:1]
        # every model and variant one after another in one process (one browser) per runtime;
        # a latency-only runtime (software WebGL: ~4 s an image here) classifies nothing
        results = run_js_models([f"build/tfjs/{n}/{v}" for n, v in runs], batch,
                                rt["backend"], edge["runs"], rt["where"], edge["warmup"],
                                classify=rt["accuracy"])
        assert len(results) == len(runs), (rt, len(results))
        for (name, variant), js in zip(runs, results):
            row = {"model": f"{name}_JS_{variant}", "size_mb": sizes[name][variant],
                   "location": f"{rt['where']} ({js['backend']})", **latency(js["ms"])}
            if rt["accuracy"]:
                for i, (t, ds) in enumerate(tests.items()):
                    p = js["probs"][bounds[i]:bounds[i + 1]]
                    row[t] = classification_metrics(ds.labels, p)["accuracy"]
                    row["max_abs_diff"] = max(row.get("max_abs_diff", 0.0),
                                              float(np.abs(p - reference[name][t]).max()))
            measured[name, variant, r] = row
            print(f"edge {row['model']} in {row['location']}: {row['median_ms']} ms" +
                  "".join(f", {t} {row[t]:.3f}" for t in tests if t in row))
    rows += [measured[k] for k in sorted(measured, key=lambda k: (runs.index(k[:2]), k[2]))]
    return rows, measured


def _cell(row: dict, key: str, scale: float, fmt: str) -> str:
    """A table cell, or '—' for what a latency-only runtime did not measure."""
    return fmt.format(row[key] * scale) if key in row else "—"


def with_references(rows: list, refs: list, tests: dict) -> list:
    """`rows` and the rows of the reference models of metrics/baselines.json (`refs`; no
    Keras twin, so no probability difference)."""
    return rows + [{"model": f"{r['name']} ({r['package']}), reference, not trained here",
                    "size_mb": r["size_mb"], "location": r["runtime"],
                    **{t: r["tests"][t]["accuracy"] for t in tests},
                    **{k: r[k] for k in ("median_ms", "p90_ms", "runs")}} for r in refs]


def table10_markdown(rows: list, tests: dict, cap, refs: bool, shared: str) -> str:
    """The table of `rows` and its notes (`refs`: reference rows are among them)."""
    lines = ["| Model | Size (MB) | " + " | ".join(f"{t} acc. (%)" for t in tests)
             + " | max abs. diff. vs Keras | Inf. time median / p90 (ms) | Inf. location |",
             "|---" * (len(tests) + 5) + "|"]
    lines += [f"| {r['model']} | {r['size_mb']:.2f} | "
              + " | ".join(_cell(r, t, 100, "{:.1f}") for t in tests)
              + f" | {_cell(r, 'max_abs_diff', 1, '{:.1e}')} | {r['median_ms']:.1f} / "
              f"{r['p90_ms']:.1f} | {r['location']} |" for r in rows]
    counts = ", ".join(f"{t} {len(ds)}" for t, ds in tests.items())
    note = (f"\nKeras and TF.js accuracy on {counts} images"
            + (f" (at most edge.max_images = {cap} of each test set, the "
               "same number per class; reference rows: whole test sets)" if cap else "") + ".\n"
            "— : latency only (headless WebGL has no GPU here and is software-rendered, "
            "so its accuracy pass is skipped; the numbers are those of the other runtimes).\n"
            + ("Reference rows: pretrained models from registry packages on the same crops "
               "(metrics/baselines.json); no Keras twin, hence no difference column.\n"
               if refs else "")
            + (f"{shared}\n" if shared else ""))
    return "\n".join(lines) + "\n" + note
