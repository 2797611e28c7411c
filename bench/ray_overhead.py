"""Executor overhead: wall time of one demo-profile cell (vgg16, 80 px, 224 train images,
1 + 1 epochs) with 4 seeds under FER_EXECUTOR local vs ray on this machine, Ray's start
time and its per-task overhead (round trip of an empty task), and the projection of the
paper grid's wall time on N GPUs from a measured per-seed time.
Prints JSON. Usage: python bench/ray_overhead.py [--seeds 4] [--cpus 2]
"""
import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fer.data.dataset import save_dataset
from fer.train.executor import Executor, connect, run_tasks
from fer.train.grid import cell_spec, run_cell
from fer.data.labels import EMOTIONS
from fer.core.params import compose


def _demo_sets(root: Path, size: int) -> None:
    """Random-pixel sets with the demo's counts: training time does not depend on pixels."""
    rng = np.random.default_rng(0)
    for name, n in (("KDEF_OL", 672), ("CK+", 144), ("JAFFE", 70)):
        m = pd.DataFrame({"path": [f"{name}{i}" for i in range(n)],
                          "label": [EMOTIONS[i % 7] for i in range(n)],
                          "subject": [f"s{i % 8}" for i in range(n)], "database": name,
                          "source": "", "source_subject": [f"{name}/s{i % 8}" for i in range(n)]})
        save_dataset(root / name, rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), m)


def _noop():
    return None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--cpus", type=int, default=2)
    args = p.parse_args()
    params = compose(["profile=demo", f"train.seeds={args.seeds}"])
    spec = cell_spec(params, "vgg16", "KDEF_OL")
    out = {"cell": spec.name, "seeds": args.seeds, "input_size": spec.model.input_size}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _demo_sets(tmp / "sets", spec.model.input_size)
        t = time.perf_counter()
        run_cell(spec, tmp / "sets", tmp / "local")
        out["local_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        import ray
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING",
                 log_to_driver=False)
        ray.shutdown()
        out["ray_init_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        connect()
        out["ray_connect_s"] = round(time.perf_counter() - t, 1)
        runner = Executor("ray", ray_cpus_per_seed=1, ray_gpus_per_seed=1)
        list(run_tasks(runner, _noop, (), [()] * 4))             # warm workers
        n, t = 50, time.perf_counter()
        list(run_tasks(runner, _noop, (), [()] * n))
        out["ray_task_overhead_s"] = round((time.perf_counter() - t) / n, 4)
        t = time.perf_counter()
        run_cell(spec, tmp / "sets", tmp / "ray", runner=runner)
        out["ray_s"] = round(time.perf_counter() - t, 1)
    out["ray_vs_local"] = round(out["local_s"] / out["ray_s"], 2)
    print(json.dumps(out))


def project(seconds_per_seed: float, gpus: int, trainings: int = 160) -> float:
    """Paper grid wall time (hours) on `gpus` GPUs, one seed per GPU: the 160 (cell, seed)
    trainings in ceil(160 / gpus) rounds (fer.train.fill_grid submits them all at once)."""
    return math.ceil(trainings / gpus) * seconds_per_seed / 3600


if __name__ == "__main__":
    main()
