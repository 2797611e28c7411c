"""Deterministic synthetic stand-ins for KDEF, CK+, JAFFE, the PFA set and actor photos.

Each database is written in its native on-disk layout and naming, so the importers read
the demo data exactly as they read the licensed originals:

  KDEF/AF01/AF01ANS.JPG                          562x762 colour JPEG, 5 angles
  CK+/cohn-kanade-images/S005/001/S005_001_00000001.png   640x490 gray, neutral -> peak
  CK+/Emotion/S005/001/S005_001_00000008_emotion.txt      "   3.0000000e+00"
  jaffe/KA.AN1.39.tiff                           256x256 8-bit gray TIFF (some palette)
  KDEF_GAN_PFA/<emotion>/<file>.JPG, actors/<emotion>/<file>.jpg

Usage: python -m fer.demo_data data [--scale demo|paper] [--seed 0]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .atomic import atomic_dir
from .faces import STYLES, expression_for, random_identity, render_face
from .labels import CK_EMOTIONS, EMOTIONS, JAFFE_EMOTIONS, JAFFE_SUBJECTS, KDEF_ANGLES, \
    KDEF_EMOTIONS

DB_IDS = {"kdef": 1, "ck": 2, "jaffe": 3, "pfa": 4, "actor": 5}
YAW = {"FL": -1.0, "HL": -0.5, "S": 0.0, "HR": 0.5, "FR": 1.0}
KDEF_CODE = {v: k for k, v in KDEF_EMOTIONS.items()}
JAFFE_CODE = {v: k for k, v in JAFFE_EMOTIONS.items()}
CK_CODE = {v: k for k, v in CK_EMOTIONS.items()}


@dataclass(frozen=True)
class DemoSizes:
    kdef_per_sex: int            # subjects per sex (real: 35)
    kdef_sessions: str           # "AB" (real) or "A"
    kdef_all_angles: int         # subjects per sex photographed at all 5 angles
    ck_subjects: int
    ck_sequences: int            # sequences in all, dealt round-robin to the subjects
    ck_labelled: int             # of which have an Emotion file ...
    ck_contempt: int             # ... of which are contempt (dropped by the importer)
    ck_frames: int               # frames per sequence
    jaffe_per_expression: tuple  # images per (subject, expression), cycled
    pfa_sessions: str            # one PFA image per KDEF (session, subject, emotion)
    actors_per_emotion: int
    scale: float                 # canvas scale (1 = native database size)


SIZES = {
    "demo": DemoSizes(kdef_per_sex=4, kdef_sessions="AB", kdef_all_angles=1,
                      ck_subjects=10, ck_sequences=50, ck_labelled=40, ck_contempt=4,
                      ck_frames=5,
                      jaffe_per_expression=(1,), pfa_sessions="A", actors_per_emotion=4,
                      scale=0.5),
    # Counts of the real databases: KDEF 980 frontal (4900 all angles), CK+ 593
    # sequences / 327 labelled (18 contempt) / 123 subjects, JAFFE 213, PFA 980.
    "paper": DemoSizes(kdef_per_sex=35, kdef_sessions="AB", kdef_all_angles=35,
                       ck_subjects=123, ck_sequences=593, ck_labelled=327, ck_contempt=18,
                       ck_frames=8,
                       jaffe_per_expression=(4, 4, 4) + (3,) * 67,  # 213 images
                       pfa_sessions="AB", actors_per_emotion=4, scale=1.0),
}


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _style(name: str, scale: float):
    s = STYLES[name]
    return replace(s, width=int(s.width * scale), height=int(s.height * scale))


def _face(db: str, subject: int, seed: int, emotion: str, intensity: float, key: int,
          scale: float, yaw: float = 0.0) -> np.ndarray:
    identity = random_identity(_rng(seed, DB_IDS[db], subject))
    rng = _rng(seed, DB_IDS[db], subject, EMOTIONS.index(emotion) if emotion else 9, key)
    return render_face(identity, expression_for(emotion, intensity, rng), _style(db, scale),
                       rng, yaw=yaw)


def write_kdef(root: Path, sizes: DemoSizes, seed: int) -> int:
    n = 0
    jobs = []
    for session in sizes.kdef_sessions:
        for sex in "FM":
            for sid in range(1, sizes.kdef_per_sex + 1):
                angles = KDEF_ANGLES if sid <= sizes.kdef_all_angles else ("S",)
                for emotion in EMOTIONS:
                    for angle in angles:
                        jobs.append((session, sex, sid, emotion, angle))
    for session, sex, sid, emotion, angle in tqdm(jobs, desc="demo KDEF", leave=False):
        subject = (0 if sex == "F" else 100) + sid
        img = _face("kdef", subject, seed, emotion, 1.0, ord(session) * 10 + len(angle),
                    sizes.scale, yaw=YAW[angle])
        name = f"{session}{sex}{sid:02d}"
        out = root / "KDEF" / name / f"{name}{KDEF_CODE[emotion]}{angle}.JPG"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(out, quality=92)
        n += 1
    return n


def ck_plan(sizes: DemoSizes) -> list[tuple[int, int, str | None]]:
    """(subject index, sequence number, emotion or None if unlabelled) per sequence.

    Sequence j goes to subject j % n; the first `ck_labelled` are labelled, the first
    `ck_contempt` of those are contempt, the rest cycle through the six basic emotions.
    """
    basic = [e for e in EMOTIONS if e != "neutral"]
    plan, per_subject = [], [0] * sizes.ck_subjects
    for j in range(sizes.ck_sequences):
        s = j % sizes.ck_subjects
        per_subject[s] += 1
        if j < sizes.ck_contempt:
            emotion = "contempt"
        elif j < sizes.ck_labelled:
            emotion = basic[(j - sizes.ck_contempt) % len(basic)]
        else:
            emotion = None
        plan.append((s, per_subject[s], emotion))
    return plan


def write_ck(root: Path, sizes: DemoSizes, seed: int) -> int:
    n = 0
    basic = [e for e in EMOTIONS if e != "neutral"]
    for s, q, emotion in tqdm(ck_plan(sizes), desc="demo CK+", leave=False):
        subject, seq = f"S{5 + s * 5:03d}", f"{q:03d}"
        # unlabelled sequences still show an expression; contempt is drawn as a smirk
        drawn = emotion or basic[(s + q) % len(basic)]
        drawn = "disgust" if drawn == "contempt" else drawn
        folder = root / "CK+" / "cohn-kanade-images" / subject / seq
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(sizes.ck_frames):
            intensity = f / (sizes.ck_frames - 1)
            img = _face("ck", s, seed, drawn, intensity, q * 100 + f, sizes.scale)
            Image.fromarray(img[..., 0]).save(folder / f"{subject}_{seq}_{f + 1:08d}.png")
            n += 1
        if emotion is not None:
            lab = root / "CK+" / "Emotion" / subject / seq
            lab.mkdir(parents=True, exist_ok=True)
            (lab / f"{subject}_{seq}_{sizes.ck_frames:08d}_emotion.txt").write_text(
                f"   {CK_CODE[emotion]:.7e}\n")
    return n


def write_jaffe(root: Path, sizes: DemoSizes, seed: int) -> int:
    folder = root / "jaffe"
    folder.mkdir(parents=True, exist_ok=True)
    n, image_id = 0, 1
    for si, subject in enumerate(tqdm(JAFFE_SUBJECTS, desc="demo JAFFE", leave=False)):
        for ei, emotion in enumerate(EMOTIONS):
            reps = sizes.jaffe_per_expression[(si * 7 + ei) % len(sizes.jaffe_per_expression)]
            for r in range(reps):
                img = _face("jaffe", si, seed, emotion, 1.0, r, sizes.scale)
                gray = Image.fromarray(img[..., 0], "L")
                if image_id % 4 == 0:  # some real JAFFE files are palette-mode
                    gray = gray.convert("P")
                gray.save(folder / f"{subject}.{JAFFE_CODE[emotion]}{r + 1}.{image_id}.tiff")
                n += 1
                image_id += 1
    return n


def write_label_folders(root: Path, db: str, folder: str, per_emotion: int, seed: int,
                        scale: float, suffix: str) -> int:
    n = 0
    for emotion in tqdm(EMOTIONS, desc=f"demo {folder}", leave=False):
        out = root / folder / emotion
        out.mkdir(parents=True, exist_ok=True)
        for k in range(per_emotion):
            img = _face(db, k, seed, emotion, 1.0, k, scale)
            Image.fromarray(img).save(out / f"{emotion}_{k:04d}{suffix}", quality=92)
            n += 1
    return n


def make_demo_data(root, scale: str = "demo", seed: int = 0) -> dict:
    """Write all demo databases under `root` (atomically); returns file counts."""
    sizes = SIZES[scale]
    root = Path(root)
    pfa_per_emotion = len(sizes.pfa_sessions) * 2 * sizes.kdef_per_sex
    with atomic_dir(root) as tmp:
        counts = {
            "KDEF": write_kdef(tmp, sizes, seed),
            "CK+": write_ck(tmp, sizes, seed),
            "jaffe": write_jaffe(tmp, sizes, seed),
            "KDEF_GAN_PFA": write_label_folders(tmp, "pfa", "KDEF_GAN_PFA", pfa_per_emotion,
                                                seed, sizes.scale, ".JPG"),
            "actors": write_label_folders(tmp, "actor", "actors", sizes.actors_per_emotion,
                                          seed, sizes.scale, ".jpg"),
        }
        (tmp / "DEMO_DATA.txt").write_text(
            f"Synthetic demo faces written by `python -m fer.demo_data` (scale={scale}, "
            f"seed={seed}).\nReplace these folders with the licensed databases for real "
            "experiments; see README.md.\n")
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="where to write (e.g. data)")
    p.add_argument("--scale", choices=sorted(SIZES), default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--if-empty", action="store_true",
                   help="do nothing if ROOT already holds files (your own data)")
    args = p.parse_args(argv)
    if args.root.exists() and any(args.root.iterdir()):
        if args.if_empty:
            print(f"{args.root} is not empty: keeping the data there")
            return 0
        print(f"{args.root} is not empty; remove it first or pass --if-empty", file=sys.stderr)
        return 2
    if args.root.exists():
        shutil.rmtree(args.root)
    counts = make_demo_data(args.root, args.scale, args.seed)
    for k, v in counts.items():
        print(f"{k:>14}: {v} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
