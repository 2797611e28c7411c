"""DVC stage gan_quality: models trained on KDEF_OL (no synthetic faces) classify each
emotion's DCGAN images; per-emotion accuracy = paper Table 8."""

import keras
import numpy as np

from fer.core.atomic import atomic_file, write_json
from fer.data.dataset import load_dataset
from fer.train.finetune import predict
from fer.data.labels import EMOTIONS
from fer.data.layout import set_dir
from fer.core.params import load_params


def main() -> None:
    params = load_params()
    q = params["gan_quality"]
    if not q["models"] or not q["gan_set"]:
        with atomic_file("reports/gan/table8.md") as f:
            f.write("No GAN quality test configured (gan_quality.models / gan_set empty).\n")
        write_json("metrics/gan_quality.json", {})
        write_json("metrics/headline/gan_quality.json", {})
        return
    merged = load_dataset(set_dir(q["gan_set"]))
    keep = np.flatnonzero(merged.manifest["part"].to_numpy() == params["gan"]["part"])
    gan = merged.subset(keep)
    results = {}
    for name in q["models"]:
        folder = f"build/models/{name}/{q['train_set']}"
        model = keras.models.load_model(f"{folder}/model.keras")
        pred = predict(model, gan).argmax(1)
        y = gan.labels
        results[name] = {e: float((pred[y == i] == i).mean()) for i, e in enumerate(EMOTIONS)
                         if (y == i).any()}
    head = "| Emotion | " + " | ".join(f"{m} (%)" for m in results) + " |"
    rows = [f"| {e} | " + " | ".join(f"{results[m][e] * 100:.0f}" if e in results[m] else "—"
                                     for m in results) + " |" for e in EMOTIONS]
    with atomic_file("reports/gan/table8.md") as f:
        f.write(f"Each model's selected seed (`train.select_on`: {params['train']['select_on']}) "
                f"trained on {q['train_set']}, classifying the generated images\n\n"
                + "\n".join([head, "|---" * (len(results) + 1) + "|", *rows]) + "\n")
    write_json("metrics/gan_quality.json", results)
    # for `dvc exp show`: each model's accuracy on the GAN images, averaged over emotions
    write_json("metrics/headline/gan_quality.json",
               {m: round(float(np.mean(list(r.values()))), 4) for m, r in results.items()})
    print("\n".join([head, *rows]))


if __name__ == "__main__":
    main()
