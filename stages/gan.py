"""DVC stage gan@<emotion>: train that emotion's DCGAN on cropped KDEF faces (+ actor
photos), choose the checkpoint with the lowest KID, generate KDEF_GAN_Q images."""
import shutil
import sys
from pathlib import Path

import numpy as np

from fer.atomic import atomic_dir, atomic_file, write_json
from fer.dataset import load_dataset
from fer.gan import GanSpec, generate
from fer.gan_train import GanTrainSpec, image_grid, resize_all, save_png, train_emotion_gan
from fer.keras_io import save_model
from fer.kid import FeatureExtractor
from fer.params import load_params
from fer.tracking import mlflow_run


def training_images(emotion: str, use_actors: bool) -> np.ndarray:
    kdef = load_dataset("build/crop/kdef")
    parts = [np.asarray(kdef.images[kdef.manifest["label"].to_numpy() == emotion])]
    if use_actors and Path("build/crop/actors").is_dir():
        actors = load_dataset("build/crop/actors")
        parts.append(np.asarray(actors.images[actors.manifest["label"].to_numpy() == emotion]))
    return np.concatenate(parts)


def main(emotion: str) -> None:
    params = load_params()
    g = params["gan"]
    spec = GanSpec(image_size=g["image_size"], blocks=g["blocks"], latent_dim=g["latent_dim"],
                   variant=g["variant"])
    train = GanTrainSpec(epochs=g["epochs"], batch_size=g["batch_size"], lr=g["lr"],
                         beta_1=g["beta_1"], sample_every=g["sample_every"],
                         keep_from=g["keep_from"], keep_every=g["keep_every"],
                         kid_images=g["kid_images"], seed=g["seed"])
    real = training_images(emotion, g["use_actors"])
    extractor = FeatureExtractor(g["kid_features"])
    with mlflow_run("dcgan", f"dcgan-{emotion}", params={"gan": g, "emotion": emotion,
                    "train_images": len(real), "kid_features": extractor.name}):
        import mlflow

        def log(epoch, metrics):
            mlflow.log_metrics(metrics, step=epoch)

        record = train_emotion_gan(emotion, real, spec, train, extractor,
                                   f".cache/gan/{emotion}", log=log)
        size = params["crop"]["size"]
        images = resize_all(generate(record["generator"], g["n_generate"], g["seed"] + 1000),
                            size)
        with atomic_dir(f"build/gan/generated/{emotion}") as tmp:
            for i, im in enumerate(images):
                save_png(tmp / f"{emotion}_{i:04d}.png", im)
        with atomic_dir(f"build/gan/models/{emotion}") as tmp:
            shutil.copytree(record["checkpoint_dir"], tmp / "checkpoints")
            save_model(record["generator"], tmp / "generator.keras")
        save_png(Path(record["samples_dir"]) / "generated_sheet.png", image_grid(images[:64], 8))
        samples_dir = Path(f"reports/gan/{emotion}")
        with atomic_dir(samples_dir) as tmp:
            shutil.copytree(record["samples_dir"], tmp, dirs_exist_ok=True)
        with atomic_file(f"reports/gan/{emotion}_kid.csv") as f:
            f.write("epoch,kid\n" + "".join(f"{e},{v:.6f}\n" for e, v in record["kid"].items()))
        with atomic_file(f"reports/gan/{emotion}_losses.csv") as f:
            f.write("epoch,d_loss,g_loss\n" + "".join(
                f"{h['epoch']},{h['d_loss']:.6f},{h['g_loss']:.6f}\n" for h in record["history"]))
        summary = {"emotion": emotion, "train_images": int(len(real)),
                   "chosen_epoch": record["chosen_epoch"],
                   "chosen_kid": record["kid"][str(record["chosen_epoch"])],
                   "kid_features": extractor.name, "kid": record["kid"],
                   "generated": int(len(images)),
                   "final_d_loss": record["history"][-1]["d_loss"],
                   "final_g_loss": record["history"][-1]["g_loss"]}
        write_json(f"metrics/gan/{emotion}.json", summary)
        mlflow.log_metric("chosen_epoch", record["chosen_epoch"])
        mlflow.log_artifacts(str(samples_dir), "samples")
        mlflow.log_artifact(f"reports/gan/{emotion}_kid.csv")
    shutil.rmtree(f".cache/gan/{emotion}", ignore_errors=True)
    print(f"GAN {emotion}: {len(real)} training images, chosen epoch {record['chosen_epoch']} "
          f"(KID {summary['chosen_kid']:.4f}, {extractor.name} features), "
          f"{len(images)} images -> build/gan/generated/{emotion}")


if __name__ == "__main__":
    main(sys.argv[1])
