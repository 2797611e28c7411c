"""DVC stage gan_quality: paper Table 8, models trained on KDEF_OL (no synthetic faces)
classifying each emotion's DCGAN images; and the label fidelity of those images
(GAN-test, GAN-train: fer.gan.fidelity) with the `models` entry gan_quality.classifier."""

import keras
import numpy as np

from fer.core.atomic import write_json, write_text
from fer.core.params import load_params
from fer.data.dataset import concat_datasets, load_dataset
from fer.data.layout import CROP_DIR, set_dir
from fer.gan.fidelity import label_fidelity, recall_per_emotion
from fer.gan.table8 import fidelity_markdown, headline, models_markdown
from fer.train.backbones import build_classifier
from fer.train.finetune import predict
from fer.train.grid import model_spec


def main() -> None:
    params = load_params()
    q, g = params["gan_quality"], params["gan"]
    results, text = {}, ""
    if (q["models"] or q["classifier"]) and q["gan_set"]:
        merged = load_dataset(set_dir(q["gan_set"]))
        gan = merged.subset(np.flatnonzero(merged.manifest["part"].to_numpy() == g["part"]))
        for name in q["models"]:
            model = keras.models.load_model(f"build/models/{name}/{q['train_set']}/model.keras")
            results[name] = recall_per_emotion(predict(model, gan).argmax(1), gan.labels)
        if results:
            text = models_markdown(results, params["train"]["select_on"], q["train_set"])
        if q["classifier"]:
            sources = list(dict.fromkeys([g["source"], g["extra_source"]]))
            real = concat_datasets([load_dataset(CROP_DIR / s) for s in sources])
            spec = model_spec(params, q["classifier"])
            f = label_fidelity(lambda seed: build_classifier(spec, seed)[0], real, gan,
                               q["holdout"], q["epochs"], q["lr"], q["seed"],
                               resolution=g["image_size"])
            results["label_fidelity"] = f
            text += fidelity_markdown(f, q["classifier"], q["epochs"], sources)
    else:
        text = ("No GAN quality test configured (gan_quality.models, classifier / "
                "gan_set empty).\n")
    write_text("reports/gan/table8.md", text)
    write_json("metrics/gan_quality.json", results)
    write_json("metrics/headline/gan_quality.json", headline(results))   # dvc exp show
    print(text)


if __name__ == "__main__":
    main()
