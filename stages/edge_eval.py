"""DVC stage edge_eval: paper Table 10, measured. Every TF.js variant runs in TF.js itself
(Node, WASM backend) on CK+ and JAFFE: accuracy, largest difference from the Keras
model's probabilities, batch-1 latency (median, p90 after warm-up) next to Python TF on
this machine ("server")."""
import json
from pathlib import Path

import keras
import numpy as np

from fer.atomic import atomic_file, write_json
from fer.dataset import load_dataset
from fer.edge import latency, run_js, server_latency
from fer.finetune import predict
from fer.params import load_params


def main() -> None:
    params = load_params()
    e, edge = params["export"], params["edge"]
    src = f"build/models/{e['model']}/{e['train_set']}"
    meta = json.loads(Path(f"{src}/meta.json").read_text())
    model = keras.models.load_model(f"{src}/model.keras")
    sizes = json.loads(Path("metrics/export.json").read_text())["size_mb"]
    tests = {t: load_dataset(f"build/datasets/{t}") for t in params["grid"]["test_sets"]}
    reference = {t: predict(model, ds, meta["preprocess"]) for t, ds in tests.items()}
    first = np.asarray(next(iter(tests.values())).images[0])
    rows = [{"model": f"{e['model']} (Keras)", "variant": "keras", "size_mb": sizes["keras"],
             **{f"{t}_accuracy": float((reference[t].argmax(1) == ds.labels).mean())
                for t, ds in tests.items()},
             "max_abs_diff": 0.0, "location": "server (Python TF, this machine)",
             **latency(server_latency(model, first, meta["preprocess"], edge["runs"]))}]
    for variant in e["variants"]:
        row = {"model": f"{e['model']}_JS_{variant}", "variant": variant,
               "size_mb": sizes[variant], "max_abs_diff": 0.0}
        for t, ds in tests.items():
            js = run_js(f"build/tfjs/{variant}", np.asarray(ds.images), edge["backend"],
                        edge["runs"])
            row[f"{t}_accuracy"] = float((js["probs"].argmax(1) == ds.labels).mean())
            row["max_abs_diff"] = max(row["max_abs_diff"],
                                      float(np.abs(js["probs"] - reference[t]).max()))
            row["argmax_agreement"] = float((js["probs"].argmax(1) ==
                                             reference[t].argmax(1)).mean())
        row.update(location=f"node ({js['backend']})", **latency(js["ms"]))
        rows.append(row)
        print(f"edge {row['model']}: " + ", ".join(f"{t} {row[f'{t}_accuracy']:.3f}"
                                                     for t in tests)
              + f", max |diff| {row['max_abs_diff']:.2e}, {row['median_ms']} ms")
    tnames = list(tests)
    head = ("| Model | Size (MB) | " + " | ".join(f"{t} acc. (%)" for t in tnames)
            + " | max abs. diff. vs Keras | Inf. time median / p90 (ms) | Inf. location |")
    lines = [head, "|---" * (len(tnames) + 5) + "|"]
    lines += [f"| {r['model']} | {r['size_mb']:.1f} | "
              + " | ".join(f"{r[f'{t}_accuracy'] * 100:.1f}" for t in tnames)
              + f" | {r['max_abs_diff']:.1e} | {r['median_ms']:.1f} / {r['p90_ms']:.1f} | "
              f"{r['location']} |" for r in rows]
    with atomic_file("reports/table10.md") as f:
        f.write("\n".join(lines) + "\n")
    write_json("metrics/edge.json", rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
