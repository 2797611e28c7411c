import numpy as np
import pandas as pd
import pytest

from fer.atomic import atomic_dir
from fer.dataset import load_dataset, save_dataset
from fer.merge import build_set, check_classes, counts_table


def _manifest(labels):
    return pd.DataFrame({"path": [f"f{i}.png" for i in range(len(labels))], "label": labels,
                         "subject": "s1", "database": "T", "source": ""})


def test_roundtrip_memmap(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    labels = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    summary = save_dataset(tmp_path / "ds", imgs, _manifest(labels))
    assert summary["images"] == 7 and summary["classes"]["sad"] == 1
    ds = load_dataset(tmp_path / "ds")
    assert isinstance(ds.images, np.memmap) and np.array_equal(ds.images, imgs)
    assert ds.labels.tolist() == list(range(7))
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [
        "counts.json", "images.npy", "manifest.csv"]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.npy").write_bytes(b"partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    save_dataset(target, np.zeros((1, 8, 8, 3), np.uint8), _manifest(["sad"]))
    with pytest.raises(ValueError, match="uint8"):
        save_dataset(target, np.zeros((1, 8, 8, 3), np.float32), _manifest(["sad"]))
    assert len(load_dataset(target)) == 1                       # old output untouched
    with pytest.raises(FileNotFoundError, match="images.npy: missing"):
        load_dataset(tmp_path / "nope")


def test_build_set_and_counts(tmp_path):
    from fer.params import compose
    params = compose(["profile=demo"])
    params["crop"]["size"] = 8
    for part, labels in {"build/crop/kdef": ["sad", "happy"],
                         "build/derived/kdef_da_ol": ["sad"] * 3}.items():
        save_dataset(tmp_path / part, np.zeros((len(labels), 8, 8, 3), np.uint8),
                     _manifest(labels))
    ds = build_set("KDEF_OL", ["kdef", "kdef_da_ol"], params, root=tmp_path)
    assert len(ds) == 5 and ds.manifest["part"].tolist() == ["kdef"] * 2 + ["kdef_da_ol"] * 3
    with pytest.raises(ValueError, match="unknown dataset part 'kdef_copies'"):
        build_set("KDEF_OL", ["kdef_copies"], params, root=tmp_path)
    params["crop"]["size"] = 16
    with pytest.raises(ValueError, match="expected \\(16, 16, 3\\)"):
        build_set("KDEF_OL", ["kdef"], params, root=tmp_path)
    with pytest.raises(ValueError, match="KDEF_OL: no images of class\\(es\\) angry"):
        check_classes("KDEF_OL", ds.manifest)
    table = counts_table({"A": {"classes": {"angry": 1, "disgust": 0, "fear": 0, "happy": 2,
                                            "neutral": 0, "sad": 0, "surprise": 0},
                                "images": 3}})
    assert table.splitlines()[2] == "| A | 1 | 0 | 0 | 2 | 0 | 0 | 0 | 3 |"
