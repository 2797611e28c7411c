"""DVC stage crossval: 5-fold CV on the union of every set (paper 5.2, Table 7), in the
paper's random protocol and the leakage-free grouped one."""

from fer.atomic import atomic_file, write_json
from fer.dataset import concat_datasets, load_dataset
from fer.evaluate import classification_metrics, pm, summarize
from fer.crossval import PROTOCOLS, RESULT_KEYS, folds
from fer.finetune import predict, train_two_step
from fer.grid import model_spec, stratified_subset, train_spec
from fer.layout import set_dir
from fer.params import load_params


def main() -> None:
    params = load_params()
    cv = params["crossval"]
    union = concat_datasets([load_dataset(set_dir(name)) for name in cv["sets"]])
    union = stratified_subset(union, cv["max_images"], cv["seed"])
    train = train_spec(params, val_fraction=0.0)
    results, lines = {}, ["| Model | random folds, as in the paper: optimistic (%) | "
                          "subject-grouped folds (%) |", "|---|---|---|"]
    for name in cv["models"]:
        spec = model_spec(params, name)
        results[name] = {}
        for protocol in PROTOCOLS:
            accs = []
            for i, (tr, va) in enumerate(folds(union.manifest, protocol, cv["folds"], cv["seed"])):
                model, _, _ = train_two_step(spec, train, union.subset(tr), cv["seed"] + i)
                held = union.subset(va)
                accs.append(classification_metrics(held.labels, predict(model, held,
                                                   spec.preprocess))["accuracy"])
                print(f"crossval {name} {protocol} fold {i + 1}: {accs[-1]:.3f}")
            results[name][RESULT_KEYS[protocol]] = {**summarize(accs), "folds": accs}
        lines.append(f"| {name} | {pm(results[name][RESULT_KEYS['random']])} | "
                     f"{pm(results[name][RESULT_KEYS['grouped']])} |")
    with atomic_file("reports/table7_crossval.md") as f:
        f.write(f"Union of {', '.join(cv['sets'])}: {len(union)} images, "
                f"{cv['folds']} folds\n\n" + "\n".join(lines) + "\n\nRandom folds (the "
                "paper's) put images of one person -- a photo, its augmented copies, the "
                "PFA faces made from it -- on both sides; grouped folds keep each source "
                "subject on one side and only train on DCGAN images.\n")
    write_json("metrics/crossval.json", results)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
