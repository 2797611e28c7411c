"""Intervals, bootstrap, paired tests, Holm, claim verdicts and Table 3's CI/reference rows,
checked against hand-computed and scipy values on small fixed inputs."""
import numpy as np
import pytest
from scipy import stats

from fer.evaluate.claims import claims_markdown, comparisons, judge_claims
from fer.evaluate.metrics import classification_metrics
from fer.evaluate.tables import table3_markdown, table3_rows
from fer.evaluate.stats import bootstrap_ci, cell_intervals, holm, mean_ci, paired_test

CFG = {"level": 0.95, "bootstrap_resamples": 2000, "permutation_resamples": 10000,
       "seed": 0, "alpha": 0.05, "metric": "accuracy"}


def test_mean_ci_is_the_student_t_interval():
    lo, hi = mean_ci([0.80, 0.82, 0.84])
    half = 4.302652729911275 * 0.02 / np.sqrt(3)         # t(0.975, 2) * s / sqrt(n), by hand
    assert (lo, hi) == pytest.approx((0.82 - half, 0.82 + half))
    assert lo < 0.82 < hi
    v = [0.61, 0.70, 0.66, 0.72, 0.64]
    assert mean_ci(v) == pytest.approx(stats.t.interval(0.95, 4, np.mean(v), stats.sem(v)))
    assert mean_ci([0.5]) is None and mean_ci([0.5, 0.5]) == (0.5, 0.5)


def test_metrics_match_sklearn_with_an_absent_class():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    y = [0, 1, 1, 2, 3, 4, 5, 5, 0, 2]                    # no 'surprise' (6) in the set
    pred = [0, 1, 2, 2, 3, 6, 5, 5, 1, 2]
    present = sorted(set(y))
    m = classification_metrics(y, np.eye(7)[pred])
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(
        recall_score(y, pred, labels=present, average="macro", zero_division=0))
    assert m["macro_f1"] == pytest.approx(
        f1_score(y, pred, labels=present, average="macro", zero_division=0))
    assert list(m["precision"].values()) == pytest.approx(
        precision_score(y, pred, labels=range(7), average=None, zero_division=0))
    assert m["absent_classes"] == ["surprise"] and m["support"]["sad"] == 2
    assert classification_metrics(y, pred) == m           # classes instead of probabilities
    boot = bootstrap_ci(m["confusion"], 1, 0)            # its estimate: the same metrics
    assert {k: boot[k]["estimate"] for k in boot} == pytest.approx(
        {k: m[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")})


def test_bootstrap_interval_over_test_images():
    cm = np.zeros((7, 7), int)                            # 200 images, 140 right: acc 0.7
    for c in range(7):
        cm[c, c] = 20
        cm[c, (c + 1) % 7] = 200 // 7 - 20 if c < 4 else 8
    cm[0, 0] += 200 - cm.sum()
    acc = np.trace(cm) / cm.sum()
    b = bootstrap_ci(cm, 2000, seed=0)
    assert b["accuracy"]["estimate"] == pytest.approx(acc)
    se = np.sqrt(acc * (1 - acc) / cm.sum())              # normal approximation
    assert b["accuracy"]["low"] == pytest.approx(acc - 1.96 * se, abs=0.01)
    assert b["accuracy"]["high"] == pytest.approx(acc + 1.96 * se, abs=0.01)
    for k in ("balanced_accuracy", "macro_f1"):
        assert b[k]["low"] < b[k]["estimate"] < b[k]["high"]
    assert bootstrap_ci(cm, 2000, seed=0) == b            # seeded
    assert bootstrap_ci(cm, 2000, seed=1) != b
    perfect = bootstrap_ci(np.eye(7, dtype=int) * 5, 500, seed=0)["accuracy"]
    assert (perfect["low"], perfect["high"]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="non-empty square"):
        bootstrap_ci(np.zeros((7, 7)), 10, 0)


def test_paired_test_detects_a_known_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 0.7, 8)
    a = b + 0.10 + rng.normal(0, 0.01, 8)                 # every seed better by ~10 pp
    r = paired_test(a, b)
    assert r["exact"] and r["p"] == pytest.approx(2 / 2 ** 8) and r["min_p"] == 2 / 2 ** 8
    assert r["mean_diff"] == pytest.approx(np.mean(a - b))
    ci = stats.ttest_rel(a, b).confidence_interval()
    assert r["ci"] == pytest.approx((ci.low, ci.high))
    assert 0 < r["ci"][0] < r["mean_diff"] < r["ci"][1]
    # differences 3, 2, 1, -1 pp: 6 of the 16 sign patterns have |sum| >= 5 (by hand)
    base = np.full(4, 0.6)
    assert paired_test(base + [0.03, 0.02, 0.01, -0.01], base)["p"] == pytest.approx(6 / 16)
    null = paired_test(base + [0.01, -0.01, 0.02, -0.02], base)
    assert null["p"] == pytest.approx(1.0) and null["ci"][0] < 0 < null["ci"][1]
    assert paired_test(base, base)["p"] == 1.0
    mc = paired_test(a, b, n_resamples=100, seed=3)       # Monte Carlo when 2**n > resamples
    assert not mc["exact"] and mc["p"] < 0.05 and paired_test(a, b, 100, 3) == mc


def test_holm_step_down_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.01]) == [0.01]


