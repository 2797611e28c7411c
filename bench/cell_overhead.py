"""Overhead share of each fine-tune cell of a DAG run: the part of the stage's wall
time that is not steady training epochs.

Reads the per-stage wall times saved by `python -m fer.train.parallel_repro --save` or
`bench/stage_times.py --save` (`make demo` writes demo_stage_times.json) and each
cell's `metrics/finetune/<cell>.json`. A cell's steady training time is its number of
seeds times the last seed's step-1 + step-2 epoch seconds (a later seed reuses the
traced graphs and the activation cache); everything else is overhead: process start and
imports, building and tracing (the first seed's epochs beyond a steady seed's), the
activation cache build, predictions, saving, MLflow and DVC.

A run with several stages at a time (`-j N`, `"jobs"` in the file; `make demo` runs 2)
shares the cores between stages: the output says so (`concurrent_stages`); for a single
stage's figures use a run one stage at a time (`make demo JOBS=1` on a fresh clone,
or `dvc repro -f -s` per cell). It assumes every seed trained in
that run (a seed resumed from the cache carries an earlier run's seconds) and needs 2
seeds or more per cell (with one, nothing tells steady epochs from tracing: its steady
time and share are null and it is left out of its backbone's sums). Prints JSON: per
cell and per backbone (sum over its cells).
Usage: python bench/cell_overhead.py demo_stage_times.json [--metrics metrics/finetune]
"""
import argparse
import json
from pathlib import Path


def seconds(seed: dict) -> float:
    return sum(seed["epoch_seconds"]["step1"]) + sum(seed["epoch_seconds"]["step2"])


def cell_overhead(wall_s: float, cell: dict) -> dict:
    seeds = cell["per_seed"]
    several = len(seeds) >= 2
    steady = len(seeds) * seconds(seeds[-1]) if several else None
    return {"wall_s": round(wall_s, 1), "seeds": len(seeds),
            "steady_training_s": round(steady, 1) if several else None,
            "first_seed_extra_s": (round(seconds(seeds[0]) - seconds(seeds[-1]), 1)
                                   if several else None),
            "cache_build_s": round(sum(s["epoch_seconds"].get("cache", {}).get("build_s", 0)
                                       for s in seeds), 1),
            "overhead_share": round(1 - steady / wall_s, 3) if several else None}


def main(times_file, metrics_dir) -> dict:
    times = json.loads(Path(times_file).read_text())
    stages = times["stages_s"]
    cells, backbones = {}, {}
    for stage, wall in stages.items():
        if not stage.startswith("finetune@"):
            continue
        cell = json.loads((Path(metrics_dir) / f"{stage.split('@', 1)[1]}.json").read_text())
        cells[cell["cell"]] = row = cell_overhead(wall, cell)
        if row["steady_training_s"] is None:
            continue
        total = backbones.setdefault(cell["model"], {"wall_s": 0.0, "steady_training_s": 0.0})
        total["wall_s"] += row["wall_s"]
        total["steady_training_s"] += row["steady_training_s"]
    for total in backbones.values():
        total["overhead_share"] = round(1 - total["steady_training_s"] / total["wall_s"], 3)
        total["wall_s"] = round(total["wall_s"], 1)
        total["steady_training_s"] = round(total["steady_training_s"], 1)
    # stages run side by side (fer.train.parallel_repro -j N, make demo's default) share the
    # cores: their wall times, and so these shares, are not a single stage's
    return {"concurrent_stages": times.get("jobs", 1), "cells": cells, "backbones": backbones}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("times")
    ap.add_argument("--metrics", default="metrics/finetune")
    a = ap.parse_args()
    print(json.dumps(main(a.times, a.metrics), indent=1))
