"""Subject-grouped splits, checked against a person id the test derives itself from the
file names (never from source_subject, the column the splitters read)."""
import re

import numpy as np
import pandas as pd
import pytest

from fer.data.crossval import folds
from fer.data.splits import holdout_by_source


def union_manifest():
    """KDEF photos, their augmented copies, PFA faces made from them (the KDEF subject in
    the file name), CK+ frames and DCGAN images, with source_subject as import/augment/merge
    write it."""
    rows = []
    for s in range(10):
        subj = f"AF{s:02d}"
        for e in ("HA", "SA"):
            rows.append((f"KDEF/{subj}/{subj}{e}S.JPG", "kdef", "KDEF", subj, f"KDEF/{subj}"))
            rows += [(f"KDEF/{subj}/{subj}{e}S.JPG", "kdef_da_ol", "KDEF_DA_OL", subj,
                      f"KDEF/{subj}")] * 3
            rows.append((f"KDEF_GAN_PFA/x/{subj}{e}S_pfa.JPG", "pfa", "KDEF_GAN_PFA",
                         f"{subj}{e}S_pfa", f"KDEF/{subj}"))
    rows += [(f"CK+/S{s:03d}/S{s:03d}_001_{f:08d}.png", "ck", "CK+", f"S{s:03d}",
              f"CK+/S{s:03d}") for s in range(6) for f in range(4)]
    rows += [(f"gan/happy/happy_{i:04d}.png", "gan_q", "KDEF_GAN_Q", f"happy_{i:04d}", "")
             for i in range(7)]
    return pd.DataFrame(rows, columns=["path", "part", "database", "subject", "source_subject"])


def person(path: str) -> str:
    """The real person a file shows, read from its name by the test's own rules."""
    name = path.rsplit("/", 1)[1]
    if m := re.match(r"[AB]([FM]\d\d)", name):          # sessions A and B: one person
        return "kdef-person-" + m.group(1)
    if m := re.match(r"(S\d{3})_", name):
        return "ck-person-" + m.group(1)
    return ""                                    # DCGAN image: no person


def test_grouped_folds_keep_every_person_on_one_side():
    m = union_manifest()
    who = m["path"].map(person).to_numpy()
    fs = folds(m, "grouped", 5, seed=0)
    assert len(fs) == 5
    gan = set(np.flatnonzero(who == ""))
    seen = []
    for tr, va in fs:
        assert not set(tr) & set(va) and not set(va) & gan and gan <= set(tr)
        assert not (set(who[tr]) - {""}) & set(who[va])      # no person on both sides
        seen.extend(va)
    assert sorted(seen) == sorted(set(range(len(m))) - gan)   # each validates once
    # PFA faces validate together with the KDEF photos they were made from
    pfa = np.flatnonzero(m["part"] == "pfa")
    assert any(set(va) & set(pfa) for _, va in fs)


def test_grouping_by_file_or_database_subject_would_leak():
    """The checks above have teeth: the old grouping (database + subject) puts a PFA face
    and its source photo on different sides."""
    m = union_manifest()
    who = m["path"].map(person).to_numpy()
    old = m.assign(source_subject=np.where(m["part"] == "gan_q", "",
                                           m["database"].str.replace("KDEF_DA_OL", "KDEF")
                                           + "/" + m["subject"]))
    leaks = [set(who[tr]) & set(who[va]) - {""} for tr, va in folds(old, "grouped", 5, 0)]
    assert any(leaks)


def test_holdout_by_source_is_subject_grouped():
    m = union_manifest()
    who = m["path"].map(person).to_numpy()
    tr, va = holdout_by_source(m, 0.2, seed=0)
    assert len(set(who[va])) == round(0.2 * 16)             # 16 people: 10 KDEF + 6 CK+
    assert not (set(who[tr]) & set(who[va]))
    assert set(np.flatnonzero(who == "")) <= set(tr)
    assert sorted(np.concatenate([tr, va])) == list(range(len(m)))
    again = holdout_by_source(m, 0.2, seed=0)
    assert np.array_equal(again[1], va)
    assert not np.array_equal(holdout_by_source(m, 0.2, seed=1)[1], va)
    with pytest.raises(ValueError, match="source_subject"):
        holdout_by_source(m.drop(columns="source_subject"), 0.2, 0)


def test_random_folds_are_the_papers_and_leak():
    m = union_manifest()
    fs = folds(m, "random", 5, seed=0)
    assert sorted(np.concatenate([va for _, va in fs]).tolist()) == list(range(len(m)))
    who = m["path"].map(person).to_numpy()
    assert any(set(who[tr]) & set(who[va]) - {""} for tr, va in fs)
    assert [va.tolist() for _, va in fs] == [va.tolist() for _, va in folds(m, "random", 5, 0)]
    with pytest.raises(ValueError, match="random or grouped"):
        folds(m, "loso", 5, 0)


def test_leakage_note_names_only_what_the_union_holds():
    import pandas as pd
    from fer.data.crossval import leakage_note
    paper = pd.DataFrame({
        "part": ["kdef", "kdef_da_ol", "pfa", "gan_q", "ck"],
        "database": ["KDEF", "KDEF", "KDEF_GAN_PFA", "DCGAN", "CK+"],
        "source_subject": ["KDEF/F01", "KDEF/F01", "KDEF/F01", "", "CK+/S005"]})
    note = leakage_note(paper, "kdef_da_ol")
    assert "augmented copies" in note and "derived from it in KDEF_GAN_PFA" in note
    assert "only train on the 1 images without one" in note
    own = pd.DataFrame({"part": ["web", "web", "jaffe", "web_da"],
                        "database": ["WEB", "WEB", "JAFFE", "WEB_DA"],
                        "source_subject": ["WEB/P01", "WEB/P02", "JAFFE/KA", "WEB/P01"]})
    note = leakage_note(own, "web_da")
    assert "PFA" not in note and "DCGAN" not in note and "derived" not in note
    assert "several images of one person" not in note       # a copy is not a second photo
    assert "augmented copies" in note and note.endswith("source subject on one side.")