def _cell(model, train_set, accs, test_sets=("CK+",)):
    per_seed = [{"seed": s, "tests": {t: {"accuracy": a, "balanced_accuracy": a, "macro_f1": a,
                                         "confusion": (np.eye(7, dtype=int) * 2).tolist()}
                                     for t in test_sets}} for s, a in enumerate(accs)]
    return {"cell": f"{model}-{train_set}", "model": model, "train_set": train_set,
            "seeds": list(range(len(accs))), "per_seed": per_seed, "selected_seed": 0}


def _grid(seeds=8):
    rng = np.random.default_rng(1)
    ol = rng.uniform(0.5, 0.6, seeds)
    noise = rng.normal(0, 0.02, seeds)
    return [_cell("vgg19", "KDEF_OL", ol), _cell("vgg19", "KDEF_Q", ol + 0.1),
            _cell("irv2", "KDEF_OL", ol + noise), _cell("irv2", "KDEF_Q", ol - noise)]


def test_claim_verdicts():
    rows = comparisons(_grid(), ["CK+"], CFG)
    fams = [r["family"] for r in rows]
    assert fams.count("train sets") == 2 and fams.count("backbones") == 2
    tr = [r for r in rows if r["family"] == "train sets"]
    assert tr[0]["p_holm"] == pytest.approx(min(1, 2 * tr[0]["p"]))  # 2 tests in the family
    claims = [
        {"claim": "Q beats OL (vgg19)", "better": "vgg19-KDEF_Q", "worse": "vgg19-KDEF_OL",
         "test_set": "CK+"},
        {"claim": "OL beats Q (vgg19)", "better": "vgg19-KDEF_OL", "worse": "vgg19-KDEF_Q",
         "test_set": "CK+"},
        {"claim": "Q beats OL (irv2)", "better": "irv2-KDEF_Q", "worse": "irv2-KDEF_OL",
         "test_set": "CK+"}]
    v = judge_claims(claims, rows, 0.05)
    assert [j["verdict"] for j in v] == ["supported", "not supported", "inconclusive"]
    assert v[0]["diff"] == pytest.approx(0.1) and v[1]["diff"] == pytest.approx(-0.1)
    assert v[1]["ci"][1] < 0
    md = claims_markdown(v, rows, CFG)
    assert "| Q beats OL (vgg19) | CK+ | +10.00 |" in md and "**supported**" in md
    assert "8 seeds per cell" in md
    two = comparisons([_cell("a", "X", [0.5, 0.6]), _cell("a", "Y", [0.7, 0.8])], ["CK+"], CFG)
    j = judge_claims([{"claim": "Y > X", "better": "a-Y", "worse": "a-X", "test_set": "CK+"}],
                     two, 0.05)[0]
    assert j["verdict"] == "inconclusive" and "smallest attainable p is 0.5" in j["reason"]


