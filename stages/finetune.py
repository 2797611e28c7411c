"""DVC stage finetune@<model>-<train_set>: one cell of the cross-database grid (paper 5.1):
every seed fine-tuned in two steps and tested on every test set; the seed selected on
validation subjects (train.select_on) is kept as a deterministic Keras file (fer.train.keras_io),
with the preprocessing it needs in meta.json."""
import json
import shutil
import sys

from fer.core.atomic import atomic_dir, write_json
from fer.evaluate.metrics import pm, write_confusions
from fer.train.executor import configured
from fer.train.grid import (RESUME, cell_spec, prepare_cache, run_cell, selected_meta,
                            selected_record)
from fer.data.layout import set_dir
from fer.core.params import load_params
from fer.core.timing import concurrent_stages
from fer.core.mlmodel import log_cell_model
from fer.core.tracking import log_datasets, log_seed_run, metric_key, metric_logger, mlflow_run


def main(model: str, train_set: str) -> None:
    params = load_params()
    spec = cell_spec(params, model, train_set)
    import mlflow

    # seeds and their MLflow run resume together, under the cell's content key
    cache_dir = RESUME / spec.name
    sets = {n: set_dir(n) for n in (train_set, *spec.test_sets)}
    key = prepare_cache(spec, sets, cache_dir)
    run_file = cache_dir.with_name(f"{spec.name}.mlflow_run.json")
    with mlflow_run("finetune", spec.name, params={"model": params["models"][model],
                    "train": params["train"], "train_set": train_set, "input_size":
                    spec.model.input_size}, tags={"cell": spec.name},
                    resume_file=run_file, resume_key=key) as run:
        log = metric_logger(run.info.run_id)
        log_datasets(training=[sets[train_set]], test=[sets[t] for t in spec.test_sets])

        def log_seed(r):
            log_seed_run(spec.name, r, spec.train.epochs_step1)
            accs = ", ".join(f"{t} {m['accuracy']:.3f}" for t, m in r["tests"].items())
            print(f"{spec.name} seed {r['seed']}{' (cached)' if r['resumed'] else ''}: {accs}")

        cell = run_cell(spec, sets, cache_dir, log_seed, prepared=True,
                        runner=configured())
        sel = cell["selection"]["key"]
        for t, s in cell["summary"].items():
            log({f"{metric_key(t)}_accuracy_{stat}": s["accuracy"][stat]
                 for stat in ("mean", "std", sel, "max_test_selected")})
        if cell["val_summary"]:
            log({"val_accuracy_mean": cell["val_summary"]["accuracy"]["mean"]})
        mlflow.set_tags({"selected_on": spec.select_on, "selected_seed": cell["selected_seed"]})
        log({f"{s}_seconds_per_epoch": v for s, v in cell["epoch_seconds"].items()
             if v is not None})
        log_cell_model(cell["selected_model"], f"build/models/{model}/{train_set}/model.keras",
                       cell=spec.name, test_selected=cell["selection"]["test_selected"])

    meta = selected_meta(spec, cell, params["crop"])
    with atomic_dir(f"build/models/{model}/{train_set}") as tmp:
        # already a deterministic .keras file (fer.train.keras_io): copy it
        shutil.copyfile(cell["selected_model"], tmp / "model.keras")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    with atomic_dir(f"reports/finetune/{spec.name}") as tmp:
        write_confusions(selected_record(cell)["tests"],
                         f"{spec.name} seed {cell['selected_seed']} "
                         f"({'test' if meta['test_selected'] else 'val'}-selected)", tmp,
                         metric_key)
    cell.pop("selected_model")
    # stages run side by side share the machine: say so beside Table 9's epoch seconds
    cell["concurrent_stages"] = concurrent_stages()
    write_json(f"metrics/finetune/{spec.name}.json", cell)
    shutil.rmtree(cache_dir, ignore_errors=True)
    run_file.unlink(missing_ok=True)
    print(f"{spec.name}: " + ", ".join(f"{t} {pm(s['accuracy'])}" for t, s in
                                       cell["summary"].items()) + f" over {len(spec.seeds)} seeds; "
          f"seed {cell['selected_seed']} selected on {spec.select_on}")


if __name__ == "__main__":
    main(*sys.argv[1].split("-", 1))
