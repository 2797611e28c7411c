import hashlib
import re

import numpy as np
from PIL import Image

from fer.data.demo import SIZES, write_actors, write_jaffe, write_labelled_csv, \
    write_tight_crops
from fer.data.labels import JAFFE_SUBJECTS


def test_native_layouts_and_counts(demo_root):
    root, counts = demo_root
    s = SIZES["demo"]
    kdef = sorted((root / "KDEF").rglob("*.JPG"))
    frontal = [p for p in kdef if p.stem.endswith("S")]
    assert len(frontal) == 2 * s.kdef_per_sex * len(s.kdef_sessions) * 7
    assert len(kdef) == counts["KDEF"] > len(frontal)            # non-frontal angles exist
    assert all(re.fullmatch(r"[AB][FM]\d\d(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)", p.stem)
               and p.parent.name == p.stem[:4] for p in kdef)
    with Image.open(frontal[0]) as im:
        assert im.mode == "RGB" and im.size == (281, 381)

    frames = sorted((root / "CK+" / "cohn-kanade-images").glob("S*/*/S*_*_*.png"))
    assert len(frames) == counts["CK+"]
    labels = sorted((root / "CK+" / "Emotion").glob("S*/*/*_emotion.txt"))
    codes = {int(float(p.read_text())) for p in labels}
    assert 2 in codes and codes <= set(range(1, 8))              # contempt included
    seqs = {p.parent for p in frames}
    assert len(seqs) > len(labels)                               # unlabelled sequences
    with Image.open(frames[0]) as im:
        assert im.mode == "L"

    jaffe = sorted((root / "jaffe").glob("*.tiff"))
    assert len(jaffe) == counts["jaffe"] == 70
    assert {p.name.split(".")[0] for p in jaffe} == set(JAFFE_SUBJECTS)
    modes = set()
    for p in jaffe:
        with Image.open(p) as im:
            modes.add(im.mode)
            assert im.size == (128, 128)
    assert modes == {"L", "P"}
    for folder in ("KDEF_GAN_PFA", "actors"):
        assert sorted(p.name for p in (root / folder).iterdir()) == [
            "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    # each PFA face is named after the frontal KDEF photo it derives from, in the folder
    # of that photo's emotion: one per KDEF (session, subject, emotion) of pfa_sessions
    pfa = sorted((root / "KDEF_GAN_PFA").rglob("*.JPG"))
    kdef_frontal = {p.name: p for p in frontal}
    code = {"AF": "fear", "AN": "angry", "DI": "disgust", "HA": "happy", "NE": "neutral",
            "SA": "sad", "SU": "surprise"}
    assert len(pfa) == counts["KDEF_GAN_PFA"] == 7 * 2 * s.kdef_per_sex * len(s.pfa_sessions)
    assert all(p.name in kdef_frontal and p.parent.name == code[p.name[4:6]] for p in pfa)


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_deterministic(demo_root, tmp_path):
    """The same seed writes the same bytes, another seed other faces. Every database is
    drawn by the same seeded renderer (a generator per database, subject, emotion and
    frame), so two of them written again stand for the whole set: JAFFE (greyscale and
    palette TIFFs) and the actors (JPEG label folders)."""
    root, _ = demo_root
    sizes = SIZES["demo"]

    def write(where, seed):
        write_jaffe(where, sizes, seed)
        write_actors(where, sizes, seed)
        return where

    again = write(tmp_path / "again", 0)
    for db in ("jaffe", "actors"):
        assert _digest(again / db) == _digest(root / db), db
    other = write(tmp_path / "other", 1)
    for db in ("jaffe", "actors"):
        assert _digest(other / db) != _digest(root / db), db
    a = np.asarray(Image.open(next((root / "jaffe").glob("KA.AN1.*"))))
    b = np.asarray(Image.open(next((other / "jaffe").glob("KA.AN1.*"))))
    assert not np.array_equal(a, b)


def test_bring_your_own_stand_ins(tmp_path):
    assert write_tight_crops(tmp_path, seed=0) == 42
    tight = tmp_path / "ck48"
    assert sorted(p.name for p in tight.iterdir()) == [
        "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"]   # no neutral
    for p in tight.rglob("*.png"):
        assert re.fullmatch(r"S00[1-6]_00[1-7]_00000012", p.stem)
        with Image.open(p) as im:
            assert im.size == (48, 48) and im.mode == "L"
    assert write_labelled_csv(tmp_path, seed=0) == 28
    lines = (tmp_path / "web" / "labels.csv").read_text().splitlines()
    assert lines[0] == "image,expression,person" and len(lines) == 1 + 26 + 2 + 1 + 1
    rows = [tuple(line.split(",")[:2]) for line in lines[1:]]
    assert len(rows) - len(set(rows)) == 2                        # exact duplicate rows
    files = [f for f, _ in rows]
    assert len({f for f in files if len({lab for g, lab in rows if g == f}) > 1}) == 1
    on_disk = {f"images/{p.name}" for p in (tmp_path / "web" / "images").iterdir()}
    assert len(on_disk - set(files)) == 2 and len(set(files) - on_disk) == 1
    again = tmp_path / "again"
    write_tight_crops(again, seed=0)
    assert _digest(again / "ck48") == _digest(tight)
