"""DVC stage crossval: 5-fold CV on the union of every set (paper 5.2, Table 7), in the
paper's random protocol and the leakage-free grouped one."""

from fer.core.atomic import write_json, write_text
from fer.data.dataset import concat_datasets, load_dataset, stratified_subset
from fer.evaluate.metrics import pm, summarize
from fer.data.crossval import PROTOCOLS, RESULT_KEYS, folds, leakage_note
from fer.train.executor import configured, run_tasks
from fer.train.grid import holdout_accuracy, model_spec, train_spec
from fer.data.layout import set_dir
from fer.core.params import load_params


def main() -> None:
    params = load_params()
    cv = params["crossval"]
    union = concat_datasets([load_dataset(set_dir(name)) for name in cv["sets"]])
    union = stratified_subset(union, cv["max_images"], cv["seed"])
    results, lines = {}, ["| Model | random folds, as in the paper: optimistic (%) | "
                          "subject-grouped folds (%) |", "|---|---|---|"]
    splits = {p: folds(union.manifest, p, cv["folds"], cv["seed"]) for p in PROTOCOLS}
    for name in cv["models"]:       # each backbone with its own train keys (models.<m>.train)
        tasks = [(protocol, i, (model_spec(params, name), tr, va, cv["seed"] + i))
                 for protocol in PROTOCOLS for i, (tr, va) in enumerate(splits[protocol])]
        # every (protocol, fold) one task under FER_EXECUTOR, in this order
        accs = run_tasks(configured(), holdout_accuracy,
                         (train_spec(params, val_fraction=0.0, model=name), union),
                         [t[-1] for t in tasks])
        fold_accs = {p: [] for p in PROTOCOLS}
        for (protocol, i, _), acc in zip(tasks, accs):
            fold_accs[protocol].append(acc)
            print(f"crossval {name} {protocol} fold {i + 1}: {acc:.3f}")
        results[name] = {RESULT_KEYS[p]: {**summarize(a), "folds": a}
                         for p, a in fold_accs.items()}
        lines.append(f"| {name} | {pm(results[name][RESULT_KEYS['random']])} | "
                     f"{pm(results[name][RESULT_KEYS['grouped']])} |")
    write_text("reports/table7_crossval.md",
               f"Union of {', '.join(cv['sets'])}: {len(union)} images, {cv['folds']} folds\n\n"
               + "\n".join(lines) + "\n\n"
               + leakage_note(union.manifest, params["augment"]["part"]) + "\n")
    write_json("metrics/crossval.json", results)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
