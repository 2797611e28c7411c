"""DVC stage gan@<emotion>: train that emotion's DCGAN on the cropped faces of gan.source
(KDEF) and gan.extra_source (actor photos), choose the checkpoint with the lowest KID,
generate the images of the part gan.part (KDEF_GAN_Q)."""
import shutil
import sys
from pathlib import Path

import numpy as np

from fer.core.atomic import atomic_dir, write_json, write_text
from fer.data.dataset import load_dataset, save_dataset
from fer.gan.dcgan import generate, generated_manifest
from fer.gan.train import fingerprint, image_grid, resize_all, save_png, train_emotion_gan
from fer.train.keras_io import save_model
from fer.gan.kid import FeatureExtractor
from fer.data.layout import CROP_DIR, DERIVED_DIR
from fer.core.params import load_params
from fer.core.schema import Gan
from fer.core.tracking import log_datasets, metric_logger, mlflow_run


def training_images(emotion: str, sources: list[str]) -> np.ndarray:
    """That emotion's cropped faces from each source database (KDEF and the actors)."""
    return np.concatenate([np.asarray(ds.images[ds.manifest["label"].to_numpy() == emotion])
                           for ds in (load_dataset(CROP_DIR / s) for s in sources)])


def main(emotion: str) -> None:
    params = load_params()
    g = Gan.model_validate(params["gan"])
    size = params["crop"]["size"]
    sources = list(dict.fromkeys([g.source, g.extra_source]))
    real = training_images(emotion, sources)
    extractor = FeatureExtractor(g.kid_features, g.kid_weights)
    # the training state and the MLflow run that logs it resume together, under one key
    state_dir = Path(f".cache/gan/{emotion}")
    key_extra = {"crop_size": size}
    key = fingerprint(emotion, real, g, extractor.identity, key_extra)
    with mlflow_run("dcgan", f"dcgan-{emotion}", params={
            "gan": g.model_dump(), "emotion": emotion, "train_images": len(real),
            **extractor.identity},
            resume_file=state_dir / "mlflow_run.json", resume_key=key) as run:
        import mlflow
        log = metric_logger(run.info.run_id)
        log_datasets(training=[CROP_DIR / s for s in sources])
        record = train_emotion_gan(emotion, real, g, extractor, state_dir, log=log.rows,
                                   key_extra=key_extra)
        images = resize_all(generate(record["generator"], g.n_generate, g.seed + 1000), size)
        save_dataset(DERIVED_DIR / g.part / emotion, images,
                     generated_manifest(emotion, len(images), g.part, g.source),
                     name=f"{g.part}/{emotion}")
        with atomic_dir(f"build/gan/models/{emotion}") as tmp:
            shutil.copytree(record["checkpoint_dir"], tmp / "checkpoints")
            save_model(record["generator"], tmp / "generator.keras")
        save_png(Path(record["samples_dir"]) / "generated_sheet.png", image_grid(images[:64], 8))
        samples_dir = Path(f"reports/gan/{emotion}")
        with atomic_dir(samples_dir) as tmp:
            shutil.copytree(record["samples_dir"], tmp, dirs_exist_ok=True)
        write_text(f"reports/gan/{emotion}_kid.csv", "epoch,kid\n" + "".join(
            f"{e},{v:.6f}\n" for e, v in record["kid"].items()))
        write_text(f"reports/gan/{emotion}_losses.csv", "epoch,d_loss,g_loss\n" + "".join(
            f"{h['epoch']},{h['d_loss']:.6f},{h['g_loss']:.6f}\n" for h in record["history"]))
        summary = {"emotion": emotion, "train_images": int(len(real)),
                   "chosen_epoch": record["chosen_epoch"],
                   "chosen_kid": record["kid"][str(record["chosen_epoch"])],
                   **extractor.identity, "kid": record["kid"], "generated": int(len(images)),
                   **{f"final_{k}": record["history"][-1][k] for k in ("d_loss", "g_loss")}}
        write_json(f"metrics/gan/{emotion}.json", summary)
        log({"chosen_epoch": record["chosen_epoch"]})
        mlflow.log_artifacts(str(samples_dir), "samples")
        mlflow.log_artifact(f"reports/gan/{emotion}_kid.csv")
    shutil.rmtree(state_dir, ignore_errors=True)
    print(f"GAN {emotion}: {len(real)} training images, chosen epoch {record['chosen_epoch']} "
          f"(KID {summary['chosen_kid']:.4f}, {extractor.name} features), "
          f"{len(images)} images -> {DERIVED_DIR / g.part / emotion}")


if __name__ == "__main__":
    main(sys.argv[1])
