"""DVC stage finetune@<model>-<train_set>: one cell of the cross-database grid (paper 5.1):
every seed fine-tuned in two steps and tested on CK+ and JAFFE; the best seed's model kept
as a deterministic Keras file (fer.keras_io), with the preprocessing it needs in meta.json."""
import json
import shutil
import sys

import keras

from fer.atomic import atomic_dir, write_json
from fer.evaluate import confusion_png, pm
from fer.grid import cell_spec, run_cell
from fer.keras_io import save_model
from fer.labels import EMOTIONS
from fer.params import load_params
from fer.tracking import log_seed_run, metric_key, mlflow_run


def main(model: str, train_set: str) -> None:
    params = load_params()
    spec = cell_spec(params, model, train_set)
    import mlflow

    with mlflow_run("finetune", spec.name, params={"model": params["models"][model],
                    "train": params["train"], "train_set": train_set, "input_size":
                    spec.model.input_size}, tags={"cell": spec.name}):

        def log_seed(r):
            log_seed_run(spec.name, r, spec.train.epochs_step1)
            accs = ", ".join(f"{t} {m['accuracy']:.3f}" for t, m in r["tests"].items())
            print(f"{spec.name} seed {r['seed']}{' (cached)' if r['resumed'] else ''}: {accs}")

        cell = run_cell(spec, "build/datasets", f".cache/finetune/{spec.name}", log_seed)
        for t, s in cell["summary"].items():
            mlflow.log_metrics({f"{metric_key(t)}_accuracy_{k}": s["accuracy"][k]
                                for k in ("mean", "std", "max")})
        mlflow.log_metrics({f"{s}_seconds_per_epoch": v for s, v in
                            cell["epoch_seconds"].items()})

    best = next(r for r in cell["per_seed"] if r["seed"] == cell["best_seed"])
    meta = {"model": model, "train_set": train_set, "seed": cell["best_seed"],
            "input_size": spec.model.input_size, "preprocess": spec.model.preprocess,
            "bgr_mean": [103.939, 116.779, 123.68] if spec.model.preprocess == "caffe" else None,
            "labels": list(EMOTIONS), "k": spec.model.k,
            "crop": {k: params["crop"][k] for k in ("margin", "square", "confidence")}, "weights": spec.model.weights,
            "tests": {t: m["accuracy"] for t, m in best["tests"].items()}}
    with atomic_dir(f"build/models/{model}/{train_set}") as tmp:
        save_model(keras.models.load_model(cell["best_model"]), tmp / "model.keras")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    with atomic_dir(f"reports/finetune/{spec.name}") as tmp:
        for t, m in best["tests"].items():
            confusion_png(m["confusion"], f"{spec.name} seed {cell['best_seed']} on {t}",
                          tmp / f"confusion_{metric_key(t)}.png")
            (tmp / f"confusion_{metric_key(t)}.json").write_text(
                json.dumps({"labels": list(EMOTIONS), "matrix": m["confusion"]}) + "\n")
    cell.pop("best_model")
    write_json(f"metrics/finetune/{spec.name}.json", cell)
    shutil.rmtree(f".cache/finetune/{spec.name}", ignore_errors=True)
    print(f"{spec.name}: " + ", ".join(f"{t} {pm(s['accuracy'])}" for t, s in
                                       cell["summary"].items()) + f" over {len(spec.seeds)} seeds")


if __name__ == "__main__":
    main(*sys.argv[1].split("-", 1))
