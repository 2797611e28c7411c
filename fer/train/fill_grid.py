"""The whole grid at once: every pending (cell, seed) training submitted together, so a
cluster trains as many seeds as it has GPUs.

    dvc repro merge                                   # train and test sets
    FER_EXECUTOR=ray RAY_ADDRESS=<head>:6379 python -m fer.train.fill_grid
    dvc repro                                         # assembles every cell from the cache

Each finished seed goes into its cell's resume cache as the finetune stage would write it
(`fer.train.grid.record_seed`). Cells named as arguments (`vgg19-KDEF_Q`) restrict it.
"""
from __future__ import annotations

import functools
import json
import sys

from fer.data.dataset import load_dataset
from fer.train.executor import configured, run_groups
from fer.train.grid import (RESUME, cell_spec, check_cell, portable_seed, prepare_cache,
                            record_seed, train_seed)
from fer.data.layout import set_dir
from fer.core.params import load_params


def pending_groups(params: dict, cells=()):
    """[(spec, cache dir, cached records, ((spec, train set, test sets), [(seed,), ...]))]
    for every cell of the grid (or of `cells`), datasets loaded once each."""
    grid = params["grid"]
    names = [(m, t) for m in grid["models"] for t in grid["train_sets"]
             if not cells or f"{m}-{t}" in cells]
    unknown = set(cells) - {f"{m}-{t}" for m, t in names}
    if unknown:
        raise ValueError(f"cells {sorted(unknown)} are not in the grid "
                         f"(grid.models x grid.train_sets)")
    load = functools.cache(lambda name: load_dataset(set_dir(name)))
    tests = {t: load(t) for t in grid["test_sets"]}
    out = []
    for model, train_set in names:
        spec = cell_spec(params, model, train_set)
        full = load(train_set)
        check_cell(spec, full, tests)
        cache = RESUME / spec.name
        prepare_cache(spec, {n: set_dir(n) for n in (train_set, *spec.test_sets)}, cache)
        cached = [json.loads((cache / f"seed_{s}.json").read_text()) for s in spec.seeds
                  if (cache / f"seed_{s}.json").is_file()]
        todo = [(s,) for s in spec.seeds if not (cache / f"seed_{s}.json").is_file()]
        out.append((spec, cache, cached, ((spec, full, tests), todo)))
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    params = load_params()
    cells = pending_groups(params, argv)
    total = sum(len(g[3][1]) for g in cells)
    runner = configured()
    print(f"fill_grid: {total} seeds to train over {len(cells)} cells (FER_EXECUTOR="
          f"{runner.executor})")
    trained = run_groups(runner, train_seed, [g[3] for g in cells], portable_seed)
    for n, (g, _, (result, model)) in enumerate(trained, 1):
        spec, cache, recorded, _ = cells[g]
        record_seed(spec, cache, result, model, recorded)
        recorded.append(result)
        print(f"[{n}/{total}] {spec.name} seed {result['seed']}: " + ", ".join(
            f"{t} {m['accuracy']:.3f}" for t, m in result["tests"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
