"""DVC stage merge: build every train set (merge.train_sets, e.g. KDEF_OL, KDEF_PFA, KDEF_Q,
KDEF_PFA_Q) under build/datasets/ and every test set (merge.test_sets, e.g. CK+, JAFFE)
under build/testsets/ (paper Table 1)."""
from fer.core.atomic import write_json, write_text
from fer.data.dataset import save_dataset
from fer.data.layout import TEST_DIR, TRAIN_DIR
from fer.data.merge import build_set, check_classes, counts_table
from fer.core.params import load_params


def main() -> None:
    params = load_params()
    sets = {**params["merge"]["train_sets"], **params["merge"]["test_sets"]}
    cache, summaries = {}, {}
    for name, parts in sets.items():
        ds = build_set(name, parts, params, cache=cache)
        is_train = name in params["merge"]["train_sets"]
        if is_train:
            absent = check_classes(name, ds.manifest,
                                   name in params["merge"].get("allow_missing_classes", []))
            if absent:
                print(f"merge {name}: no images of {', '.join(absent)} (allowed by "
                      "merge.allow_missing_classes): its models never predict them")
        summaries[name] = save_dataset((TRAIN_DIR if is_train else TEST_DIR) / name,
                                       ds.images, ds.manifest, name)
        print(f"merge {name:>10}: {summaries[name]['images']:>5} images  ({' + '.join(parts)})")
    write_json("metrics/datasets.json", {n: s["images"] for n, s in summaries.items()})
    write_text("reports/datasets.md", counts_table(summaries))


if __name__ == "__main__":
    main()
