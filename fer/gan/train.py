"""Train one emotion's DCGAN with checkpoints, KID-based checkpoint choice and resume.

Kept checkpoints (epoch >= keep_from, every keep_every, and the last epoch) are scored
by KID against the real images of that emotion; the lowest score is the chosen
generator. Training state (both networks, both optimizers, the noise step, the scores so
far) is saved to `state_dir` every `sample_every` epochs; a run that finds a state with
the same `fingerprint` (data, parameters, KID extractor, code) there resumes from it and
ends with the same weights as an uninterrupted run (every random draw is keyed by seed
and epoch/step).
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
from fer.gan.dcgan import generate, load_state_arrays, make_gan, state_arrays, to_tanh_range
from fer.gan.kid import kid


def kept_epochs(params: Gan) -> list[int]:
    """The epochs whose generator is kept and scored: from keep_from every keep_every,
    and the last."""
    kept = list(range(params.keep_from, params.epochs + 1, params.keep_every))
    if params.epochs not in kept:
        kept.append(params.epochs)
    return [e for e in kept if e >= 1]


def image_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
    n, s = len(images), images.shape[1]
    rows = -(-n // cols)
    grid = np.full((rows * s, cols * s, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * s:(r + 1) * s, c * s:(c + 1) * s] = im
    return grid


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


# The code that shapes the training state: a change to any of these files (or to the
# library versions) invalidates a saved state.
CODE_FILES = tuple(Path(__file__).parent / f for f in ("dcgan.py", "train.py", "kid.py"))


def fingerprint(emotion: str, real_uint8: np.ndarray, params: Gan, features: dict,
                extra: dict | None = None, code_files=CODE_FILES) -> str:
    """Key of the resume state: everything the state (networks, optimizers, history,
    KID scores, kept checkpoints, sample grids) depends on. The real images' bytes and
    shape; the whole `gan` section (`n_generate` included: the state lives only until
    the stage completes, so this costs no reuse); the KID extractor and its weights'
    md5 (not their path); the bytes of `code_files`; the TensorFlow, Keras and NumPy
    versions; and `extra`, the caller's other parameters that shape its output from the
    state (the stage passes `crop.size`)."""
    return content_key(emotion, params, features.get("kid_features"),
                       features.get("kid_weights_md5"), versions(), extra or {}, real_uint8,
                       *map(Path, code_files), length=16)


def _save_state(state_dir: Path, gan, record: dict) -> None:
    with atomic_dir(state_dir / "state") as tmp:
        np.savez(tmp / "arrays.npz", **state_arrays(gan))
        (tmp / "record.json").write_text(json.dumps(record))


def saved_state(state_dir, fp: str) -> dict | None:
    """The record saved in `state_dir` if it was saved under fingerprint `fp`."""
    f = Path(state_dir) / "state" / "record.json"
    if f.is_file():
        record = json.loads(f.read_text())
        if record["fingerprint"] == fp:
            return record
    return None


def train_emotion_gan(emotion: str, real_uint8: np.ndarray, params: Gan, extractor,
                      state_dir, log=None, key_extra: dict | None = None) -> dict:
    """Train, score and choose; returns the record with the chosen generator loaded
    as record['generator'], per-epoch history, and the folders of the kept checkpoints
    and sample grids (both inside `state_dir`, so a resumed run keeps the earlier ones);
    record['resumed_from'] is the epoch the run resumed after (0: trained from scratch).
    A stale state is discarded (`state`, `checkpoints`, `samples`); other files in
    `state_dir` are the caller's. `log(epoch, metrics)` is called after every epoch;
    `key_extra` goes into the state's `fingerprint`."""
    state_dir = Path(state_dir)
    samples_dir = state_dir / "samples"
    if len(real_uint8) < 2:
        raise ValueError(f"GAN {emotion}: needs at least 2 training images, "
                         f"got {len(real_uint8)}")
    fp = fingerprint(emotion, real_uint8, params, extractor.identity, key_extra)
    real = resize_all(real_uint8, params.image_size)
    x = to_tanh_range(real)
    gan = make_gan(params)
    record = {"fingerprint": fp, "epoch": 0, "history": [], "kid": {}}
    ckpt_dir = state_dir / "checkpoints"
    saved = saved_state(state_dir, fp)
    if saved:
        record = saved
        load_state_arrays(gan, np.load(state_dir / "state" / "arrays.npz"))
        print(f"GAN {emotion}: resuming after epoch {record['epoch']}")
    else:       # stale or no state; other files in state_dir (the caller's) are kept
        for sub in ("state", "checkpoints", "samples"):
            shutil.rmtree(state_dir / sub, ignore_errors=True)
    resumed_from = record["epoch"]
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    real_features = extractor(real)
    kept = set(kept_epochs(params))
    bar = tqdm(range(record["epoch"] + 1, params.epochs + 1), desc=f"GAN {emotion}",
               unit="epoch", initial=record["epoch"], total=params.epochs)
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
            score = kid(extractor(fake), real_features)
            record["kid"][str(epoch)] = score
            metrics["kid"] = score
        if epoch % params.sample_every == 0 or epoch == params.epochs:
            sample = generate(gan.generator, 16, params.seed + 11)
            save_png(samples_dir / f"epoch_{epoch:05d}.png", image_grid(sample, 8))
        record["history"].append({"epoch": epoch, **metrics})
        record["epoch"] = epoch
        bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}")
        if log:
            log(epoch, metrics)
        if epoch % params.sample_every == 0 or epoch in kept:
            _save_state(state_dir, gan, record)
    best = min(record["kid"], key=lambda e: (record["kid"][e], int(e)))
    gan.generator.load_weights(ckpt_dir / f"epoch_{int(best):05d}.weights.h5")
    record["chosen_epoch"] = int(best)
    record["resumed_from"] = resumed_from
    record["generator"] = gan.generator
    record["checkpoint_dir"] = str(ckpt_dir)
    record["samples_dir"] = str(samples_dir)
    return record
