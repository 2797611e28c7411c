"""DVC stage crossval: 5-fold CV on the union of every set (paper 5.2, Table 7), in the
paper's random protocol and the leakage-free grouped one."""
import numpy as np

from fer.atomic import atomic_file, write_json
from fer.dataset import Dataset, concat_datasets, load_dataset
from fer.evaluate import classification_metrics, pm, summarize
from fer.crossval import folds
from fer.finetune import TrainSpec, predict, train_two_step
from fer.grid import stratified_subset
from fer.models import ModelSpec
from fer.params import load_params


def main() -> None:
    params = load_params()
    cv, t = params["crossval"], params["train"]
    union = concat_datasets([load_dataset(f"build/datasets/{name}") for name in cv["sets"]])
    union = stratified_subset(union, cv["max_images"], cv["seed"])
    train = TrainSpec(t["epochs_step1"], t["epochs_step2"], t["lr_step1"], t["lr_step2"],
                      t["batch_size"], val_fraction=0.0)
    results, lines = {}, ["| Model | random folds (%) | grouped folds (%) |", "|---|---|---|"]
    for name in cv["models"]:
        m = params["models"][name]
        spec = ModelSpec(name, m["k"], m["preprocess"], str(m["weights"]), params["crop"]["size"])
        results[name] = {}
        for protocol in ("random", "grouped"):
            accs = []
            for i, (tr, va) in enumerate(folds(union.manifest, protocol, cv["folds"], cv["seed"])):
                part = Dataset(union.images[tr], union.manifest.iloc[tr].reset_index(drop=True))
                model, _, _ = train_two_step(spec, train, part, cv["seed"] + i)
                held = Dataset(union.images[va], union.manifest.iloc[va].reset_index(drop=True))
                accs.append(classification_metrics(held.labels, predict(model, held,
                                                   spec.preprocess))["accuracy"])
                print(f"crossval {name} {protocol} fold {i + 1}: {accs[-1]:.3f}")
            results[name][protocol] = {**summarize(accs), "folds": accs}
        lines.append(f"| {name} | {pm(results[name]['random'])} | "
                     f"{pm(results[name]['grouped'])} |")
    with atomic_file("reports/table7_crossval.md") as f:
        f.write(f"Union of {', '.join(cv['sets'])}: {len(union)} images, "
                f"{cv['folds']} folds\n\n" + "\n".join(lines) + "\n")
    write_json("metrics/crossval.json", results)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
