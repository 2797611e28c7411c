import shutil

import numpy as np
import pandas as pd
import pytest

from fer.data.importers import DatasetError, import_database
from fer.data.labels import EMOTIONS


def _import(kind, path, key=None, **options):
    """import_database on a `kind` database at `path` with these options."""
    return import_database(key or kind, {"kind": kind, "path": str(path), **options})


def import_kdef(path, **options):
    return _import("kdef", path, **options)


def import_ck(path, **options):
    return _import("ck", path, **options)


def import_jaffe(path):
    return _import("jaffe", path)


def import_label_folders(path, name):
    return _import("folders", path, key=name, name=name)


def test_kdef_frontal_only(demo_root):
    root, counts = demo_root
    res = import_kdef(root / "KDEF")
    m = res.manifest
    # 24 drawn people, 2 sessions, 7 emotions, one frontal photo each
    assert len(m) == 336 and set(m["label"]) == set(EMOTIONS)
    assert (m["label"].value_counts() == 48).all()
    assert m["source"].str.contains("angle=S").all()
    assert res.skipped["non-frontal angle (kept: S)"] == counts["KDEF"] - 336
    assert m["subject"].nunique() == 24
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
    with pytest.raises(DatasetError, match=r"no images of class\(es\) surprise.*require_all"):
        import_kdef(kdef)
    unknown = tmp_path / "folders"
    (unknown / "bored").mkdir(parents=True)
    shutil.copy(kdef / "AF01" / "AF01ANS.JPG", unknown / "bored" / "a.jpg")
    with pytest.raises(DatasetError, match=r"bored/a\.jpg: label 'bored' is not one of the "
                       r"seven emotions .* set data\.databases\.x\.class_policy: skip"):
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
    res = _import("fer2013", csv)
    pixels = res.pixels
    assert pixels.shape == (14, 48, 48) and pixels.dtype == np.uint8
    assert res.manifest["label"].value_counts().to_dict() == {e: 2 for e in EMOTIONS}
    rows[3]["emotion"] = 8
    pd.DataFrame(rows).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"fer2013\.csv: row 5: unknown FER2013 emotion"):
        _import("fer2013", csv)


# --- bring your own databases (issue 9) and source subjects (issue 12) ------------------

import csv  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402

from fer.data.demo import write_labelled_csv, write_tight_crops  # noqa: E402
from fer.core.params import ROOT  # noqa: E402

SUBJECT = r"^(?P<subject>S\d+)_"


@pytest.fixture(scope="module")
def byod(tmp_path_factory):
    root = tmp_path_factory.mktemp("byod")
    return root, write_tight_crops(root, seed=0), write_labelled_csv(root, seed=0)


def _csv_spec(root, **extra):
    return {"kind": "csv", "name": "mine", "path": str(root / "web"),
            "csv": "labels.csv", "file_column": "image", "label_column": "expression",
            "subject_column": "person", **extra}


def test_csv_database_counts_duplicates_conflicts_and_unlisted(byod):
    root, _, n_images = byod
    # what the csv holds, read here independently of the importer
    with open(root / "web" / "labels.csv") as f:
        table = list(csv.DictReader(f))
    by_file = {}
    for row in table:
        by_file.setdefault(row["image"], []).append(row["expression"])
    on_disk = {f"images/{p.name}" for p in (root / "web" / "images").iterdir()}
    conflicting = {f for f, labels in by_file.items() if len(set(labels)) > 1}
    without_file = set(by_file) - on_disk
    unlisted = on_disk - set(by_file)
    good = set(by_file) - conflicting - without_file
    assert (len(conflicting), len(without_file), len(unlisted)) == (1, 1, 2)

    res = import_database("mine", _csv_spec(root))
    m, report = res.manifest, res.report()
    assert len(m) == len(good) == n_images - 3
    assert {Path(p).relative_to(root / "web").as_posix() for p in m["path"]} == good
    assert all(by_file[f"images/{Path(p).name}"][0] == label
               for p, label in zip(m["path"], m["label"]))
    assert report["skipped"] == {"conflicting labels in the csv": 1,
                                 "listed in the csv, no such file": 1,
                                 "image not listed in the csv": 2}
    assert report["skipped_examples"]["listed in the csv, no such file"].endswith(
        "img_0999.png")
    assert report["csv"]["rows"] == len(table)
    assert report["csv"]["duplicate_rows_collapsed"] == len(table) - len(by_file) - 1
    assert report["csv"]["conflicts"] == {f: sorted(set(by_file[f])) for f in conflicting}
    assert sorted(m["subject"].unique()) == ["P01", "P02", "P03", "P04"]
    assert (m["source_subject"] == "mine/" + m["subject"]).all()

    with pytest.raises(DatasetError, match=r"labels\.csv: no column 'file' "
                       r"\(data\.databases\.mine\.file_column\)"):
        import_database("mine", _csv_spec(root, file_column="file"))
    with pytest.raises(DatasetError,
                       match=r"data\.databases\.mine\.csv: missing \(required key\)"):
        import_database("mine", {k: v for k, v in _csv_spec(root).items() if k != "csv"})


