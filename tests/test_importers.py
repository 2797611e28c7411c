import shutil

import numpy as np
import pandas as pd
import pytest

from fer.importers import (DatasetError, import_ck, import_fer2013, import_jaffe,
                           import_kdef, import_label_folders)
from fer.labels import EMOTIONS


def test_kdef_frontal_only(demo_root):
    root, counts = demo_root
    res = import_kdef(root / "KDEF")
    m = res.manifest
    assert len(m) == 112 and set(m["label"]) == set(EMOTIONS)
    assert (m["label"].value_counts() == 16).all()
    assert m["source"].str.contains("angle=S").all()
    assert res.skipped["non-frontal angle (kept: S)"] == counts["KDEF"] - 112
    assert m["subject"].nunique() == 8
    everything = import_kdef(root / "KDEF", frontal_only=False)
    assert len(everything.manifest) == counts["KDEF"]


def test_ck_peak_and_neutral_frames(demo_root):
    root, _ = demo_root
    res = import_ck(root / "CK+", peak_frames=3, neutral_frames=1)
    m = res.manifest
    assert "contempt" not in set(m["label"]) and set(m["label"]) == set(EMOTIONS)
    labelled = res.report()["images"] // 4
    assert (m["label"] == "neutral").sum() == labelled
    assert res.skipped["unlabelled sequence"] == 10
    assert res.skipped["contempt (not one of the seven)"] > 0
    peak = m[m["label"] != "neutral"]
    assert peak["path"].str.endswith(("00000003.png", "00000004.png", "00000005.png")).all()
    one = import_ck(root / "CK+", peak_frames=1, neutral_frames=1).manifest
    assert len(one) == 2 * labelled
    with pytest.raises(DatasetError, match=r"CK\+ has no images of class\(es\) neutral"):
        import_ck(root / "CK+", peak_frames=1, neutral_frames=0)


def test_jaffe(demo_root):
    root, _ = demo_root
    m = import_jaffe(root / "jaffe").manifest
    assert len(m) == 70 and m["subject"].nunique() == 10
    assert (m["label"].value_counts() == 10).all()


def test_label_folders_and_aliases(tmp_path, demo_root):
    root, _ = demo_root
    m = import_label_folders(root / "actors", "actors").manifest
    assert len(m) == 28
    alias = tmp_path / "mine"
    shutil.copytree(root / "actors", alias)
    (alias / "happy").rename(alias / "Happiness")
    (alias / "fear").rename(alias / "afraid")
    (alias / "sad" / "Thumbs.db").write_bytes(b"\0")
    res = import_label_folders(alias, "mine")
    assert res.manifest["label"].value_counts().to_dict() == {e: 4 for e in EMOTIONS}
    assert res.skipped["not an image file name"] == 1


def test_bad_input_errors_name_the_problem(tmp_path, demo_root):
    root, _ = demo_root
    with pytest.raises(DatasetError, match=r"nowhere: KDEF folder not found"):
        import_kdef(tmp_path / "nowhere")
    kdef = tmp_path / "KDEF"
    shutil.copytree(root / "KDEF", kdef)
    bad = kdef / "AF01" / "AF01XXS.JPG"
    shutil.copy(kdef / "AF01" / "AF01ANS.JPG", bad)
    with pytest.raises(DatasetError, match=r"AF01XXS\.JPG: unknown KDEF emotion code 'XX'"):
        import_kdef(kdef)
    bad.unlink()
    for p in kdef.rglob("*SUS.JPG"):
        p.unlink()
    with pytest.raises(DatasetError, match=r"no images of class\(es\) surprise"):
        import_kdef(kdef)
    unknown = tmp_path / "folders"
    (unknown / "bored").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"bored: unknown emotion label 'bored'"):
        import_label_folders(unknown, "x")
    ck = tmp_path / "CK+"
    shutil.copytree(root / "CK+", ck)
    label = sorted((ck / "Emotion").rglob("*_emotion.txt"))[0]
    label.write_text("   9.0000000e+00\n")
    with pytest.raises(DatasetError, match=rf"{label.name}: unknown CK\+ emotion code"):
        import_ck(ck)
    empty = tmp_path / "empty_jaffe"
    empty.mkdir()
    (empty / "README.txt").write_text("x")
    with pytest.raises(DatasetError, match="no usable JAFFE images"):
        import_jaffe(empty)


def test_fer2013_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"emotion": i % 7, "pixels": " ".join(map(str, rng.integers(0, 256, 2304))),
             "Usage": "Training"} for i in range(14)]
    csv = tmp_path / "fer2013.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    res, pixels = import_fer2013(csv)
    assert pixels.shape == (14, 48, 48) and pixels.dtype == np.uint8
    assert res.manifest["label"].value_counts().to_dict() == {e: 2 for e in EMOTIONS}
    rows[3]["emotion"] = 8
    pd.DataFrame(rows).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"fer2013\.csv: row 5: unknown FER2013 emotion"):
        import_fer2013(csv)
