import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer.core.atomic import atomic_dir, clean_stale, pid_alive, write_json
from fer.data.dataset import Dataset, load_dataset, save_dataset, stratified_subset
from fer.data.labels import EMOTIONS
from fer.data.merge import build_set, check_classes, counts_table


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
    from fer.core.params import compose
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
    with pytest.raises(ValueError, match="KDEF_OL: no images of class\\(es\\) angry, disgust, "
                       "fear, neutral, surprise; .* add KDEF_OL to merge.allow_missing_classes"):
        check_classes("KDEF_OL", ds.manifest)
    assert check_classes("KDEF_OL", ds.manifest, allowed=True) == [
        "angry", "disgust", "fear", "neutral", "surprise"]
    table = counts_table({"A": {"classes": {"angry": 1, "disgust": 0, "fear": 0, "happy": 2,
                                            "neutral": 0, "sad": 0, "surprise": 0},
                                "images": 3}})
    assert table.splitlines()[2] == "| A | 1 | 0 | 0 | 2 | 0 | 0 | 0 | 3 |"


def test_generated_images_only_ever_train(tmp_path):
    """The GAN part is one dataset directory per gan.emotions entry; its rows must carry
    no source subject (fer.data.splits then never validates on them): a manifest that names
    one, written here by hand, is refused."""
    import pandas as pd
    from fer.core.params import compose
    params = compose(["profile=demo"])
    params["crop"]["size"] = 8
    params["gan"]["emotions"] = ["sad", "happy"]
    for e in params["gan"]["emotions"]:
        m = pd.DataFrame({"path": [f"gan_q/{e}/0", f"gan_q/{e}/1"], "label": e, "subject": "",
                          "database": "KDEF_GAN_Q", "source": "generated",
                          "source_subject": ""})
        save_dataset(tmp_path / "build/derived/gan_q" / e, np.zeros((2, 8, 8, 3), np.uint8), m)
    ds = build_set("KDEF_Q", ["gan_q"], params, root=tmp_path)
    assert ds.manifest["label"].tolist() == ["sad"] * 2 + ["happy"] * 2
    assert (ds.manifest["source_subject"] == "").all()
    bad = pd.read_csv(tmp_path / "build/derived/gan_q/happy/manifest.csv",
                      keep_default_na=False)
    bad.loc[0, "source_subject"] = "KDEF/F01"
    save_dataset(tmp_path / "build/derived/gan_q/happy", np.zeros((2, 8, 8, 3), np.uint8),
                 bad.drop(columns=["label_id"]))
    with pytest.raises(ValueError, match="1 generated images name a source subject"):
        build_set("KDEF_Q", ["gan_q"], params, root=tmp_path)
    params["gan"]["emotions"] = ["sad", "fear"]                # a missing gan stage's output
    with pytest.raises(FileNotFoundError, match="gan_q/fear/images.npy: missing"):
        build_set("KDEF_Q", ["gan_q"], params, root=tmp_path)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", ""])
    p.wait()                                             # reaped: the pid runs nothing now
    return p.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = _dead_pid()
    live = subprocess.Popen(["sleep", "60"])
    try:
        stale = [tmp_path / f".out.tmp-{dead}", tmp_path / f".out.old-{dead}"]
        for d in stale:
            d.mkdir()
            (d / "images.npy").write_bytes(b"partial")
        (tmp_path / f".out.tmp-{dead}" / "manifest.csv").write_text("")
        (tmp_path / f".m.json.tmp-{dead}").write_text("{")
        kept = [tmp_path / f".out.tmp-{live.pid}",          # a writer still at work
                tmp_path / f".other.tmp-{dead}"]              # another output's temporary
        for d in kept:
            d.mkdir()
        save_dataset(tmp_path / "out", np.zeros((1, 8, 8, 3), np.uint8), _manifest(["sad"]))
        write_json(tmp_path / "m.json", {"a": 1})
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f".other.tmp-{dead}", f".out.tmp-{live.pid}", "m.json", "out"])
        assert len(load_dataset(tmp_path / "out")) == 1
        assert clean_stale(tmp_path / "other") == [tmp_path / f".other.tmp-{dead}"]
    finally:
        live.kill()
        live.wait()
    assert clean_stale(tmp_path / "out") == [tmp_path / f".out.tmp-{live.pid}"]


