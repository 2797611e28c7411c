"""DVC stage ksearch: for the selected backbone (`model=...`) and train set, hold out
20 % and sweep k, the number of base layers tuned in step 2 (paper 4.3)."""
import numpy as np

from fer.atomic import atomic_file, write_json
from fer.dataset import load_dataset
from fer.evaluate import classification_metrics
from fer.finetune import predict, train_two_step
from fer.grid import model_spec, stratified_subset, train_spec
from fer.params import load_params


def main() -> None:
    params = load_params()
    ks, name = params["ksearch"], params["model"]["name"]
    data = stratified_subset(load_dataset(f"build/datasets/{ks['train_set']}"),
                             ks["max_images"], ks["seed"])
    order = np.random.default_rng(ks["seed"]).permutation(len(data))
    cut = int(round(len(data) * (1 - ks["holdout"])))
    train_part, val_part = data.subset(np.sort(order[:cut])), data.subset(np.sort(order[cut:]))
    train = train_spec(params, val_fraction=0.0)
    rows = []
    for k in ks["k_values"][name]:
        spec = model_spec(params, name, k=k)
        model, _, _ = train_two_step(spec, train, train_part, ks["seed"])
        acc = classification_metrics(val_part.labels, predict(model, val_part,
                                                              spec.preprocess))["accuracy"]
        rows.append({"k": k, "val_accuracy": acc})
        print(f"ksearch {name} on {ks['train_set']}: k={k} val accuracy {acc:.3f}")
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["k"]))
    with atomic_file("reports/ksearch.csv") as f:
        f.write("k,val_accuracy\n" + "".join(f"{r['k']},{r['val_accuracy']:.4f}\n" for r in rows))
    write_json("metrics/ksearch.json", {"model": name, "train_set": ks["train_set"],
                                        "best_k": best["k"], "configured_k": params["models"][name]["k"],
                                        "sweep": rows})


if __name__ == "__main__":
    main()
