"""DVC stage export@<model>: a chosen cell's best model (`export.models`: backbone -> train
set) -> TF.js graph models in four weight precisions (paper 6.2) under build/tfjs/<model>/,
beside a copy of the Keras model (edge_eval's reference, so it depends on these only)."""
import json
import shutil
import sys
from pathlib import Path

from fer.core.atomic import atomic_file, write_json
from fer.edge.tfjs import export_variants
from fer.core.mlmodel import CHAMPION, register_champion
from fer.core.params import load_params
from fer.data.layout import set_dir


def main(model: str) -> None:
    e = load_params()["export"]
    train_set = e["models"][model]
    src = Path(f"build/models/{model}/{train_set}")
    keras_file = src / "model.keras"
    meta = json.loads((src / "meta.json").read_text())
    sizes = {"keras": keras_file.stat().st_size,
             **export_variants(keras_file, f"build/tfjs/{model}", e["variants"], meta)}
    with atomic_file(f"build/tfjs/{model}/model.keras", "wb") as f, keras_file.open("rb") as k:
        shutil.copyfileobj(k, f)
    for variant in e["variants"]:
        print(f"export {model} {train_set} {variant}: {sizes[variant] / 1e6:.3f} MB")
    write_json(f"metrics/export/{model}.json", {
        "model": model, "train_set": train_set,
        "size_mb": {k: round(v / 1e6, 3) for k, v in sizes.items()}})
    # the shipped models in MLflow's registry: the first entry (the web demo's default) is
    # `champion`, every exported one also answers to its backbone's name
    register_champion(keras_file, set_dir(train_set),
                      aliases=[CHAMPION, model] if model == next(iter(e["models"])) else [model])


if __name__ == "__main__":
    main(sys.argv[1])