def test_bad_claims_and_unpaired_seeds_are_errors():
    rows = comparisons(_grid(), ["CK+"], CFG)
    with pytest.raises(ValueError, match=r"claims\[0\].*vgg19-KDEF_Q vs irv2-KDEF_OL"):
        judge_claims([{"claim": "x", "better": "vgg19-KDEF_Q", "worse": "irv2-KDEF_OL",
                       "test_set": "CK+"}], rows, 0.05)
    # a claim applies only to a grid that holds its cells and test set (own data, a
    # smaller grid): the others are left out and counted
    grid = ({r["a"] for r in rows} | {r["b"] for r in rows}, {"CK+"})
    claims = [{"claim": "x", "better": "resnet-KDEF_Q", "worse": "irv2-KDEF_OL",
               "test_set": "CK+"},
              {"claim": "y", "better": "vgg19-KDEF_Q", "worse": "vgg19-KDEF_OL",
               "test_set": "JAFFE"},
              {"claim": "Q beats OL", "better": "vgg19-KDEF_Q", "worse": "vgg19-KDEF_OL",
               "test_set": "CK+"}]
    judged = judge_claims(claims, rows, 0.05, grid=grid)
    assert [(j["claim"], j["index"]) for j in judged] == [("Q beats OL", 2)]  # its place
    md = claims_markdown(judged, rows, CFG, left_out=2)
    assert "2 configured claims (`report.claims`) concern cells or test sets outside" in md
    assert "| x |" not in md and "| Q beats OL | CK+ |" in md
    none = claims_markdown([], rows, CFG, left_out=3)
    assert "No claim of `report.claims` concerns this grid" in none and "| Claim |" not in none
    with pytest.raises(ValueError, match=r"claims\[0\] has no 'test_set'"):
        judge_claims([{"claim": "x", "better": "a", "worse": "b"}], rows, 0.05)
    with pytest.raises(ValueError, match=r"report.metric = 'auc': expected one of"):
        comparisons(_grid(), ["CK+"], {**CFG, "metric": "auc"})
    cells = _grid()
    cells[1]["per_seed"][0]["seed"] = 99
    with pytest.raises(ValueError, match="vgg19-KDEF_OL and vgg19-KDEF_Q ran different seeds"):
        comparisons(cells, ["CK+"], CFG)


def test_table3_shows_intervals_and_reference_rows():
    cell = _cell("vgg16", "KDEF_OL", [0.80, 0.82, 0.84], ("CK+", "JAFFE"))
    cell.update(selection={"on": "val", "test_selected": False, "key": "val_selected"},
                selected_seed=1)
    cell["summary"] = {t: {"accuracy": {"mean": 0.82, "std": 0.0163, "n": 3,
                                        "val_selected": 0.82, "max_test_selected": 0.84}}
                       for t in ("CK+", "JAFFE")}
    iv = {cell["cell"]: cell_intervals(cell, ["CK+", "JAFFE"], CFG)}
    assert iv["vgg16-KDEF_OL"]["CK+"]["accuracy"]["mean_ci"] == pytest.approx(mean_ci(
        [0.80, 0.82, 0.84]))
    assert iv["vgg16-KDEF_OL"]["CK+"]["accuracy"]["bootstrap"] == [1.0, 1.0]  # diagonal cm
    ref_m = {"accuracy": 0.5, "bootstrap": {"accuracy": {"low": 0.4, "high": 0.6}}}
    ref = {"name": "face-api", "package": "@vladmandic/face-api@1.7.15",
           "tests": {"CK+": ref_m, "JAFFE": ref_m}}
    md = table3_markdown([cell], ["CK+", "JAFFE"], iv, [ref]).splitlines()
    assert md[0].startswith("| Train dataset | Model | CK+ mean ± std (%) | CK+ 95 % CI of "
                            "mean (%) | CK+ val-selected seed (%) | CK+ val-selected seed "
                            "bootstrap 95 % CI (%) | CK+ max, test-selected")
    assert md[2] == ("| KDEF_OL | vgg16 | 82.00 ± 1.63 | [77.03, 86.97] | 82.00 | "
                     "[100.00, 100.00] | 84.00 | 82.00 ± 1.63 | [77.03, 86.97] | 82.00 | "
                     "[100.00, 100.00] | 84.00 |")
    assert md[3] == ("| reference, not trained here | face-api (@vladmandic/face-api@1.7.15) "
                     "| 50.00 (one model) | — | 50.00 | [40.00, 60.00] | — | 50.00 (one "
                     "model) | — | 50.00 | [40.00, 60.00] | — |")
    rows = table3_rows([cell], ["CK+"], iv, [ref])
    assert rows[0]["kind"] == "trained here" and rows[1]["kind"] == "reference, not trained here"
    assert rows[0]["CK+ mean_ci low"] == 77.03 and rows[1]["CK+ val_selected_bootstrap low"] == 40.0
    assert list(rows[0]) == list(rows[1])                 # one CSV header fits both