def test_temporary_of_a_killed_but_unreaped_writer_is_removed(tmp_path):
    # A SIGKILLed stage whose parent (dvc) died with it stays a zombie until init reaps
    # it; signal 0 still reaches a zombie, yet it will never finish its output.
    writer = subprocess.Popen(["sleep", "60"])
    try:
        writer.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{writer.pid}/stat").read_text().split(") ")[-1][0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / f".out.tmp-{writer.pid}").mkdir()
        assert not pid_alive(writer.pid)
        assert clean_stale(tmp_path / "out") == [tmp_path / f".out.tmp-{writer.pid}"]
    finally:
        writer.wait()


def test_files_and_directories_synced_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.relpath(os.readlink(f"/proc/self/fd/{fd}"), tmp_path)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", os.path.relpath(src, tmp_path)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_dataset(tmp_path / "ds", np.zeros((2, 8, 8, 3), np.uint8), _manifest(["sad"] * 2))
    tmp = f".ds.tmp-{os.getpid()}"
    assert sorted(events[:3]) == [("fsync", f"{tmp}/{f}") for f in
                                  ("counts.json", "images.npy", "manifest.csv")]
    assert events[3:] == [("fsync", tmp), ("rename", tmp), ("fsync", ".")]
    events.clear()
    write_json(tmp_path / "m.json", {"a": 1})
    assert events == [("fsync", f".m.json.tmp-{os.getpid()}"),
                      ("rename", f".m.json.tmp-{os.getpid()}"), ("fsync", ".")]


def test_stratified_subset_keeps_order_and_equal_classes_and_is_seeded():
    labels = ["happy"] * 10 + ["sad"] * 3 + ["angry"] * 6          # no other emotion
    manifest = _manifest(labels)
    manifest["label_id"] = [EMOTIONS.index(x) for x in labels]
    data = Dataset(np.arange(19, dtype=np.uint8).reshape(19, 1, 1, 1), manifest)
    sub = stratified_subset(data, 14, seed=0)                         # 2 per class
    assert sub.manifest["label"].value_counts().to_dict() == {"happy": 2, "sad": 2,
                                                              "angry": 2}
    kept = sub.images.ravel().tolist()
    assert kept == sorted(kept)                                        # order kept
    assert stratified_subset(data, 14, seed=0).images.ravel().tolist() == kept
    assert any(stratified_subset(data, 14, seed=s).images.ravel().tolist() != kept
               for s in range(1, 5))
    assert stratified_subset(data, None, 0) is data and stratified_subset(data, 19, 0) is data


def test_a_content_keyed_entry_keeps_the_first_writers_copy(tmp_path):
    """Two stages side by side may build the same activation cache entry: the second to
    finish must not move the first one's away from under its readers."""
    target = tmp_path / "entry"
    other_writer = ("import sys; from pathlib import Path; from fer.core.atomic import atomic_dir\n"
                    "with atomic_dir(Path(sys.argv[1]), keep_existing=True) as tmp:\n"
                    "    (tmp / 't0.npy').write_bytes(b'first')\n")
    with atomic_dir(target, keep_existing=True) as tmp:
        (tmp / "t0.npy").write_bytes(b"second")
        subprocess.run([sys.executable, "-c", other_writer, str(target)], check=True,
                       cwd=Path(__file__).resolve().parents[1])    # publishes meanwhile
    assert (target / "t0.npy").read_bytes() == b"first"
    first = (target / "t0.npy").stat().st_ino
    with atomic_dir(target, keep_existing=True) as tmp:
        (tmp / "t0.npy").write_bytes(b"third")
    assert (target / "t0.npy").stat().st_ino == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]   # no temporaries left
    with atomic_dir(target) as tmp:                             # outputs are still replaced
        (tmp / "t0.npy").write_bytes(b"new")
    assert (target / "t0.npy").read_bytes() == b"new"
