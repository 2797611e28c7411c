"""Where the stages write, in one place (dvc.yaml names the same folders): crops per
database, derived parts (augment.part, gan.part: one <emotion>/ per gan stage), train
sets (merge.train_sets) and test sets (merge.test_sets)."""
from __future__ import annotations

from pathlib import Path

CROP_DIR, DERIVED_DIR = Path("build/crop"), Path("build/derived")
TRAIN_DIR, TEST_DIR = Path("build/datasets"), Path("build/testsets")


def set_dir(name: str, root=".") -> Path:
    """The directory of the train or test set `name`, as the merge stage wrote it."""
    for parent in (TRAIN_DIR, TEST_DIR):
        if (Path(root) / parent / name).is_dir():
            return Path(root) / parent / name
    raise FileNotFoundError(f"no train or test set {name!r} under {TRAIN_DIR}/ or "
                            f"{TEST_DIR}/: is it defined in merge.train_sets/test_sets, and "
                            "has the merge stage run (dvc repro merge)?")
