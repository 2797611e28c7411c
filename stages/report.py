"""DVC stage report: reports/index.html, every table and figure of the pipeline on one
self-contained page (fer.evaluate.page), and reports/training_curves.csv, every cell's
per-epoch history for `dvc plots show`."""
import json
from pathlib import Path

from fer.core.atomic import write_text
from fer.evaluate.page import build, training_curves_csv
from fer.core.params import load_params


def main() -> None:
    params = load_params()
    page = build(params)
    write_text("reports/index.html", page)
    grid = params["grid"]
    cells = [json.loads(Path(f"metrics/finetune/{m}-{t}.json").read_text())
             for t in grid["train_sets"] for m in grid["models"]]
    write_text("reports/training_curves.csv", training_curves_csv(cells))
    print(f"reports/index.html: {len(page) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