def test_subject_pattern_gives_real_subjects_or_names_the_file(byod, tmp_path):
    root, _, _ = byod
    spec = {"kind": "folders", "name": "ck48", "path": str(root / "ck48"),
            "class_policy": "skip", "require_all": False, "subject_pattern": SUBJECT}
    m = import_database("tight", spec).manifest
    names = [Path(p).name for p in m["path"]]
    assert list(m["subject"]) == [n.split("_")[0] for n in names]
    assert m["subject"].nunique() == 6
    assert (m["source_subject"] == "ck48/" + m["subject"]).all()
    # without a pattern: every file its own subject and source person (its augmented
    # copies then validate with it), or, for derived faces of unknown source, train-only
    plain = import_database("tight", {**spec, "subject_pattern": None}).manifest
    assert plain["subject"].nunique() == len(plain)
    assert list(plain["source_subject"]) == ["ck48/" + Path(p).stem for p in plain["path"]]
    derived = import_database("tight", {**spec, "subject_pattern": None,
                                     "unknown_subjects": "train_only"}).manifest
    assert (derived["source_subject"] == "").all()
    with pytest.raises(ValueError, match="unknown_subjects = 'maybe'"):
        import_database("tight", {**spec, "unknown_subjects": "maybe"})

    odd = tmp_path / "odd"
    shutil.copytree(root / "ck48", odd)
    shutil.copy(odd / "happy" / "S001_005_00000012.png", odd / "happy" / "portrait.png")
    with pytest.raises(DatasetError, match=r"happy/portrait\.png: file name does not match "
                       r"data\.databases\.tight\.subject_pattern"):
        import_database("tight", {**spec, "path": str(odd)})
    with pytest.raises(DatasetError, match=r"subject_pattern = .* no named group"):
        import_database("tight", {**spec, "subject_pattern": r"^S\d+"})


def test_class_policy_and_require_all(byod, demo_root, tmp_path):
    root, n_tight, _ = byod
    spec = {"kind": "folders", "name": "ck48", "path": str(root / "ck48")}
    with pytest.raises(DatasetError, match=r"contempt/S001_002_00000012\.png: label 'contempt' is not "
                       r"one of the seven.*data\.databases\.tight\.class_policy: skip"):
        import_database("tight", spec)
    with pytest.raises(DatasetError, match=r"no images of class\(es\) neutral.*"
                       r"data\.databases\.tight\.require_all: false"):
        import_database("tight", {**spec, "class_policy": "skip"})
    res = import_database("tight", {**spec, "class_policy": "skip", "require_all": False})
    contempt = len(list((root / "ck48" / "contempt").iterdir()))
    assert len(res.manifest) == n_tight - contempt == 36
    assert res.report()["skipped"] == {"contempt (not one of the seven)": contempt}
    assert res.report()["skipped_examples"]["contempt (not one of the seven)"].endswith(
        "contempt/S001_002_00000012.png")
    assert res.report()["classes"]["neutral"] == 0

    demo, _ = demo_root
    ck = {"kind": "ck", "path": str(demo / "CK+")}
    with pytest.raises(DatasetError, match=r"_emotion\.txt: label 'contempt'.*"
                       r"data\.databases\.ck\.class_policy: skip"):
        import_database("ck", {**ck, "class_policy": "fail"})
    assert import_database("ck", ck).skipped["contempt (not one of the seven)"] == 4


def test_options_are_checked_by_kind(byod):
    root, _, _ = byod
    tight = str(root / "ck48")
    cases = [
        ({"kind": "folders", "path": tight},           # was KeyError: 'name'
         r"data\.databases\.x\.name: missing \(required key\)"),
        ({"kind": "folders", "name": "t", "path": tight, "nmae": "t"},
         r"data\.databases\.x\.nmae: unknown key \(known here: .*name"),
        ({"kind": "kdef", "path": tight, "class_policy": "skip"},
         r"data\.databases\.x\.class_policy: unknown key"),
        ({"kind": "folder", "path": tight},
         r"data\.databases\.x\.kind = 'folder': unknown database kind; expected one of kdef"),
        ({"name": "t", "path": tight}, r"data\.databases\.x\.kind: missing"),
        ({"kind": "folders", "name": "t", "path": tight, "class_policy": "drop"},
         r"data\.databases\.x\.class_policy = 'drop': input should be 'skip' or 'fail'"),
        ({"kind": "folders", "name": "t", "path": tight, "source_database": "KDEF"},
         r"data\.databases\.x: source_pattern and source_database go together"),
    ]
    for spec, message in cases:
        with pytest.raises(DatasetError, match=message):
            import_database("x", spec)


def _configured(key, demo):
    """The entry of conf/data/default.yaml, pointed at the demo data."""
    spec = dict(yaml.safe_load((ROOT / "conf/data/default.yaml").read_text())
                ["databases"][key])
    spec["path"] = str(demo / Path(spec["path"]).relative_to("data"))
    return spec


