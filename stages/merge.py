"""DVC stage merge: build the train sets (KDEF_OL, KDEF_PFA, KDEF_Q, KDEF_PFA_Q) and the
test sets (CK+, JAFFE) of paper Table 1 under build/datasets/."""
from fer.atomic import atomic_file, write_json
from fer.dataset import save_dataset
from fer.merge import build_set, check_classes, counts_table
from fer.params import load_params


def main() -> None:
    params = load_params()
    size = params["crop"]["size"]
    sets = {**params["merge"]["train_sets"], **params["merge"]["test_sets"]}
    cache, summaries = {}, {}
    for name, parts in sets.items():
        ds = build_set(name, parts, size, cache=cache)
        check_classes(name, ds.manifest)
        summaries[name] = save_dataset(f"build/datasets/{name}", ds.images, ds.manifest, name)
        print(f"merge {name:>10}: {summaries[name]['images']:>5} images  ({' + '.join(parts)})")
    write_json("metrics/datasets.json", {n: s["images"] for n, s in summaries.items()})
    with atomic_file("reports/datasets.md") as f:
        f.write(counts_table(summaries))


if __name__ == "__main__":
    main()
