"""Paper Table 8 (§5.3) as Markdown: trained models classifying each emotion's DCGAN
images, and those images' label fidelity (fer.gan.fidelity); its `dvc exp show` headline."""
from __future__ import annotations

import numpy as np

from fer.data.labels import EMOTIONS


def pct(v) -> str:
    return "—" if v is None else f"{v * 100:.0f}"


def models_markdown(results: dict, select_on: str, train_set: str) -> str:
    head = "| Emotion | " + " | ".join(f"{m} (%)" for m in results) + " |"
    rows = [f"| {e} | " + " | ".join(pct(results[m].get(e)) for m in results) + " |"
            for e in EMOTIONS]
    return (f"Each model's selected seed (`train.select_on`: {select_on}) trained on "
            f"{train_set}, classifying the generated images\n\n"
            + "\n".join([head, "|---" * (len(results) + 1) + "|", *rows]) + "\n")


def fidelity_markdown(f: dict, classifier: str, epochs: int, sources: list) -> str:
    rows = [f"| {e} | {pct(f['gan_test'].get(e))} | {pct(f['gan_train'].get(e))} | "
            f"{pct(f['real_train'].get(e))} |" for e in EMOTIONS]
    return (
        f"\nLabel fidelity (after Shmelkov et al. 2018): `{classifier}` trained "
        f"{epochs} epochs on the real faces the GANs learnt from ({' + '.join(sources)}), "
        f"{len(f['held_out_subjects'])} of their subjects ({f['held_out_images']} images) "
        "held out. GAN-test: the share of each emotion's generated images that the "
        "classifier trained on the other subjects gives that emotion. GAN-train: a "
        "classifier trained on the generated images alone, its recall on the held-out "
        "subjects; beside it the real-trained classifier's. The GANs saw the held-out "
        "subjects too, so GAN-train does not measure generalisation to new people.\n\n"
        "| Emotion | GAN-test (%) | GAN-train (%) | trained on real (%) |\n|---|---|---|---|\n"
        + "\n".join(rows) + f"\n| **mean / accuracy** | **{pct(f['gan_test_mean'])}** | "
        f"**{pct(f['gan_train_accuracy'])}** | **{pct(f['real_train_accuracy'])}** |\n")


def headline(results: dict) -> dict:
    """Each model's accuracy on the GAN images averaged over emotions, and the label
    fidelity's GAN-test mean and GAN-train accuracy."""
    out = {m: round(float(np.mean(list(r.values()))), 4) for m, r in results.items()
           if m != "label_fidelity"}
    if "label_fidelity" in results:
        out["label_fidelity"] = {k: round(results["label_fidelity"][k], 4)
                                 for k in ("gan_test_mean", "gan_train_accuracy")}
    return out
