"""One cell of the cross-database grid: a backbone x a train set, over its seeds.

Every seed is trained, scored on its validation subjects and on every test set, and stored
in a resume cache keyed by content (datasets, parameters, weights file, code). The cell's
model is the seed with the best validation accuracy (`train.select_on: val`); the paper's
test-selected protocol (`select_on: CK+`) is labelled "test-selected" in every output, as is
the best test accuracy over seeds (`max_test_selected`).
"""
from __future__ import annotations

import sys
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.core import schema
from fer.data import dataset, labels, splits
from fer.evaluate import metrics as evaluate
from fer.train import activations, executor, finetune, keras_io
from fer.train import backbones as models
from fer.core.atomic import write_json, write_text
from fer.core.keys import content_key, versions
from fer.data.dataset import Dataset, load_dataset, stratified_subset
from fer.evaluate.metrics import HEADLINE, classification_metrics, summarize
from fer.train.finetune import predict, train_two_step, validation_split
from fer.data.labels import EMOTIONS
from fer.train.backbones import ModelSpec
from fer.core.schema import BACKBONES, NAMED_WEIGHTS, Network, Train, TrainOverrides

VAL = "val"
RESUME = Path(".cache/finetune")      # a cell's seeds and MLflow run: RESUME/<cell>
# what computes a seed's record and writes its model (+ this module)
CODE = (activations, dataset, evaluate, finetune, keras_io, labels, models, schema, splits)


@dataclass(frozen=True)
class CellSpec:
    """A grid cell: a backbone trained on a train set, tested on every test set."""
    model: ModelSpec
    train: Train               # with the backbone's own models.<m>.train keys
    train_set: str
    test_sets: tuple

    @property
    def name(self) -> str:
        return f"{self.model.name}-{self.train_set}"

    @property
    def seeds(self) -> tuple:
        return tuple(range(self.train.seed, self.train.seed + self.train.seeds))

    @property
    def select_on(self) -> str:
        return self.train.select_on


def model_entry(params: dict, name: str) -> dict:
    m = params["models"].get(name)        # reads models.<name> only, as dvc.yaml declares
    if m is None:
        raise ValueError(f"unknown backbone {name!r}; params.yaml models has "
                         f"{sorted(params['models'])}")
    return m


def model_spec(params: dict, name: str, k: int | None = None) -> ModelSpec:
    """The backbone `name` as params.yaml configures it (k overridable)."""
    m = model_entry(params, name)
    network = {f: m[f] for f in Network.model_fields if f in m}    # not its train keys
    return ModelSpec.model_validate({**network, "name": name, "input_size": params["crop"]["size"],
                                     "k": m["k"] if k is None else k, "weights": str(m["weights"])})


def train_spec(params: dict, model: str, val_fraction: float | None = None) -> Train:
    """params.yaml's train section, validated, with backbone `model`'s own keys
    (models.<m>.train, validated there; `epochs_step1: 0` trains in one step) and
    `val_fraction` if given."""
    own = model_entry(params, model).get("train") or {}
    # the keys the backbone sets, null included (`max_images: null`: every image)
    update = TrainOverrides.model_validate(own).model_dump(exclude_unset=True)
    if val_fraction is not None:
        update["val_fraction"] = val_fraction
    return Train.model_validate(params["train"]).model_copy(update=update)


def cell_spec(params: dict, model: str, train_set: str) -> CellSpec:
    train = train_spec(params, model=model)
    tests = tuple(params["grid"]["test_sets"])
    if train.select_on != VAL and train.select_on not in tests:
        raise ValueError(f"train.select_on={train.select_on!r} must be 'val' (validation "
                         f"subjects, the default) or one of the test sets {list(tests)} (the "
                         "paper's test-selected protocol)")
    return CellSpec(model=model_spec(params, model), train=train, train_set=train_set,
                    test_sets=tests)


def check_cell(spec: CellSpec, train: Dataset, tests: dict) -> None:
    """Every error that can be known before training, raised before any training."""
    layers = BACKBONES[spec.model.name].layers   # counted from Keras (tests/test_models.py)
    if spec.model.k > layers:
        raise ValueError(f"model {spec.model.name}: k = {spec.model.k} exceeds its "
                         f"{layers} layers")
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


