import numpy as np
import pandas as pd
import pytest

from fer.crossval import folds


def union_manifest():
    rows = []
    for s in range(10):                                   # 10 KDEF subjects, 2 images each
        for i in range(2):
            rows.append(("kdef", "KDEF", f"F{s:02d}"))
            rows += [("kdef_da_ol", "KDEF_DA_OL", f"F{s:02d}")] * 3   # their copies
    rows += [("ck", "CK+", f"S{s:03d}") for s in range(6) for _ in range(4)]
    rows += [("pfa", "KDEF_GAN_PFA", f"KDEF_GAN_PFA:p{i}") for i in range(7)]
    rows += [("gan_q", "KDEF_GAN_Q", f"KDEF_GAN_Q:g{i}") for i in range(7)]
    return pd.DataFrame(rows, columns=["part", "database", "subject"])


def test_grouped_folds_never_split_a_subject_or_validate_synthetic():
    m = union_manifest()
    fs = folds(m, "grouped", 5, seed=0)
    assert len(fs) == 5
    synthetic = set(np.flatnonzero(m["part"].isin(["pfa", "gan_q"])))
    seen = []
    for tr, va in fs:
        assert not set(va) & synthetic and synthetic <= set(tr)
        assert not set(tr) & set(va)
        key = lambda idx: set((m["database"].str.replace("KDEF_DA_OL", "KDEF") + ":"  # noqa
                               + m["subject"]).iloc[idx])
        assert not key(tr) & key(va)                     # no subject on both sides
        seen.extend(va)
    real = set(range(len(m))) - synthetic
    assert sorted(seen) == sorted(real)                  # every real image validated once


def test_random_folds_are_the_papers_and_leak():
    m = union_manifest()
    fs = folds(m, "random", 5, seed=0)
    assert sorted(np.concatenate([va for _, va in fs]).tolist()) == list(range(len(m)))
    leaks = [set(m["subject"].iloc[tr]) & set(m["subject"].iloc[va]) for tr, va in fs]
    assert any(leaks)
    assert [va.tolist() for _, va in fs] == [va.tolist() for _, va in folds(m, "random", 5, 0)]
    with pytest.raises(ValueError, match="random or grouped"):
        folds(m, "loso", 5, 0)
