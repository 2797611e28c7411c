"""DVC stage ksearch: for the selected backbone (`model=...`) and train set, hold out
20 % of the source subjects (with their augmented and PFA copies; DCGAN images only
train) and sweep k, the number of base layers tuned in step 2 (paper 4.3; the paper's
holdout was over images, which lets copies of a held-out face train)."""

from fer.core.atomic import write_json, write_text
from fer.data.dataset import load_dataset, stratified_subset
from fer.train.executor import configured, run_tasks
from fer.train.grid import holdout_accuracy, model_spec, train_spec
from fer.data.layout import set_dir
from fer.core.params import load_params
from fer.data.splits import holdout_by_source


def main() -> None:
    params = load_params()
    ks, name = params["ksearch"], params["model"]["name"]
    if params["models"][name]["weights"] == "none":
        why = (f"not applicable: {name} has weights none, nothing pretrained to keep frozen "
               "(it trains every layer from scratch), so there is no k to choose")
        print(f"ksearch {name}: {why}")
        write_text("reports/ksearch.csv", "k,val_accuracy\n")
        write_json("metrics/ksearch.json", {"model": name, "not_applicable": why})
        return
    data = stratified_subset(load_dataset(set_dir(ks["train_set"])),
                             ks["max_images"], ks["seed"])
    tr, va = holdout_by_source(data.manifest, ks["holdout"], ks["seed"])
    train = train_spec(params, val_fraction=0.0, model=name)
    rows, k_values = [], ks["k_values"][name]
    specs = [(model_spec(params, name, k=k), tr, va, ks["seed"]) for k in k_values]
    accs = run_tasks(configured(), holdout_accuracy, (train, data), specs)
    for k, acc in zip(k_values, accs):              # each k one task under FER_EXECUTOR
        rows.append({"k": k, "val_accuracy": acc})
        print(f"ksearch {name} on {ks['train_set']}: k={k} val accuracy {acc:.3f}")
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["k"]))
    write_text("reports/ksearch.csv", "k,val_accuracy\n" + "".join(
        f"{r['k']},{r['val_accuracy']:.4f}\n" for r in rows))
    write_json("metrics/ksearch.json", {
        "model": name, "train_set": ks["train_set"], "holdout": "source subjects",
        "val_images": len(va), "best_k": best["k"], "configured_k": params["models"][name]["k"],
        "sweep": rows})


if __name__ == "__main__":
    main()
