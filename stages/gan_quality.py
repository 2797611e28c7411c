"""DVC stage gan_quality: paper Table 8, models trained on KDEF_OL (no synthetic faces)
classifying each emotion's DCGAN images; and the label fidelity of those images
(GAN-test, GAN-train: fer.gan.fidelity) with the `models` entry gan_quality.classifier."""

import keras
import numpy as np

from fer.core.atomic import atomic_file, write_json
from fer.data.dataset import concat_datasets, load_dataset
from fer.gan.fidelity import label_fidelity
from fer.train.backbones import build_classifier
from fer.train.finetune import predict
from fer.train.grid import model_spec
from fer.data.labels import EMOTIONS
from fer.data.layout import CROP_DIR, set_dir
from fer.core.params import load_params


def pct(v) -> str:
    return "—" if v is None else f"{v * 100:.0f}"


def fidelity(params: dict, gan) -> tuple[dict, str]:
    q, g = params["gan_quality"], params["gan"]
    real = concat_datasets([load_dataset(CROP_DIR / s)
                            for s in dict.fromkeys([g["source"], g["extra_source"]])])
    spec = model_spec(params, q["classifier"])
    f = label_fidelity(lambda seed: build_classifier(spec, seed)[0], real, gan,
                       q["holdout"], q["epochs"], q["lr"], q["seed"])
    rows = [f"| {e} | {pct(f['gan_test'].get(e))} | {pct(f['gan_train'].get(e))} | "
            f"{pct(f['real_train'].get(e))} |" for e in EMOTIONS]
    return f, (
        f"\nLabel fidelity (after Shmelkov et al. 2018): `{q['classifier']}` trained "
        f"{q['epochs']} epochs on the real faces the GANs learnt from "
        f"({' + '.join(dict.fromkeys([g['source'], g['extra_source']]))}), "
        f"{len(f['held_out_subjects'])} of their subjects ({f['held_out_images']} images) "
        "held out. GAN-test: the share of each emotion's generated images that the "
        "classifier trained on the other subjects gives that emotion. GAN-train: a "
        "classifier trained on the generated images alone, its recall on the held-out "
        "subjects; beside it the real-trained classifier's. The GANs saw the held-out "
        "subjects too, so GAN-train does not measure generalisation to new people.\n\n"
        "| Emotion | GAN-test (%) | GAN-train (%) | trained on real (%) |\n|---|---|---|---|\n"
        + "\n".join(rows) + f"\n| **mean / accuracy** | **{pct(f['gan_test_mean'])}** | "
        f"**{pct(f['gan_train_accuracy'])}** | **{pct(f['real_train_accuracy'])}** |\n")


def main() -> None:
    params = load_params()
    q = params["gan_quality"]
    if not (q["models"] or q["classifier"]) or not q["gan_set"]:
        with atomic_file("reports/gan/table8.md") as f:
            f.write("No GAN quality test configured (gan_quality.models, classifier / "
                    "gan_set empty).\n")
        write_json("metrics/gan_quality.json", {})
        write_json("metrics/headline/gan_quality.json", {})
        return
    merged = load_dataset(set_dir(q["gan_set"]))
    keep = np.flatnonzero(merged.manifest["part"].to_numpy() == params["gan"]["part"])
    gan = merged.subset(keep)
    results, text = {}, ""
    for name in q["models"]:
        folder = f"build/models/{name}/{q['train_set']}"
        model = keras.models.load_model(f"{folder}/model.keras")
        pred = predict(model, gan).argmax(1)
        y = gan.labels
        results[name] = {e: float((pred[y == i] == i).mean()) for i, e in enumerate(EMOTIONS)
                         if (y == i).any()}
    if results:
        head = "| Emotion | " + " | ".join(f"{m} (%)" for m in results) + " |"
        rows = [f"| {e} | " + " | ".join(pct(results[m].get(e)) for m in results) + " |"
                for e in EMOTIONS]
        text = (f"Each model's selected seed (`train.select_on`: "
                f"{params['train']['select_on']}) trained on {q['train_set']}, classifying "
                "the generated images\n\n"
                + "\n".join([head, "|---" * (len(results) + 1) + "|", *rows]) + "\n")
    if q["classifier"]:
        results["label_fidelity"], table = fidelity(params, gan)
        text += table
    with atomic_file("reports/gan/table8.md") as f:
        f.write(text)
    write_json("metrics/gan_quality.json", results)
    # for `dvc exp show`: each model's accuracy on the GAN images averaged over emotions,
    # and the label fidelity's two summary numbers
    headline = {m: round(float(np.mean(list(r.values()))), 4) for m, r in results.items()
                if m != "label_fidelity"}
    if q["classifier"]:
        headline["label_fidelity"] = {
            k: round(results["label_fidelity"][k], 4)
            for k in ("gan_test_mean", "gan_train_accuracy")}
    write_json("metrics/headline/gan_quality.json", headline)
    print(text)


if __name__ == "__main__":
    main()
