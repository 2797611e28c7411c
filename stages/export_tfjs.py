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
    src = f"build/models/{model}/{train_set}"
    meta = json.loads(open(f"{src}/meta.json").read())
    sizes = {"keras": Path(f"{src}/model.keras").stat().st_size,
             **export_variants(f"{src}/model.keras", f"build/tfjs/{model}", e["variants"], meta)}
    with atomic_file(f"build/tfjs/{model}/model.keras", "wb") as f, \
            open(f"{src}/model.keras", "rb") as keras_file:
        shutil.copyfileobj(keras_file, f)
    for variant in e["variants"]:
        print(f"export {model} {train_set} {variant}: {sizes[variant] / 1e6:.3f} MB")
    write_json(f"metrics/export/{model}.json", {
        "model": model, "train_set": train_set,
        "size_mb": {k: round(v / 1e6, 3) for k, v in sizes.items()}})
    # the shipped models in MLflow's registry: the first entry (the web demo's default) is
    # `champion`, every exported one also answers to its backbone's name
    register_champion(f"{src}/model.keras", set_dir(train_set),
                      aliases=[CHAMPION, model] if model == next(iter(e["models"])) else [model])


if __name__ == "__main__":
    main(sys.argv[1])
