import hashlib
import re

import numpy as np
from PIL import Image

from fer.demo_data import SIZES, make_demo_data
from fer.labels import JAFFE_SUBJECTS


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


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_deterministic(demo_root, tmp_path):
    root, _ = demo_root
    again = tmp_path / "again"
    make_demo_data(again, "demo", seed=0)
    assert _digest(again) == _digest(root)
    other = tmp_path / "other"
    make_demo_data(other, "demo", seed=1)
    a = np.asarray(Image.open(next((root / "jaffe").glob("KA.AN1.*"))))
    b = np.asarray(Image.open(next((other / "jaffe").glob("KA.AN1.*"))))
    assert not np.array_equal(a, b)
