"""Parse each face database's native layout into a manifest (one row per sample).

Manifest columns: path, label (canonical emotion), subject, database, source
(database-specific detail) and source_subject ("<database>/<subject>" of the real person
shown or derived from; empty: train-only). Bad input is handled as docs/configuration.md
"Bad input" says: errors name the folder, file or option; files outside a database's
naming scheme are skipped and counted in the import report.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer.data.labels import (CK_EMOTIONS, EMOTIONS, FER2013_EMOTIONS, JAFFE_EMOTIONS,
                             KDEF_EMOTIONS, KDEF_FRONTAL, lookup_label)
from fer.data.images import is_image_name
from fer.core.schema import ConfigError, Ck, Csv, Database, Fer2013, Folders, Jaffe, Kdef, \
    database

COLUMNS = ["path", "label", "subject", "database", "source", "source_subject"]


class DatasetError(ValueError):
    """The database on disk does not match the layout its importer expects."""


@dataclass
class ImportResult:
    manifest: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: Counter = field(default_factory=Counter)   # reason -> count
    examples: dict = field(default_factory=dict)         # reason -> first file
    pixels: np.ndarray | None = None                     # decoded images (FER2013 csv)
    details: dict = field(default_factory=dict)          # kind-specific report entries

    def skip(self, reason: str, path, n: int = 1) -> None:
        self.skipped[reason] += n
        self.examples.setdefault(reason, str(path))

    def report(self) -> dict:
        """The import report (metrics/import/<db>.json) of a finished import."""
        m, source = self.manifest, self.manifest["source_subject"]
        return {"images": len(m), "subjects": int(m["subject"].nunique()),
                "source_subjects": int(source[source != ""].nunique()),
                "train_only": int((source == "").sum()),
                "classes": {e: int((m["label"] == e).sum()) for e in EMOTIONS},
                "skipped": dict(self.skipped),
                "skipped_examples": self.examples,
                **self.details}


def _require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} folder not found (see docs/configuration.md, "
                           "'Real data layout')")
    return path


def _finish(rows: list, result: ImportResult, database: str, root: Path, db: Database,
            where: str) -> ImportResult:
    if not rows:
        raise DatasetError(f"{root}: no usable {database} images found")
    m = pd.DataFrame(rows, columns=COLUMNS).sort_values("path", kind="stable")
    result.manifest = m.reset_index(drop=True)
    missing = [e for e in EMOTIONS if e not in set(m["label"])]
    if db.require_all and missing:
        raise DatasetError(f"{root}: {database} has no images of class(es) "
                           f"{', '.join(missing)}; every one of the seven emotions is needed "
                           f"(set {where}.require_all: false if the database lacks them by "
                           "design)")
    return result


def _outside_seven(result: ImportResult, label: str, path, policy: str, where: str,
                   n: int = 1) -> None:
    """Apply the class policy to `n` images labelled `label` (not one of the seven)."""
    if policy == "fail":
        raise DatasetError(f"{path}: label {label!r} is not one of the seven emotions "
                           f"({', '.join(EMOTIONS)}) or an alias of one; set "
                           f"{where}.class_policy: skip to skip and count such images")
    result.skip(f"{label.strip().lower()} (not one of the seven)", path, n)


def _subject_ids(db: Folders, where: str, f: Path, person: str = "") -> tuple[str, str]:
    """(subject, source_subject) of file `f` (options in docs/configuration.md).

    person (a csv's subject_column) or subject_pattern, a regex whose group `subject`
    names the person, give the subject; without them each file is its own subject, its
    source_subject "<database>/<stem>" (unknown_subjects: per_image) or empty (train_only).
    source_pattern + source_database: faces derived from another database's people (PFA
    from KDEF): source_subject "<source_database>/<subject>".
    """
    def match(option: str) -> str:
        pattern = getattr(db, option)
        m = re.search(pattern, f.name)
        if not m or not m.group("subject"):
            raise DatasetError(f"{f}: file name does not match {where}.{option} {pattern!r}")
        return m.group("subject")

    if person or db.subject_pattern is not None:
        subject = person or match("subject_pattern")
        source = f"{db.name}/{subject}"
    else:
        subject = f"{db.name}:{f.stem}"
        source = f"{db.name}/{f.stem}" if db.unknown_subjects == "per_image" else ""
    if db.source_pattern is not None:
        source = f"{db.source_database}/{match('source_pattern')}"
    return subject, source


KDEF_NAME = re.compile(r"^([AB])([FM])(\d\d)([A-Z]{2})(FL|FR|HL|HR|S)\.(JPE?G)$", re.I)


def import_kdef(db: Kdef, where: str) -> ImportResult:
    """KDEF/<AF01>/<AF01ANS.JPG>: session A/B, sex F/M, id, emotion, angle."""
    root = _require_dir(db.path, "KDEF")
    result, rows = ImportResult(), []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        m = KDEF_NAME.match(f.name)
        if not m:
            result.skip("not a KDEF file name", f)
            continue
        session, sex, sid, code, angle = (g.upper() for g in m.groups()[:5])
        if code not in KDEF_EMOTIONS:
            raise DatasetError(f"{f}: unknown KDEF emotion code {code!r}; expected one of "
                               f"{sorted(KDEF_EMOTIONS)}")
        if db.frontal_only and angle != KDEF_FRONTAL:
            result.skip(f"non-frontal angle (kept: {KDEF_FRONTAL})", f)
            continue
        rows.append((str(f), KDEF_EMOTIONS[code], f"{sex}{sid}", "KDEF",
                     f"session={session};angle={angle}", f"KDEF/{sex}{sid}"))
    return _finish(rows, result, "KDEF", root, db, where)


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


def import_ck(db: Ck, where: str) -> ImportResult:
    """CK+ labelled sequences: the last `peak_frames` frames get the sequence's label, the
    first `neutral_frames` are neutral; contempt follows `class_policy`."""
    root = _require_dir(db.path, "CK+")
    images = _require_dir(root / "cohn-kanade-images", "CK+ cohn-kanade-images")
    labels = _require_dir(root / "Emotion", "CK+ Emotion")
    result, rows = ImportResult(), []
    for seq in sorted(p for p in images.glob("*/*") if p.is_dir()):
        subject, seq_id = seq.parent.name, seq.name
        files = sorted(seq.iterdir())
        frames = [f for f in files if CK_FRAME.match(f.name)]
        for f in files:
            if f.is_file() and not CK_FRAME.match(f.name):
                result.skip("not a CK+ frame name", f)
        label_files = sorted((labels / subject / seq_id).glob("*_emotion.txt"))
        if not label_files:
            result.skip("unlabelled sequence", seq)
            continue
        emotion = _read_ck_label(label_files[-1])
        if emotion not in EMOTIONS:
            _outside_seven(result, emotion, label_files[-1], db.class_policy, where)
            continue
        if len(frames) < db.peak_frames + db.neutral_frames:
            raise DatasetError(f"{seq}: {len(frames)} frames, fewer than ck.peak_frames + "
                               f"ck.neutral_frames = {db.peak_frames + db.neutral_frames}")
        neutral = [(f, "neutral") for f in frames[:db.neutral_frames]]
        for f, label in neutral + [(f, emotion) for f in frames[-db.peak_frames:]]:
            n = int(CK_FRAME.match(f.name).group(3))
            rows.append((str(f), label, subject, "CK+", f"sequence={seq_id};frame={n}",
                         f"CK+/{subject}"))
    return _finish(rows, result, "CK+", root, db, where)


JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)\.tiff?$", re.I)


def import_jaffe(db: Jaffe, where: str) -> ImportResult:
    """JAFFE: flat folder of <subject>.<EMOTION><n>.<id>.tiff."""
    root = _require_dir(db.path, "JAFFE")
    result, rows = ImportResult(), []
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
                     f"repeat={rep};id={image_id}", f"JAFFE/{subject.upper()}"))
    return _finish(rows, result, "JAFFE", root, db, where)


def import_label_folders(db: Folders, where: str) -> ImportResult:
    """Generic `<label>/<file>` layout (PFA set, actor photos, your own data): folder
    names go through `labels.LABEL_ALIASES`; one outside the seven follows `class_policy`."""
    root = _require_dir(db.path, db.name)
    result, rows = ImportResult(), []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            result.skip("file outside a label folder", folder)
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        images = [f for f in files if is_image_name(f)]
        for f in files:
            if not is_image_name(f):
                result.skip("not an image file name", f)
        label = lookup_label(folder.name)
        if label is None:
            if images:
                _outside_seven(result, folder.name, images[0], db.class_policy, where,
                               len(images))
            continue
        for f in images:
            subject, source = _subject_ids(db, where, f)
            rows.append((str(f), label, subject, db.name, f"folder={folder.name}", source))
    return _finish(rows, result, db.name, root, db, where)


def import_csv(db: Csv, where: str) -> ImportResult:
    """An image folder plus a labels csv (`csv`, relative to `path`): one row per image
    with `file_column` (relative path), `label_column` and optionally `subject_column`.
    Duplicate rows collapse; conflicting labels, unlisted images and missing files are
    skipped and counted; a file listed with two subjects is an error."""
    file_column, label_column = db.file_column, db.label_column
    subject_column = db.subject_column
    root = _require_dir(db.path, db.name)
    csv_path = root / db.csv
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: labels csv not found ({where}.csv)")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    for option in ("file_column", "label_column", "subject_column"):
        column = getattr(db, option)
        if column and column not in table.columns:
            raise DatasetError(f"{csv_path}: no column {column!r} ({where}.{option}); the "
                               f"columns are {list(table.columns)}")
    listed: dict[str, dict[str, list[int]]] = {}      # file -> label -> csv rows
    person: dict[str, str] = {}                       # file -> subject_column value
    people = table[subject_column] if subject_column else [""] * len(table)
    for i, (name, raw, who) in enumerate(zip(table[file_column], table[label_column], people)):
        row, name, raw, who = i + 2, name.strip(), raw.strip(), who.strip()
        if not name or not raw or (subject_column and not who):
            raise DatasetError(f"{csv_path}: row {row}: empty {file_column!r}, "
                               f"{label_column!r}" + (f" or {subject_column!r}"
                                                      if subject_column else "") + " cell")
        label = lookup_label(raw) or raw.lower()
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DatasetError(f"{csv_path}: row {row}: file {name!r} must be a path relative "
                               "to the database folder")
        rel = Path(name).as_posix()
        listed.setdefault(rel, {}).setdefault(label, []).append(row)
        if person.setdefault(rel, who) != who:
            raise DatasetError(f"{csv_path}: row {row}: {rel} is listed with two subjects, "
                               f"{person[rel]!r} and {who!r} ({where}.subject_column)")

    result, rows, conflicts = ImportResult(), [], {}
    for rel, by_label in sorted(listed.items()):
        f = root / rel
        (label, csv_rows), *others = by_label.items()
        if others:
            conflicts[rel] = sorted(by_label)
            result.skip("conflicting labels in the csv", f)
        elif not f.is_file():
            result.skip("listed in the csv, no such file", f)
        elif not is_image_name(f):
            result.skip("not an image file name", f)
        elif label not in EMOTIONS:
            _outside_seven(result, label, f"{csv_path}: row {csv_rows[0]}: {rel}",
                           db.class_policy, where)
        else:
            subject, source = _subject_ids(db, where, f, person[rel])
            rows.append((str(f), label, subject, db.name, f"row={csv_rows[0]}", source))
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p != csv_path):
        if is_image_name(f) and f.relative_to(root).as_posix() not in listed:
            result.skip("image not listed in the csv", f)
    duplicates = len(table) - sum(len(by_label) for by_label in listed.values())
    result.details["csv"] = {"rows": int(len(table)), "duplicate_rows_collapsed": duplicates,
                             "conflicts": dict(list(conflicts.items())[:10])}
    return _finish(rows, result, db.name, root, db, where)


def import_fer2013(db: Fer2013, where: str) -> ImportResult:
    """FER2013 csv (emotion, pixels, Usage): the manifest (every row its own subject) and,
    as `pixels`, the (N, 48, 48) uint8 images."""
    csv_path = Path(db.path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: FER2013 csv not found")
    df = pd.read_csv(csv_path)
    for col in ("emotion", "pixels"):
        if col not in df.columns:
            raise DatasetError(f"{csv_path}: FER2013 csv has no {col!r} column")
    if db.usage is not None:
        df = df[df["Usage"] == db.usage]
    result, rows, pixels = ImportResult(), [], []
    for i, (code, px) in enumerate(zip(df["emotion"], df["pixels"])):
        if int(code) not in FER2013_EMOTIONS:
            raise DatasetError(f"{csv_path}: row {i + 2}: unknown FER2013 emotion code {code}")
        values = np.array(str(px).split(), dtype=np.int64)
        if values.size != 48 * 48 or values.min() < 0 or values.max() > 255:
            raise DatasetError(f"{csv_path}: row {i + 2}: pixels must be 2304 values 0-255")
        pixels.append(values.reshape(48, 48).astype(np.uint8))
        rows.append((f"{csv_path}#{i}", FER2013_EMOTIONS[int(code)], f"fer2013:{i}",
                     "FER2013", f"row={i}", f"FER2013/{i}"))
    result = _finish(rows, result, "FER2013", csv_path, db, where)
    result.pixels = np.stack(pixels)
    return result


IMPORTERS = {"kdef": import_kdef, "ck": import_ck, "jaffe": import_jaffe,
             "fer2013": import_fer2013, "folders": import_label_folders, "csv": import_csv}


def import_database(key: str, db: dict | Database) -> ImportResult:
    """Import `data.databases.<key>` (its params.yaml options or their model) by `kind`."""
    try:
        db = db if isinstance(db, Database) else database(key, db)
    except ConfigError as e:
        raise DatasetError(str(e)) from None
    return IMPORTERS[db.kind](db, f"data.databases.{key}")
