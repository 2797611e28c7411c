"""Parse each face database's native layout into a manifest (one row per sample).

Manifest columns: path (absolute to the file read), label (canonical emotion),
subject, database, source (database-specific detail: angle, session, frame, ...).

Rules for bad input (README "Bad input"):
- a missing database folder, or one with no usable file: error naming the folder;
- a file name that matches the database's naming scheme but carries an unknown
  emotion code, or a CK+ label file with an unknown code: error naming the file;
- files that are not part of the scheme at all (Thumbs.db, README, non-images):
  skipped and counted under `skipped` in the import report;
- a canonical emotion with no sample in a database that must have all seven: error
  naming the database and the missing classes.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .labels import (CK_DROPPED, CK_EMOTIONS, EMOTIONS, FER2013_EMOTIONS, JAFFE_EMOTIONS,
                     KDEF_EMOTIONS, KDEF_FRONTAL, canonical_label)
from .images import is_image_name

COLUMNS = ["path", "label", "subject", "database", "source"]


class DatasetError(ValueError):
    """The database on disk does not match the layout its importer expects."""


@dataclass
class ImportResult:
    manifest: pd.DataFrame
    skipped: Counter = field(default_factory=Counter)   # reason -> count
    examples: dict = field(default_factory=dict)         # reason -> first file
    pixels: np.ndarray | None = None                     # decoded images (FER2013 csv)

    def skip(self, reason: str, path) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, str(path))

    def report(self) -> dict:
        m = self.manifest
        return {"images": int(len(m)),
                "subjects": int(m["subject"].nunique()) if len(m) else 0,
                "classes": {e: int((m["label"] == e).sum()) for e in EMOTIONS},
                "skipped": dict(self.skipped),
                "skipped_examples": self.examples}


def _require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} folder not found (see README, 'Real data')")
    return path


def _finish(rows: list, result: ImportResult, database: str, root: Path,
            require_all: bool) -> ImportResult:
    if not rows:
        raise DatasetError(f"{root}: no usable {database} images found")
    m = pd.DataFrame(rows, columns=COLUMNS).sort_values("path", kind="stable")
    result.manifest = m.reset_index(drop=True)
    missing = [e for e in EMOTIONS if e not in set(m["label"])]
    if require_all and missing:
        raise DatasetError(f"{root}: {database} has no images of class(es) "
                           f"{', '.join(missing)}; every one of the seven emotions is needed")
    return result


KDEF_NAME = re.compile(r"^([AB])([FM])(\d\d)([A-Z]{2})(FL|FR|HL|HR|S)\.(JPE?G)$", re.I)


def import_kdef(root, frontal_only: bool = True) -> ImportResult:
    """KDEF/<AF01>/<AF01ANS.JPG>: session A/B, sex F/M, id, emotion, angle."""
    root = _require_dir(root, "KDEF")
    result, rows = ImportResult(pd.DataFrame()), []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        m = KDEF_NAME.match(f.name)
        if not m:
            result.skip("not a KDEF file name", f)
            continue
        session, sex, sid, code, angle = (g.upper() for g in m.groups()[:5])
        if code not in KDEF_EMOTIONS:
            raise DatasetError(f"{f}: unknown KDEF emotion code {code!r}; expected one of "
                               f"{sorted(KDEF_EMOTIONS)}")
        if frontal_only and angle != KDEF_FRONTAL:
            result.skip(f"non-frontal angle (kept: {KDEF_FRONTAL})", f)
            continue
        rows.append((str(f), KDEF_EMOTIONS[code], f"{sex}{sid}", "KDEF",
                     f"session={session};angle={angle}"))
    return _finish(rows, result, "KDEF", root, require_all=True)


CK_FRAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.I)


def _read_ck_label(path: Path) -> str:
    text = path.read_text().strip()
    try:
        code = float(text)
    except ValueError:
        raise DatasetError(f"{path}: CK+ label file does not hold a number: {text[:40]!r}")
    if code != int(code) or int(code) not in CK_EMOTIONS:
        raise DatasetError(f"{path}: unknown CK+ emotion code {text!r}; expected 0-7")
    return CK_EMOTIONS[int(code)]


def import_ck(root, peak_frames: int = 3, neutral_frames: int = 1) -> ImportResult:
    """CK+: labelled sequences only; the last `peak_frames` frames get the sequence's
    label and the first `neutral_frames` frames are neutral. Contempt is dropped."""
    if peak_frames < 1 or neutral_frames < 0:
        raise ValueError("ck.peak_frames must be >= 1 and ck.neutral_frames >= 0")
    root = _require_dir(root, "CK+")
    images = _require_dir(root / "cohn-kanade-images", "CK+ cohn-kanade-images")
    labels = _require_dir(root / "Emotion", "CK+ Emotion")
    result, rows = ImportResult(pd.DataFrame()), []
    for seq in sorted(p for p in images.glob("*/*") if p.is_dir()):
        subject, seq_id = seq.parent.name, seq.name
        frames = sorted(f for f in seq.iterdir() if CK_FRAME.match(f.name))
        for f in seq.iterdir():
            if f.is_file() and not CK_FRAME.match(f.name):
                result.skip("not a CK+ frame name", f)
        label_files = sorted((labels / subject / seq_id).glob("*_emotion.txt"))
        if not label_files:
            result.skip("unlabelled sequence", seq)
            continue
        emotion = _read_ck_label(label_files[-1])
        if emotion in CK_DROPPED:
            result.skip(f"{emotion} (not one of the seven)", seq)
            continue
        if len(frames) < peak_frames + neutral_frames:
            raise DatasetError(f"{seq}: {len(frames)} frames, fewer than ck.peak_frames + "
                               f"ck.neutral_frames = {peak_frames + neutral_frames}")
        for i, f in enumerate(frames[:neutral_frames]):
            rows.append((str(f), "neutral", subject, "CK+", f"sequence={seq_id};frame={i + 1}"))
        for f in frames[-peak_frames:]:
            n = int(CK_FRAME.match(f.name).group(3))
            rows.append((str(f), emotion, subject, "CK+", f"sequence={seq_id};frame={n}"))
    return _finish(rows, result, "CK+", root, require_all=True)


JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)\.tiff?$", re.I)


def import_jaffe(root) -> ImportResult:
    """JAFFE: flat folder of <subject>.<EMOTION><n>.<id>.tiff."""
    root = _require_dir(root, "JAFFE")
    result, rows = ImportResult(pd.DataFrame()), []
    for f in sorted(p for p in root.iterdir() if p.is_file()):
        m = JAFFE_NAME.match(f.name)
        if not m:
            result.skip("not a JAFFE file name", f)
            continue
        subject, code, rep, image_id = m.groups()
        if code.upper() not in JAFFE_EMOTIONS:
            raise DatasetError(f"{f}: unknown JAFFE emotion code {code!r}; expected one of "
                               f"{sorted(JAFFE_EMOTIONS)}")
        rows.append((str(f), JAFFE_EMOTIONS[code.upper()], subject.upper(), "JAFFE",
                     f"repeat={rep};id={image_id}"))
    return _finish(rows, result, "JAFFE", root, require_all=True)


def import_label_folders(root, database: str, require_all: bool = True) -> ImportResult:
    """Generic `<label>/<file>` layout (PFA set, actor photos, your own data).

    Folder names are mapped through `labels.LABEL_ALIASES` (angry/anger, fear/afraid, ...);
    an unknown folder name is an error. The subject is the file stem (no identity info).
    """
    root = _require_dir(root, database)
    result, rows = ImportResult(pd.DataFrame()), []
    for folder in sorted(p for p in root.iterdir()):
        if not folder.is_dir():
            result.skip("file outside a label folder", folder)
            continue
        label = canonical_label(folder.name, str(folder))
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            if not is_image_name(f):
                result.skip("not an image file name", f)
                continue
            rows.append((str(f), label, f"{database}:{f.stem}", database,
                         f"folder={folder.name}"))
    return _finish(rows, result, database, root, require_all=require_all)


def import_fer2013(csv_path, usage: str | None = None) -> tuple[ImportResult, np.ndarray]:
    """FER2013 csv (emotion, pixels, Usage): returns the manifest and (N, 48, 48) uint8."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: FER2013 csv not found")
    df = pd.read_csv(csv_path)
    for col in ("emotion", "pixels"):
        if col not in df.columns:
            raise DatasetError(f"{csv_path}: FER2013 csv has no {col!r} column")
    if usage is not None:
        df = df[df["Usage"] == usage]
    result, rows, pixels = ImportResult(pd.DataFrame()), [], []
    for i, (code, px) in enumerate(zip(df["emotion"], df["pixels"])):
        if int(code) not in FER2013_EMOTIONS:
            raise DatasetError(f"{csv_path}: row {i + 2}: unknown FER2013 emotion code {code}")
        values = np.array(str(px).split(), dtype=np.int64)
        if values.size != 48 * 48 or values.min() < 0 or values.max() > 255:
            raise DatasetError(f"{csv_path}: row {i + 2}: pixels must be 2304 values 0-255")
        pixels.append(values.reshape(48, 48).astype(np.uint8))
        rows.append((f"{csv_path}#{i}", FER2013_EMOTIONS[int(code)], f"fer2013:{i}",
                     "FER2013", f"row={i}"))
    return _finish(rows, result, "FER2013", csv_path, require_all=True), np.stack(pixels)


def import_database(kind: str, path, **options) -> ImportResult:
    """Dispatch on the `kind` named in params.yaml (`data.<db>.kind`)."""
    if kind == "kdef":
        return import_kdef(path, frontal_only=options.get("frontal_only", True))
    if kind == "ck":
        return import_ck(path, options.get("peak_frames", 3), options.get("neutral_frames", 1))
    if kind == "jaffe":
        return import_jaffe(path)
    if kind == "fer2013":
        result, pixels = import_fer2013(path, options.get("usage"))
        result.pixels = pixels
        return result
    if kind == "folders":
        return import_label_folders(path, options["name"], options.get("require_all", True))
    raise DatasetError(f"unknown database kind {kind!r}; expected kdef, ck, jaffe, folders "
                       "or fer2013")
