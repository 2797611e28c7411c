"""DVC stage export: the chosen cell's best model -> TF.js graph models in four weight
precisions (paper 6.2), preprocessing metadata inside model.json. The SavedModel the
converter reads is rebuilt from model.keras in a temporary directory (fer.edge.tfjs)."""
import json
from pathlib import Path

from fer.core.atomic import write_json
from fer.edge.tfjs import export_variants
from fer.core.mlmodel import register_champion
from fer.core.params import load_params


def main() -> None:
    e = load_params()["export"]
    src = f"build/models/{e['model']}/{e['train_set']}"
    meta = json.loads(open(f"{src}/meta.json").read())
    sizes = {"keras": Path(f"{src}/model.keras").stat().st_size,
             **export_variants(f"{src}/model.keras", "build/tfjs", e["variants"], meta)}
    for variant in e["variants"]:
        print(f"export {e['model']} {e['train_set']} {variant}: {sizes[variant] / 1e6:.1f} MB")
    write_json("metrics/export.json", {"model": e["model"], "train_set": e["train_set"],
                                       "size_mb": {k: round(v / 1e6, 2) for k, v in sizes.items()}})
    register_champion(f"{src}/model.keras")     # the shipped model: MLflow alias `champion`


if __name__ == "__main__":
    main()
