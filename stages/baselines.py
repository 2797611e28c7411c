"""DVC stage baselines: reference models (pretrained, shipped in registry packages, not
trained here) scored on every grid test set through the project's own face crops, exactly
as the grid's models are: accuracy, balanced accuracy, macro-F1, confusion matrix, a
bootstrap interval over test images, model size and batch-1 latency."""
import json

import numpy as np

from fer.core.atomic import atomic_dir, atomic_file, write_json
from fer.evaluate.baselines import LABEL_MAPS, run_reference
from fer.data.dataset import load_dataset
from fer.edge.tfjs import latency
from fer.evaluate.metrics import classification_metrics, confusion_png
from fer.data.labels import EMOTIONS
from fer.data.layout import set_dir
from fer.core.params import load_params
from fer.evaluate.stats import bootstrap_ci
from fer.core.timing import concurrent_stages, shared_note
from fer.core.tracking import log_datasets, metric_key, mlflow_run


def main() -> None:
    params = load_params()
    cfg, test_sets = params["report"], params["grid"]["test_sets"]
    tests = {t: load_dataset(set_dir(t)) for t in test_sets}
    images = np.concatenate([np.asarray(ds.images) for ds in tests.values()])
    bounds = np.cumsum([0] + [len(ds) for ds in tests.values()])
    models = []
    for name in cfg["reference_models"]:
        res = run_reference(name, images, cfg["latency_runs"])
        row = {"name": name, "kind": "reference, not trained here", "package": res["package"],
               "runtime": f"node ({res['backend']})", "size_mb": round(res["size_mb"], 3),
               "label_map": LABEL_MAPS[name], **latency(res["ms"]), "tests": {},
               "concurrent_stages": concurrent_stages()}
        with atomic_dir(f"reports/baselines/{name}") as tmp:
            for i, (t, ds) in enumerate(tests.items()):
                m = classification_metrics(ds.labels, res["probs"][bounds[i]:bounds[i + 1]])
                m["bootstrap"] = bootstrap_ci(m["confusion"], cfg["bootstrap_resamples"],
                                              cfg["seed"], cfg["level"])
                row["tests"][t] = m
                confusion_png(m["confusion"], f"{name} (reference, not trained here) on {t}",
                              tmp / f"confusion_{metric_key(t)}.png")
                (tmp / f"confusion_{metric_key(t)}.json").write_text(
                    json.dumps({"labels": list(EMOTIONS), "matrix": m["confusion"]}) + "\n")
        models.append(row)
        print(f"{name}: " + ", ".join(f"{t} accuracy {m['accuracy']:.3f}"
                                      for t, m in row["tests"].items())
              + f"; {row['size_mb']} MB, {row['median_ms']} ms median")
    lines = ["| Reference model (not trained here) | Test set | Accuracy (%) | bootstrap "
             f"{cfg['level'] * 100:g} % CI (%) | Balanced acc. (%) | Macro-F1 (%) | "
             "Size (MB) | Latency median / p90 (ms) |", "|---|---|---|---|---|---|---|---|"]
    for r in models:
        for t, m in r["tests"].items():
            b = m["bootstrap"]["accuracy"]
            lines.append(f"| {r['name']} ({r['package']}) | {t} | {m['accuracy'] * 100:.2f} "
                         f"| [{b['low'] * 100:.2f}, {b['high'] * 100:.2f}] | "
                         f"{m['balanced_accuracy'] * 100:.2f} | {m['macro_f1'] * 100:.2f} | "
                         f"{r['size_mb']:.2f} | {r['median_ms']:.1f} / {r['p90_ms']:.1f} |")
    if note := shared_note(concurrent_stages()):
        lines += ["", note]
    with atomic_file("reports/baselines.md") as f:
        f.write("\n".join(lines) + "\n")
    write_json("metrics/baselines.json", {"models": models})
    import mlflow
    for r in models:
        with mlflow_run("baselines", r["name"], params={"package": r["package"],
                        "runtime": r["runtime"], "label_map": r["label_map"]},
                        tags={"kind": r["kind"]}):
            log_datasets(test=[set_dir(t) for t in test_sets])
            mlflow.log_metrics({"size_mb": r["size_mb"], "median_ms": r["median_ms"],
                                "p90_ms": r["p90_ms"], **{
                                    f"{metric_key(t)}_{k}": m[k] for t, m in r["tests"].items()
                                    for k in ("accuracy", "balanced_accuracy", "macro_f1")}})


if __name__ == "__main__":
    main()
