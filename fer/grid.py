"""One cell of the cross-database grid: a backbone x a train set, over its seeds.

Every seed is trained (fer.finetune), tested on every test set, and its result stored
in a resume cache; a cell killed midway restarts after its last finished seed. The best
seed (highest accuracy on `train.select_on`) is kept as the cell's model.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .dataset import Dataset, load_dataset
from .evaluate import classification_metrics, summarize
from .finetune import TrainSpec, predict, train_two_step
from .labels import EMOTIONS
from .models import ModelSpec, build_base


@dataclass(frozen=True)
class CellSpec:
    model: ModelSpec
    train: TrainSpec
    train_set: str
    test_sets: tuple
    seeds: tuple
    max_images: int | None
    select_on: str

    @property
    def name(self) -> str:
        return f"{self.model.name}-{self.train_set}"


def model_spec(params: dict, name: str, k: int | None = None,
               weights: str | None = None) -> ModelSpec:
    """The backbone `name` as params.yaml configures it (k and weights overridable)."""
    if name not in params["models"]:
        raise ValueError(f"unknown backbone {name!r}; params.yaml models has "
                         f"{sorted(params['models'])}")
    m = params["models"][name]
    return ModelSpec(name, m["k"] if k is None else k, m["preprocess"],
                     str(m["weights"] if weights is None else weights),
                     params["crop"]["size"])


def train_spec(params: dict, val_fraction: float | None = None) -> TrainSpec:
    t = params["train"]
    return TrainSpec(t["epochs_step1"], t["epochs_step2"], t["lr_step1"], t["lr_step2"],
                     t["batch_size"], t["val_fraction"] if val_fraction is None else val_fraction)


def cell_spec(params: dict, model: str, train_set: str) -> CellSpec:
    t = params["train"]
    tests = tuple(params["grid"]["test_sets"])
    if t["select_on"] not in tests:
        raise ValueError(f"train.select_on={t['select_on']!r} is not one of the test sets "
                         f"{list(tests)}")
    return CellSpec(
        model=model_spec(params, model), train=train_spec(params), train_set=train_set, test_sets=tests,
        seeds=tuple(range(t["seed"], t["seed"] + t["seeds"])),
        max_images=t["max_images"], select_on=t["select_on"])


def stratified_subset(data: Dataset, max_images: int | None, seed: int) -> Dataset:
    """At most `max_images` images, the same number per class (seeded), order kept."""
    if not max_images or len(data) <= max_images:
        return data
    per_class = max_images // len(EMOTIONS)
    rng = np.random.default_rng([seed, 7])
    keep = []
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero(data.labels == c)
        keep.extend(rng.choice(idx, min(per_class, len(idx)), replace=False))
    keep = np.sort(np.array(keep))
    return data.subset(keep)


def check_cell(spec: CellSpec, train: Dataset, tests: dict) -> None:
    """Every error that can be known before training, raised before any training."""
    base = build_base(ModelSpec(spec.model.name, 0, spec.model.preprocess, "none",
                                spec.model.input_size))
    if spec.model.k > len(base.layers):
        raise ValueError(f"model {spec.model.name}: k = {spec.model.k} exceeds its "
                         f"{len(base.layers)} layers")
    if len(train) == 0:
        raise ValueError(f"train set {spec.train_set} is empty")
    absent = [e for i, e in enumerate(EMOTIONS) if not (train.labels == i).any()]
    if absent:
        raise ValueError(f"train set {spec.train_set}: no images of class(es) "
                         f"{', '.join(absent)}")
    for name, ds in tests.items():
        unknown = sorted(set(ds.manifest["label"]) - set(EMOTIONS))
        if unknown:
            raise ValueError(f"test set {name}: label names {unknown} are not the seven "
                             f"emotions {list(EMOTIONS)}")
        if ds.images.shape[1:] != train.images.shape[1:]:
            raise ValueError(f"test set {name}: images {ds.images.shape[1:]} but train set "
                             f"{train.images.shape[1:]}")


def _fingerprint(spec: CellSpec, root: Path) -> str:
    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True, default=str).encode())
    for name in (spec.train_set, *spec.test_sets):
        d = root / name
        h.update((d / "manifest.csv").read_bytes())
        h.update(str((d / "images.npy").stat().st_size).encode())
    return h.hexdigest()[:16]


def run_cell(spec: CellSpec, datasets_dir, cache_dir, on_seed=None) -> dict:
    """Train and test every seed (resuming from `cache_dir`); returns the cell record.

    `on_seed(seed_result)` is called for every seed, trained now or found in the cache.
    """
    datasets_dir, cache_dir = Path(datasets_dir), Path(cache_dir)
    full = load_dataset(datasets_dir / spec.train_set)
    tests = {t: load_dataset(datasets_dir / t) for t in spec.test_sets}
    check_cell(spec, full, tests)
    fp = _fingerprint(spec, datasets_dir)
    if (cache_dir / "fingerprint").is_file() and \
            (cache_dir / "fingerprint").read_text() != fp:
        shutil.rmtree(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "fingerprint").write_text(fp)
    results = []
    for seed in spec.seeds:
        done = cache_dir / f"seed_{seed}.json"
        if done.is_file():
            result = json.loads(done.read_text())
            result["resumed"] = True
        else:
            data = stratified_subset(full, spec.max_images, seed)
            model, history, seconds = train_two_step(spec.model, spec.train, data, seed)
            result = {"seed": seed, "train_images": len(data), "history": history,
                      "epoch_seconds": seconds, "tests": {}}
            for name, ds in tests.items():
                result["tests"][name] = classification_metrics(
                    ds.labels, predict(model, ds, spec.model.preprocess))
            best = _best(results + [result], spec.select_on)
            if best["seed"] == seed:
                model.save(cache_dir / "best.keras")
            done.write_text(json.dumps(result))
            result["resumed"] = False
        results.append(result)
        if on_seed:
            on_seed(result)
    best = _best(results, spec.select_on)
    summary = {t: {m: summarize([r["tests"][t][m] for r in results])
                   for m in ("accuracy", "balanced_accuracy", "macro_f1")}
               for t in spec.test_sets}
    step_seconds = {s: float(np.mean([np.mean(r["epoch_seconds"][s]) for r in results]))
                    for s in ("step1", "step2")}
    return {"cell": spec.name, "model": spec.model.name, "train_set": spec.train_set,
            "seeds": list(spec.seeds), "best_seed": best["seed"], "summary": summary,
            "epoch_seconds": step_seconds, "train_images": results[0]["train_images"],
            "per_seed": results, "best_model": str(cache_dir / "best.keras")}


def _best(results: list, select_on: str) -> dict:
    return max(results, key=lambda r: (r["tests"][select_on]["accuracy"], -r["seed"]))
