"""DVC stage edge_eval: paper Table 10, measured. Every TF.js variant runs in TF.js itself
in each configured runtime (Node + WASM, headless Chromium + WASM, Chromium + WebGL):
accuracy on the test sets, largest difference from the Keras model's probabilities, and
batch-1 latency (median, p90 after warm-up) next to Python TF on this machine."""
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from fer.core.atomic import atomic_file, write_json
from fer.evaluate.baselines import edge_rows
from fer.data.dataset import load_dataset, stratified_subset
from fer.edge.tfjs import latency, run_js_models, server_latency
from fer.train.finetune import predict
from fer.data.layout import set_dir
from fer.core.params import load_params
from fer.core.timing import concurrent_stages, shared_note

BASELINES = Path("metrics/baselines.json")


def _cell(row: dict, key: str, scale: float, fmt: str) -> str:
    """A table cell, or '—' for what a latency-only runtime did not measure."""
    return fmt.format(row[key] * scale) if key in row else "—"


def main() -> None:
    params = load_params()
    e, edge = params["export"], params["edge"]
    cap = edge.get("max_images")
    tests = {t: stratified_subset(load_dataset(set_dir(t)), cap, 0)
             for t in params["grid"]["test_sets"]}
    images = np.concatenate([np.asarray(ds.images) for ds in tests.values()])
    bounds = np.cumsum([0] + [len(ds) for ds in tests.values()])
    rows, reference, sizes = [], {}, {}
    for name, train_set in e["models"].items():    # each exported model's Keras row
        model = keras.models.load_model(f"build/tfjs/{name}/model.keras")   # export's copy
        sizes[name] = json.loads(Path(f"metrics/export/{name}.json").read_text())["size_mb"]
        reference[name] = {t: predict(model, ds) for t, ds in tests.items()}
        rows.append({"model": f"{name} on {train_set} (Keras)", "size_mb": sizes[name]["keras"],
                     **{t: float((reference[name][t].argmax(1) == ds.labels).mean())
                        for t, ds in tests.items()},
                     "max_abs_diff": 0.0, "location": "server (Python TF, this machine)",
                     **latency(server_latency(model, images[0], edge["runs"], edge["warmup"]))})
    has_chromium = shutil.which("chromium") is not None
    runs = [(name, v) for name in e["models"] for v in e["variants"]]
    measured = {}                  # (model, variant, runtime index) -> row
    for r, rt in enumerate(edge["runtimes"]):
        if rt["where"] == "chromium" and not has_chromium:
            print(f"edge: no chromium on this machine, skipping {rt}")
            continue
        batch = images if rt["accuracy"] else images[:1]
        # every model and variant in one process (one browser) per runtime, one after
        # another; a latency-only runtime (software WebGL: ~4 s an image here) classifies
        # nothing
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
                    row[t] = float((p.argmax(1) == ds.labels).mean())
                    row["max_abs_diff"] = max(row.get("max_abs_diff", 0.0),
                                              float(np.abs(p - reference[name][t]).max()))
            measured[name, variant, r] = row
            print(f"edge {row['model']} in {row['location']}: {row['median_ms']} ms" +
                  "".join(f", {t} {row[t]:.3f}" for t in tests if t in row))
    rows += [measured[k] for k in ((n, v, r) for n, v in runs
                                    for r in range(len(edge["runtimes"]))) if k in measured]
    refs = (json.loads(BASELINES.read_text())["models"] if BASELINES.is_file() else [])
    rows += edge_rows(refs, list(tests))
    lines = ["| Model | Size (MB) | " + " | ".join(f"{t} acc. (%)" for t in tests)
             + " | max abs. diff. vs Keras | Inf. time median / p90 (ms) | Inf. location |",
             "|---" * (len(tests) + 5) + "|"]
    lines += [f"| {r['model']} | {r['size_mb']:.2f} | "
              + " | ".join(_cell(r, t, 100, "{:.1f}") for t in tests)
              + f" | {_cell(r, 'max_abs_diff', 1, '{:.1e}')} | {r['median_ms']:.1f} / "
              f"{r['p90_ms']:.1f} | {r['location']} |" for r in rows]
    counts = ", ".join(f"{t} {len(ds)}" for t, ds in tests.items())
    # latencies timed while other stages shared the machine (the reference rows' own)
    shared = shared_note(max([concurrent_stages()]
                             + [r.get("concurrent_stages", 1) for r in refs]))
    note = (f"\nKeras and TF.js accuracy on {counts} images"
            + (f" (at most edge.max_images = {cap} of each test set, the "
               "same number per class; reference rows: whole test sets)" if cap else "") + ".\n"
            "— : latency only (headless WebGL has no GPU here and is software-rendered, "
            "so its accuracy pass is skipped; the numbers are those of the other runtimes).\n"
            + ("Reference rows: pretrained models from registry packages on the same crops "
               "(metrics/baselines.json); no Keras twin, hence no difference column.\n"
               if refs else "")
            + (f"{shared}\n" if shared else ""))
    with atomic_file("reports/table10.md") as f:
        f.write("\n".join(lines) + "\n" + note)
    write_json("metrics/edge.json", rows)
    # for `dvc exp show`: each exported model's variants, size and latency in the first
    # runtime
    write_json("metrics/headline/edge.json", {n: {
        v: {"size_mb": sizes[n][v], **({"median_ms": measured[n, v, 0]["median_ms"]}
                                       if (n, v, 0) in measured else {})}
        for v in e["variants"]} for n in e["models"]})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