def test_source_subject_links_pfa_faces_to_their_kdef_person(demo_root):
    demo, _ = demo_root
    kdef = import_database("kdef", _configured("kdef", demo)).manifest
    pfa = import_database("pfa", _configured("pfa", demo)).manifest
    # the person, read here from the KDEF names: AF01ANS.JPG -> sex F, id 01
    person = {Path(p).name: Path(p).name[1:4] for p in kdef["path"]}
    kdef_source = dict(zip(kdef["path"].map(lambda p: person[Path(p).name]),
                           kdef["source_subject"]))
    assert len(kdef_source) == 24 and all(v.startswith("KDEF/") for v in kdef_source.values())
    for path, source in zip(pfa["path"], pfa["source_subject"]):
        name = Path(path).name
        assert re.fullmatch(r"[AB][FM]\d\d(AF|AN|DI|HA|NE|SA|SU)S\.JPG", name)
        assert name in person                       # named after an existing KDEF photo
        assert source == kdef_source[name[1:4]]     # ... and linked to that person's rows
    assert set(pfa["source_subject"]) == set(kdef["source_subject"])

    both = pd.concat([kdef, pfa], ignore_index=True)
    who = both["path"].map(lambda p: Path(p).name[1:4]).to_numpy()   # the test's own person id

    def leaks(groups):
        """Folds where one person is on both sides."""
        k = min(5, len(set(groups)))
        return sum(bool(set(who[tr]) & set(who[va]))
                   for tr, va in GroupKFold(k).split(who, groups=groups))
    assert leaks(both["path"].to_numpy()) > 0           # grouping by file leaks
    assert leaks(both["database"].to_numpy()) > 0       # grouping by database leaks
    assert leaks(both["source_subject"].to_numpy()) == 0  # by source subject it does not


def test_every_configured_database_has_source_subjects(demo_root):
    demo, _ = demo_root
    expected = {"kdef": r"KDEF/[FM]\d\d", "ck": r"CK\+/S\d{3}", "jaffe": r"JAFFE/[A-Z]{2}",
                "pfa": r"KDEF/[FM]\d\d",
                "actors": r"actors/\w+"}              # actors: each image its own person
    for key, pattern in expected.items():
        m = import_database(key, _configured(key, demo)).manifest
        assert list(m.columns)[-1] == "source_subject"
        assert m["source_subject"].str.fullmatch(pattern).all(), key


def test_import_stage_writes_the_counts(byod, tmp_path, monkeypatch):
    from stages import import_data
    root, _, _ = byod
    from fer.core.params import compose
    params = compose(["profile=demo"])
    params["data"]["databases"]["mine"] = _csv_spec(root)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    import_data.main("mine")
    report = json.loads(Path("metrics/import/mine.json").read_text())
    assert report["images"] == 25 and report["train_only"] == 0
    assert report["skipped"]["image not listed in the csv"] == 2
    manifest = pd.read_csv("build/import/mine/manifest.csv", keep_default_na=False)
    assert manifest["source_subject"].str.fullmatch(r"mine/P0[1-4]").all()


def test_csv_subject_column_and_paths(byod, tmp_path):
    root, _, _ = byod
    m = import_database("mine", _csv_spec(root)).manifest
    # the person column, read here independently of the importer
    with open(root / "web" / "labels.csv") as f:
        person = {r["image"]: r["person"] for r in csv.DictReader(f)}
    rel = [Path(p).relative_to(root / "web").as_posix() for p in m["path"]]
    assert list(m["subject"]) == [person[r] for r in rel]
    assert list(m["source_subject"]) == [f"mine/{person[r]}" for r in rel]
    with pytest.raises(DatasetError, match=r"no column 'who' \(data\.databases\.mine\."
                       r"subject_column\)"):
        import_database("mine", _csv_spec(root, subject_column="who"))
    with pytest.raises(DatasetError, match="subject_column and subject_pattern"):
        import_database("mine", _csv_spec(root, subject_pattern=SUBJECT))
    # a labels csv outside the database folder would be no DVC dependency: refused,
    # naming the option, before any work (the configuration check runs the same code)
    for outside in ("../labels.csv", "/tmp/labels.csv", "sub/../../labels.csv"):
        with pytest.raises(DatasetError, match=r"data\.databases\.mine\.csv = .*inside the "
                           r"database folder"):
            import_database("mine", _csv_spec(root, csv=outside))
    from fer.core.params import compose
    from fer.core.schema import ConfigError, validate
    params = compose(["profile=demo"])
    params["data"]["databases"]["mine"] = _csv_spec(root, csv="../labels.csv")
    with pytest.raises(ConfigError, match=r"data\.databases\.mine\.csv"):
        validate(params)
    # one file, two people: an error naming the row
    odd = tmp_path / "web"
    shutil.copytree(root / "web", odd)
    with open(odd / "labels.csv", "a") as f:
        f.write("images/img_0001.png,angry,P77\n")
    with pytest.raises(DatasetError, match=r"labels\.csv: row 32: images/img_0001\.png is "
                       r"listed with two subjects, 'P01' and 'P77'"):
        import_database("mine", {**_csv_spec(root), "path": str(odd)})
