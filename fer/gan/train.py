"""Train one emotion's DCGAN, score the kept checkpoints by KID against its real images
and choose the lowest. The training state is saved every `sample_every` epochs; a run
finding one with the same `fingerprint` resumes and ends as an uninterrupted run would.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from fer.core.atomic import atomic_dir, atomic_file
from fer.core.keys import content_key, versions
from fer.core.schema import Gan
from fer.gan.dcgan import generate, make_gan, state_variables
from fer.gan.kid import kid


def kept_epochs(params: Gan) -> set[int]:
    """Epochs whose generator is kept and scored: every keep_every from keep_from, the last."""
    return {*range(params.keep_from, params.epochs + 1, params.keep_every), params.epochs}


def image_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """The images side by side, `cols` a row, the last row padded with white."""
    n, s = len(images), images.shape[1]
    rows = -(-n // cols)
    padded = np.concatenate([images, np.full((rows * cols - n, s, s, 3), 255, np.uint8)])
    return padded.reshape(rows, cols, s, s, 3).swapaxes(1, 2).reshape(rows * s, cols * s, 3)


def save_png(path, image: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        Image.fromarray(image).save(f, "PNG")


def resize_all(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return np.asarray(images)
    interp = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_CUBIC
    return np.stack([cv2.resize(np.asarray(im), (size, size), interpolation=interp)
                     for im in images])


# the code that shapes the training state: a change to it invalidates a saved state
CODE_FILES = tuple(Path(__file__).parent / f for f in ("dcgan.py", "train.py", "kid.py"))


def fingerprint(emotion: str, real_uint8: np.ndarray, params: Gan, features: dict,
                extra: dict | None = None, code_files=CODE_FILES) -> str:
    """Key of the resume state: the real images, the whole `gan` section, the KID
    extractor and its weights' md5, the bytes of `code_files`, the library versions, and
    `extra` (the caller's other parameters that shape its output, e.g. `crop.size`)."""
    return content_key(emotion, params, features.get("kid_features"),
                       features.get("kid_weights_md5"), versions(), extra or {}, real_uint8,
                       *map(Path, code_files), length=16)


def saved_state(state_dir, fp: str) -> dict | None:
    """The record saved in `state_dir` if it was saved under fingerprint `fp`."""
    f = Path(state_dir) / "state" / "record.json"
    record = json.loads(f.read_text()) if f.is_file() else {}
    return record if record.get("fingerprint") == fp else None


def train_emotion_gan(emotion: str, real_uint8: np.ndarray, params: Gan, extractor,
                      state_dir, log=None, key_extra: dict | None = None) -> dict:
    """Train, score and choose: the record with the chosen `generator` loaded, per-epoch
    history, KID scores, `resumed_from` (0: from scratch) and the checkpoint and sample
    folders inside `state_dir` (a stale state there is discarded, other files are the
    caller's). `log([(epoch, metrics), ...])` gets the epochs since its last call before
    each state save, so what it logged and the saved state agree after a kill."""
    state_dir = Path(state_dir)
    samples_dir = state_dir / "samples"
    if len(real_uint8) < 2:
        raise ValueError(f"GAN {emotion}: needs at least 2 training images, "
                         f"got {len(real_uint8)}")
    fp = fingerprint(emotion, real_uint8, params, extractor.identity, key_extra)
    real = resize_all(real_uint8, params.image_size)
    x = real.astype(np.float32) / 127.5 - 1.0           # the generator's tanh range
    gan = make_gan(params)
    ckpt_dir = state_dir / "checkpoints"
    record = saved_state(state_dir, fp)
    if record:
        arrays = np.load(state_dir / "state" / "arrays.npz")
        for k, v in state_variables(gan).items():
            v.assign(arrays[k])
        print(f"GAN {emotion}: resuming after epoch {record['epoch']}")
    else:       # stale or no state; other files in state_dir (the caller's) are kept
        record = {"fingerprint": fp, "epoch": 0, "history": [], "kid": {}}
        for sub in ("state", "checkpoints", "samples"):
            shutil.rmtree(state_dir / sub, ignore_errors=True)
    resumed_from = record["epoch"]
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    real_features = extractor(real)
    kept = kept_epochs(params)
    bar = tqdm(range(record["epoch"] + 1, params.epochs + 1), desc=f"GAN {emotion}",
               unit="epoch", initial=record["epoch"], total=params.epochs)
    unlogged = []
    for epoch in bar:
        order = np.random.default_rng([params.seed, epoch]).permutation(len(x))
        losses = []
        for i in range(0, len(x), params.batch_size):
            batch = x[order[i:i + params.batch_size]]
            if len(batch) < 2:
                continue
            out = gan.train_on_batch(batch, return_dict=True)
            losses.append((float(out["d_loss"]), float(out["g_loss"])))
        d_loss, g_loss = (float(v) for v in np.mean(losses, axis=0))
        metrics = {"d_loss": d_loss, "g_loss": g_loss}
        if epoch in kept:
            gan.generator.save_weights(ckpt_dir / f"epoch_{epoch:05d}.weights.h5")
            fake = generate(gan.generator, params.kid_images, params.seed + 7)
            record["kid"][str(epoch)] = metrics["kid"] = kid(extractor(fake), real_features)
        if epoch % params.sample_every == 0 or epoch == params.epochs:
            sample = generate(gan.generator, 16, params.seed + 11)
            save_png(samples_dir / f"epoch_{epoch:05d}.png", image_grid(sample, 8))
        record["history"].append({"epoch": epoch, **metrics})
        record["epoch"] = epoch
        bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}")
        unlogged.append((epoch, metrics))
        if epoch % params.sample_every == 0 or epoch in kept:
            if log:
                log(unlogged)
            unlogged = []
            with atomic_dir(state_dir / "state") as tmp:
                np.savez(tmp / "arrays.npz",
                         **{k: np.asarray(v) for k, v in state_variables(gan).items()})
                (tmp / "record.json").write_text(json.dumps(record))
    best = min(record["kid"], key=lambda e: (record["kid"][e], int(e)))
    gan.generator.load_weights(ckpt_dir / f"epoch_{int(best):05d}.weights.h5")
    return {**record, "chosen_epoch": int(best), "resumed_from": resumed_from,
            "generator": gan.generator, "checkpoint_dir": str(ckpt_dir),
            "samples_dir": str(samples_dir)}