def test_comparisons_csv_has_a_header_even_without_pairs():
    from fer.evaluate.claims import COLUMNS, comparisons_csv
    assert comparisons_csv([]) == ",".join(COLUMNS) + "\n"     # a one-cell grid
    rows = comparisons(_grid(), ["CK+"], CFG)
    lines = comparisons_csv(rows).splitlines()
    assert len(lines) == 1 + len(rows) and lines[1].startswith("train sets,vgg19-KDEF_OL,")


def test_table6_says_n_a_for_an_absent_class():
    from fer.evaluate.metrics import classification_metrics
    from fer.evaluate.tables import table6_markdown
    # CK48-like: no neutral image, and no image predicted neutral either; one sad image
    # predicted disgust
    y = [0, 1, 2, 3, 5, 5, 6]
    pred = [0, 1, 2, 3, 5, 1, 6]
    m = classification_metrics(y, np.eye(7)[pred])
    assert m["recall"]["neutral"] == 0.0 and m["support"]["neutral"] == 0   # sklearn's 0
    cell = {"model": "m", "train_set": "T", "selected_seed": 0, "cell": "m-T",
            "selection": {"test_selected": False, "on": "val"},
            "val_summary": {"accuracy": {"mean": 0.5}},
            "per_seed": [{"seed": 0, "tests": {"CK48": m}}]}
    md = table6_markdown([cell], "CK48")
    assert "| neutral | n/a | n/a |" in md
    assert "| disgust | 50 | 100 |" in md and "| sad | 100 | 50 |" in md
    assert "n/a: no CK48 image of that class" in md
    assert "DCGAN" not in md                         # no set of this grid holds DCGAN images


def test_summary_and_headline_metrics_by_hand():
    """A cell selected on val with two seeds: its mean, std, val-selected and best
    test-selected accuracy, rounded to 4 places, intervals beside them; the headline
    keeps mean, std and the selected seed's; a judged claim keyed by its place."""
    from fer.evaluate.summary import headline_metrics, summary_metrics
    acc = {"mean": 0.55556, "std": 0.1, "val_selected": 0.6, "max_test_selected": 0.65}
    cell = {"cell": "vgg19-KDEF_Q", "selection": {"key": "val_selected"},
            "summary": {"CK+": {"accuracy": acc}}}
    iv = {"vgg19-KDEF_Q": {"CK+": {"accuracy": {"mean_ci": (0.4, 0.7),
                                                "bootstrap": (0.5, 0.69999)}}}}
    judged = [{"index": 2, "diff": 0.1234567, "p_holm": 0.01, "verdict": "supported"}]
    s = summary_metrics([cell], ["CK+"], iv, judged)
    assert s["vgg19-KDEF_Q"]["CK+"] == {
        "accuracy_mean": 0.5556, "accuracy_std": 0.1, "accuracy_val_selected": 0.6,
        "accuracy_max_test_selected": 0.65, "accuracy_mean_ci_low": 0.4,
        "accuracy_mean_ci_high": 0.7, "accuracy_val_selected_bootstrap_low": 0.5,
        "accuracy_val_selected_bootstrap_high": 0.7}
    assert s["claims"] == {"claim3": {"better_minus_worse": 0.1235, "p_holm": 0.01,
                                      "supported": 1}}
    refs = [{"name": "face-api", "tests": {"CK+": {"accuracy": 0.33333}}}]
    assert headline_metrics([cell], s, refs, ["CK+"]) == {
        "vgg19-KDEF_Q": {"CK+": {"accuracy_mean": 0.5556, "accuracy_std": 0.1,
                                 "accuracy_val_selected": 0.6}},
        "reference": {"face-api": {"CK+": 0.3333}}}
