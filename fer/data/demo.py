"""Deterministic synthetic stand-ins for KDEF, CK+, JAFFE, the PFA set and actor photos.

Each database is written in its native layout and naming (KDEF/AF01/AF01ANS.JPG,
CK+/cohn-kanade-images/S005/001/... with CK+/Emotion/..., jaffe/KA.AN1.39.tiff,
KDEF_GAN_PFA/<emotion>/AF01HAS.JPG, actors/<emotion>/<file>.jpg), so the importers read
it as they read the licensed originals. --extras adds the ck48/ and web/ stand-ins of
the own-data example (docs/configuration.md "Demo data").

Usage: python -m fer.data.demo data [--scale demo|paper] [--seed 0] [--extras]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from fer.core.atomic import atomic_dir
from fer.data.faces import STYLES, Style, expression_for, random_identity, render_face
from fer.data.labels import CK_EMOTIONS, EMOTIONS, JAFFE_EMOTIONS, JAFFE_SUBJECTS, KDEF_ANGLES, \
    KDEF_EMOTIONS

DB_IDS = {"kdef": 1, "ck": 2, "jaffe": 3, "pfa": 4, "actor": 5, "tight": 6, "csv": 7}
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
    "demo": DemoSizes(kdef_per_sex=12, kdef_sessions="AB", kdef_all_angles=1,
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


def _identity(db: str, subject: int, seed: int):
    return random_identity(_rng(seed, DB_IDS[db], subject))


def _face(db: str, subject: int, seed: int, emotion: str, intensity: float, key: int,
          scale: float, yaw: float = 0.0, identity=None, style: Style | None = None
          ) -> np.ndarray:
    """`db`'s face of `subject` (its style at `scale` unless `style` is given); contempt is
    drawn as a smirk (disgust's mouth)."""
    emotion = "disgust" if emotion == "contempt" else emotion
    identity = identity or _identity(db, subject, seed)
    rng = _rng(seed, DB_IDS[db], subject, EMOTIONS.index(emotion), key)
    if style is None:
        s = STYLES[db]
        style = replace(s, width=int(s.width * scale), height=int(s.height * scale))
    return render_face(identity, expression_for(emotion, intensity, rng), style, rng, yaw=yaw)


def _kdef_subject(sex: str, sid: int) -> int:
    return (0 if sex == "F" else 100) + sid


def _save_jpeg(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=92)


def write_kdef(root: Path, sizes: DemoSizes, seed: int) -> int:
    jobs = [(session, sex, sid, emotion, angle) for session in sizes.kdef_sessions
            for sex in "FM" for sid in range(1, sizes.kdef_per_sex + 1) for emotion in EMOTIONS
            for angle in (KDEF_ANGLES if sid <= sizes.kdef_all_angles else ("S",))]
    for session, sex, sid, emotion, angle in tqdm(jobs, desc="demo KDEF", leave=False):
        img = _face("kdef", _kdef_subject(sex, sid), seed, emotion, 1.0,
                    ord(session) * 10 + len(angle), sizes.scale, yaw=YAW[angle])
        name = f"{session}{sex}{sid:02d}"
        _save_jpeg(img, root / "KDEF" / name / f"{name}{KDEF_CODE[emotion]}{angle}.JPG")
    return len(jobs)


def write_ck(root: Path, sizes: DemoSizes, seed: int) -> int:
    """Sequences dealt round robin to the subjects: the first `ck_contempt` labelled
    contempt, then the six basic emotions up to `ck_labelled`, the rest unlabelled."""
    basic = [e for e in EMOTIONS if e != "neutral"]
    labels = ["contempt"] * sizes.ck_contempt + [
        basic[i % len(basic)] for i in range(sizes.ck_labelled - sizes.ck_contempt)]
    for j in tqdm(range(sizes.ck_sequences), desc="demo CK+", leave=False):
        s, q = j % sizes.ck_subjects, j // sizes.ck_subjects + 1
        emotion = labels[j] if j < len(labels) else None
        subject, seq = f"S{5 + s * 5:03d}", f"{q:03d}"
        drawn = emotion or basic[(s + q) % len(basic)]  # unlabelled ones show one too
        folder = root / "CK+" / "cohn-kanade-images" / subject / seq
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(sizes.ck_frames):
            img = _face("ck", s, seed, drawn, f / (sizes.ck_frames - 1), q * 100 + f, sizes.scale)
            Image.fromarray(img[..., 0]).save(folder / f"{subject}_{seq}_{f + 1:08d}.png")
        if emotion is not None:
            lab = root / "CK+" / "Emotion" / subject / seq
            lab.mkdir(parents=True, exist_ok=True)
            (lab / f"{subject}_{seq}_{sizes.ck_frames:08d}_emotion.txt").write_text(
                f"   {CK_CODE[emotion]:.7e}\n")
    return sizes.ck_sequences * sizes.ck_frames


def write_jaffe(root: Path, sizes: DemoSizes, seed: int) -> int:
    folder = root / "jaffe"
    folder.mkdir(parents=True, exist_ok=True)
    image_id = 1
    for si, subject in enumerate(tqdm(JAFFE_SUBJECTS, desc="demo JAFFE", leave=False)):
        for ei, emotion in enumerate(EMOTIONS):
            reps = sizes.jaffe_per_expression[(si * 7 + ei) % len(sizes.jaffe_per_expression)]
            for r in range(reps):
                img = _face("jaffe", si, seed, emotion, 1.0, r, sizes.scale)
                gray = Image.fromarray(img[..., 0], "L")
                if image_id % 4 == 0:  # some real JAFFE files are palette-mode
                    gray = gray.convert("P")
                gray.save(folder / f"{subject}.{JAFFE_CODE[emotion]}{r + 1}.{image_id}.tiff")
                image_id += 1
    return image_id - 1


def write_actors(root: Path, sizes: DemoSizes, seed: int) -> int:
    """actors/<emotion>/<emotion>_0000.jpg: each photo its own person."""
    for emotion in tqdm(EMOTIONS, desc="demo actors", leave=False):
        for k in range(sizes.actors_per_emotion):
            _save_jpeg(_face("actor", k, seed, emotion, 1.0, k, sizes.scale),
                       root / "actors" / emotion / f"{emotion}_{k:04d}.jpg")
    return len(EMOTIONS) * sizes.actors_per_emotion


def write_pfa(root: Path, sizes: DemoSizes, seed: int) -> int:
    """One face per frontal KDEF photo, named after it (`happy/AF01HAS.JPG`): that
    subject's face, hair and skin with a second identity's eyes, nose and mouth."""
    jobs = [(session, sex, sid, emotion) for emotion in EMOTIONS
            for session in sizes.pfa_sessions for sex in "FM"
            for sid in range(1, sizes.kdef_per_sex + 1)]
    for session, sex, sid, emotion in tqdm(jobs, desc="demo KDEF_GAN_PFA", leave=False):
        subject = _kdef_subject(sex, sid)
        donor = random_identity(_rng(seed, DB_IDS["pfa"], subject, ord(session),
                                     EMOTIONS.index(emotion)))
        identity = replace(_identity("kdef", subject, seed), eye_gap=donor.eye_gap,
                           eye_size=donor.eye_size, nose_len=donor.nose_len,
                           mouth_w=donor.mouth_w, iris=donor.iris)
        img = _face("pfa", subject, seed, emotion, 1.0, ord(session), sizes.scale,
                    identity=identity)
        _save_jpeg(img, root / "KDEF_GAN_PFA" / emotion
                   / f"{session}{sex}{sid:02d}{KDEF_CODE[emotion]}S.JPG")
    return len(jobs)


# A face filling a 192-px canvas, cut above the brows and below the mouth, then
# shrunk to 48 px: the tight crops of FER2013-like sets.
TIGHT_STYLE = Style(192, 192, 0.44, (0.5, 0.56), (150, 150, 150), light=0.1, noise=3.0,
                    jitter=0.01)
TIGHT_LABELS = ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")


def _tight_face(db: str, subject: int, seed: int, label: str, key: int,
                size: int = 48) -> np.ndarray:
    img = _face(db, subject, seed, label, 1.0, key, 1.0, style=TIGHT_STYLE)
    return cv2.resize(img[..., 0], (size, size), interpolation=cv2.INTER_AREA)


def write_tight_crops(root: Path, seed: int, subjects: int = 6) -> int:
    """`ck48/<label>/S001_001_00000012.png`: 48x48 gray tight crops named as CK+ frames, one
    per subject and label, with a contempt/ folder and no neutral/."""
    for i, label in enumerate(TIGHT_LABELS):
        out = root / "ck48" / label
        out.mkdir(parents=True, exist_ok=True)
        for s in range(1, subjects + 1):
            Image.fromarray(_tight_face("tight", s, seed, label, 0)).save(
                out / f"S{s:03d}_{i + 1:03d}_{12:08d}.png")
    return len(TIGHT_LABELS) * subjects


def write_labelled_csv(root: Path, seed: int, subjects: int = 4) -> int:
    """web/: images/img_0001.png + labels.csv (image, expression, person): 350x350 gray
    face-filling portraits (the last subject's: 72x72 colour crops), with 2 duplicate
    rows, 1 file listed with two labels, 2 images not listed, 1 row naming no file."""
    images = root / "web" / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows, n = [], 0
    for s in range(1, subjects + 1):
        for e, emotion in enumerate(EMOTIONS):
            n += 1
            name = f"img_{n:04d}.png"
            if s < subjects:
                img = _tight_face("csv", s, seed, emotion, e, 350)
            else:
                img = cv2.resize(_face("csv", s, seed, emotion, 1.0, e, 1.0,
                                       style=replace(TIGHT_STYLE, face_frac=0.3)),
                                 (72, 72), interpolation=cv2.INTER_AREA)
            Image.fromarray(img).save(images / name)
            rows.append((f"images/{name}", emotion, f"P{s:02d}"))
    del rows[-2:]                                                 # on disk, not in the csv
    rows += [rows[0], rows[7]]                                    # exact duplicates
    rows.append((rows[1][0], "happy" if rows[1][1] != "happy" else "sad", rows[1][2]))
    rows.append(("images/img_0999.png", "angry", "P99"))          # no such file
    lines = ["image,expression,person"] + [",".join(r) for r in rows]
    (root / "web" / "labels.csv").write_text("\n".join(lines) + "\n")
    return n


WRITERS = {"KDEF": write_kdef, "CK+": write_ck, "jaffe": write_jaffe,
           "KDEF_GAN_PFA": write_pfa, "actors": write_actors}
EXTRAS = {"ck48": write_tight_crops, "web": write_labelled_csv}   # the own-data example's


def make_demo_data(root, scale: str = "demo", seed: int = 0, extras: bool = False) -> dict:
    """Write all demo databases under `root` (atomically); returns file counts."""
    sizes = SIZES[scale]
    root = Path(root)
    with atomic_dir(root) as tmp:
        counts = {name: write(tmp, sizes, seed) for name, write in WRITERS.items()}
        if extras:
            counts |= {name: write(tmp, seed) for name, write in EXTRAS.items()}
        (tmp / "DEMO_DATA.txt").write_text(
            f"Synthetic demo faces written by `python -m fer.data.demo` (scale={scale}, "
            f"seed={seed}).\nReplace these folders with the licensed databases for real "
            "experiments; see README.md.\n")
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="where to write (e.g. data)")
    p.add_argument("--scale", choices=sorted(SIZES), default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extras", action="store_true",
                   help="also write the ck48/ and web/ stand-ins of the own-data example")
    p.add_argument("--if-empty", action="store_true",
                   help="do nothing if ROOT already holds files (your own data)")
    args = p.parse_args(argv)
    if args.root.exists() and any(args.root.iterdir()):
        if args.if_empty:
            print(f"{args.root} is not empty: keeping the data there")
            return 0
        print(f"{args.root} is not empty; remove it first or pass --if-empty", file=sys.stderr)
        return 2
    counts = make_demo_data(args.root, args.scale, args.seed, args.extras)
    for k, v in counts.items():
        print(f"{k:>14}: {v} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