def set_paths(spec: CellSpec, datasets) -> dict:
    """{set name: directory} of the cell's sets; `datasets`: that mapping or their parent."""
    return {name: Path(datasets[name]) if isinstance(datasets, dict) else Path(datasets) / name
            for name in (spec.train_set, *spec.test_sets)}


def fingerprint(spec: CellSpec, datasets) -> str:
    """Content key of a cell's resume cache: parameters, dataset bytes, weights, code."""
    files = [Path(p) / f for p in set_paths(spec, datasets).values()
             for f in ("images.npy", "manifest.csv")]
    weights = [] if spec.model.weights in NAMED_WEIGHTS else [Path(spec.model.weights)]
    return content_key(spec.model, spec.train, spec.train_set, spec.test_sets, *files,
                       *weights, *CODE, sys.modules[__name__], versions(), length=20)


def prepare_cache(spec: CellSpec, datasets, cache_dir) -> str:
    """Empty the cell's resume directory unless it was written for exactly this content;
    returns the content key (`fingerprint`). Call before anything is stored in it."""
    cache_dir = Path(cache_dir)
    fp = fingerprint(spec, datasets)
    key = cache_dir / "fingerprint"
    if cache_dir.exists() and not (key.is_file() and key.read_text() == fp):
        shutil.rmtree(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_text(key, fp)
    return fp


def score(result: dict, select_on: str) -> float:
    """The number a seed is selected on: validation accuracy, or a test set's."""
    return (result["val"] if select_on == VAL else result["tests"][select_on])["accuracy"]


def selection_key(select_on: str) -> str:
    """Name of the selected seed's numbers: says whether test data chose it."""
    return "val_selected" if select_on == VAL else "test_selected"


def selected(results: list, select_on: str) -> dict:
    return max(results, key=lambda r: (score(r, select_on), -r["seed"]))


def selected_record(cell: dict) -> dict:
    """The selected seed's record in a cell record."""
    return next(r for r in cell["per_seed"] if r["seed"] == cell["selected_seed"])


def train_seed(spec: CellSpec, full: Dataset, tests: dict, seed: int):
    """One seed of a cell: train on at most `max_images` of `full` (the same for every
    seed), score validation subjects and test sets. Returns (seed record, the shared
    classifier of `train_two_step(reuse=True)`: save it before the next seed trains)."""
    data = stratified_subset(full, spec.train.max_images, spec.seeds[0])
    model, history, seconds = train_two_step(spec.model, spec.train, data, seed, reuse=True)
    _, va = validation_split(data, spec.train, seed)
    result = {"seed": seed, "train_images": len(data) - len(va),
              # paper Table 2's row of the trained base (aggregate reads it, without Keras)
              "architecture": models.table2_row(spec.model, model.get_layer(spec.model.name)),
              "val_images": len(va),
              "val_subjects": int(data.manifest["source_subject"].iloc[va].nunique()),
              "history": history, "epoch_seconds": seconds, "tests": {},
              "val": (classification_metrics(data.labels[va], predict(
                  model, data, rows=va)) if len(va) else None)}
    for name, ds in tests.items():
        result["tests"][name] = classification_metrics(ds.labels, predict(model, ds))
    return result, model


def holdout_accuracy(train: Train, data: Dataset, spec: ModelSpec, fit_idx, held_idx,
                     seed: int) -> float:
    """Accuracy on rows `held_idx` of `data` of a model fine-tuned on rows `fit_idx` (a k of
    the k search, a cross-validation fold), all sharing `data`'s activation cache."""
    fit_idx, held_idx = np.sort(fit_idx), np.sort(held_idx)
    model, _, _ = train_two_step(spec, train, data, seed, reuse=True, rows=fit_idx)
    return classification_metrics(data.labels[held_idx], predict(
        model, data, rows=held_idx))["accuracy"]


def portable_seed(outcome):
    """(record, model) -> (record, .keras bytes): a Ray worker's return value."""
    result, model = outcome
    return result, keras_io.keras_bytes(model)


def record_seed(spec: CellSpec, cache_dir: Path, result: dict, model, recorded: list) -> None:
    """Store a trained seed in the resume cache: its model first if it is the selected one
    so far, then its record."""
    if selected(recorded + [result], spec.select_on)["seed"] == result["seed"]:
        # bytes: a Ray worker's .keras file (`portable_seed`)
        write_text(cache_dir / f"model_seed{result['seed']}.keras",
                   model if isinstance(model, bytes) else keras_io.keras_bytes(model))
    write_json(cache_dir / f"seed_{result['seed']}.json", result)


def run_cell(spec: CellSpec, datasets, cache_dir, on_seed=None, prepared: bool = False,
             runner: executor.Executor = executor.Executor()) -> dict:
    """Train and test every seed (resuming from `cache_dir`); returns the cell record, whose
    `selected_model` is `<cache_dir>/model_seed<seed>.keras`. `prepared`: the caller ran
    `prepare_cache`; `runner`: where the seeds train; `on_seed(record)` is called for every
    seed, trained or cached, in seed order."""
    paths = set_paths(spec, datasets)
    full = load_dataset(paths[spec.train_set])
    tests = {t: load_dataset(paths[t]) for t in spec.test_sets}
    check_cell(spec, full, tests)
    cache_dir = Path(cache_dir)
    if not prepared:
        prepare_cache(spec, paths, cache_dir)
    todo = [s for s in spec.seeds if not (cache_dir / f"seed_{s}.json").is_file()]
    trained = executor.run_tasks(runner, train_seed, (spec, full, tests),
                                 [(s,) for s in todo], portable_seed)
    results = []
    try:
        for seed in spec.seeds:
            if seed not in todo:
                result = json.loads((cache_dir / f"seed_{seed}.json").read_text())
                result["resumed"] = True
            else:
                result, model = next(trained)
                record_seed(spec, cache_dir, result, model, results)
                result["resumed"] = False
            results.append(result)
            if on_seed:
                on_seed(result)
    finally:
        trained.close()                   # under Ray: cancels what is still running
    best = selected(results, spec.select_on)
    key = selection_key(spec.select_on)
    for stale in cache_dir.glob("model_seed*.keras"):
        if stale.name != f"model_seed{best['seed']}.keras":
            stale.unlink()

    def over_seeds(t, m):
        s = summarize([r["tests"][t][m] for r in results])
        return {"mean": s["mean"], "std": s["std"], "n": s["n"], key: best["tests"][t][m],
                "max_test_selected": s["max"]}
    summary = {t: {m: over_seeds(t, m) for m in HEADLINE} for t in spec.test_sets}
    val_summary = ({m: summarize([r["val"][m] for r in results]) for m in HEADLINE}
                   if all(r["val"] for r in results) else None)
    step_seconds = {s: float(np.mean([np.mean(r["epoch_seconds"][s]) for r in results]))
                    if all(r["epoch_seconds"][s] for r in results) else None   # no such step
                    for s in ("step1", "step2")}
    return {"cell": spec.name, "model": spec.model.name, "train_set": spec.train_set,
            "seeds": list(spec.seeds),
            "selection": {"on": spec.select_on, "test_selected": spec.select_on != VAL,
                          "key": key, "seed": best["seed"],
                          # DCGAN rows come from every subject: val accuracy is optimistic
                          "train_only_images": int((full.manifest["source_subject"]
                                                    == "").sum())},
            "selected_seed": best["seed"], "architecture": results[0]["architecture"],
            "summary": summary, "val_summary": val_summary,
            "epoch_seconds": step_seconds, "train_images": results[0]["train_images"],
            "per_seed": [{k: v for k, v in r.items() if k != "resumed"} for r in results],
            "selected_model": str(cache_dir / f"model_seed{best['seed']}.keras")}


def selected_meta(spec: CellSpec, cell: dict, crop: dict) -> dict:
    """meta.json beside a cell's kept model: the selected seed and how, what the model takes,
    the crop settings the browser repeats, and its scores."""
    best = selected_record(cell)
    return {"model": spec.model.name, "train_set": spec.train_set,
            "seed": cell["selected_seed"], "selected_on": spec.select_on,
            "test_selected": cell["selection"]["test_selected"],
            "input_size": spec.model.input_size, "preprocess": spec.model.preprocess,
            "base_input": list(spec.model.base_shape),   # grey/resized inside the model
            "labels": list(EMOTIONS), "k": spec.model.k, "weights": spec.model.weights,
            "crop": {k: crop[k] for k in ("margin", "square", "confidence", "frame_tolerance")},
            "val_accuracy": best["val"]["accuracy"] if best["val"] else None,
            "tests": {t: m["accuracy"] for t, m in best["tests"].items()}}
