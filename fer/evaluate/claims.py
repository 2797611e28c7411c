"""Paired seed-by-seed comparisons of grid cells on `report.metric`, Holm-corrected per
family ("train sets": pairs sharing a backbone; "backbones": pairs sharing a train set),
and the verdicts on the paper's claims (reports/tables/claims.md).
"""
from __future__ import annotations

from itertools import combinations

import pandas as pd

from fer.evaluate.metrics import HEADLINE
from fer.evaluate.stats import holm, paired_test

FAMILIES = ("train sets", "backbones")
COLUMNS = ["family", "a", "b", "test_set", "metric", "n", "mean_diff", "ci_low", "ci_high",
           "p", "exact", "min_p", "p_holm", "significant"]


def compare(a: dict, b: dict, test_set: str, metric: str, n_resamples: int, seed: int,
            level: float) -> dict:
    """Cell a vs cell b on one test set, paired by seed."""
    va, vb = ({r["seed"]: r["tests"][test_set][metric] for r in c["per_seed"]} for c in (a, b))
    if set(va) != set(vb):
        raise ValueError(f"cells {a['cell']} and {b['cell']} ran different seeds "
                         f"({sorted(va)} vs {sorted(vb)}): they cannot be paired")
    seeds = sorted(va)
    res = paired_test([va[s] for s in seeds], [vb[s] for s in seeds], n_resamples, seed, level)
    return {"a": a["cell"], "b": b["cell"], "test_set": test_set, "metric": metric, **res}


def comparisons(cells: list[dict], test_sets: list[str], cfg: dict) -> list[dict]:
    """Every paired comparison of both families, with Holm-adjusted p-values and the
    significance flag (adjusted p < cfg['alpha'])."""
    if cfg["metric"] not in HEADLINE:
        raise ValueError(f"report.metric = {cfg['metric']!r}: expected one of {list(HEADLINE)}")
    by = {c["cell"]: c for c in cells}
    models = list(dict.fromkeys(c["model"] for c in cells))
    train_sets = list(dict.fromkeys(c["train_set"] for c in cells))
    pairs = {"train sets": [(f"{m}-{x}", f"{m}-{y}") for m in models
                            for x, y in combinations(train_sets, 2)],
             "backbones": [(f"{x}-{t}", f"{y}-{t}") for t in train_sets
                           for x, y in combinations(models, 2)]}
    rows = []
    for family in FAMILIES:
        fam = [dict(compare(by[a], by[b], t, cfg["metric"], cfg["permutation_resamples"],
                            cfg["seed"], cfg["level"]), family=family)
               for a, b in pairs[family] if a in by and b in by for t in test_sets]
        for r, p in zip(fam, holm([r["p"] for r in fam])):
            r["p_holm"] = p
            r["significant"] = p < cfg["alpha"]
        rows += fam
    return rows


def verdict(better_minus_worse: float, ci, p_holm: float, alpha: float) -> str:
    """supported: significant and positive; not supported: significant the other way, or
    the interval at or below zero; inconclusive: anything else (too few seeds, noise)."""
    if p_holm < alpha and better_minus_worse > 0:
        return "supported"
    if (p_holm < alpha and better_minus_worse < 0) or (ci is not None and ci[1] <= 0):
        return "not supported"
    return "inconclusive"


def judge_claims(claims: list[dict], rows: list[dict], alpha: float,
                 grid: tuple | None = None) -> list[dict]:
    """Each configured claim {claim, better, worse, test_set} with its comparison, the
    difference oriented as better - worse, and its verdict. With `grid` = (cell names,
    test sets), claims about other cells or test sets are left out."""
    index = {(r["a"], r["b"], r["test_set"]): r for r in rows}
    out = []
    for i, c in enumerate(claims):
        for key in ("claim", "better", "worse", "test_set"):
            if key not in c:
                raise ValueError(f"report.claims[{i}] has no {key!r}: {c}")
        if grid is not None and not (c["better"] in grid[0] and c["worse"] in grid[0]
                                     and c["test_set"] in grid[1]):
            continue
        r, sign = index.get((c["better"], c["worse"], c["test_set"])), 1
        if r is None:
            r, sign = index.get((c["worse"], c["better"], c["test_set"])), -1
        if r is None:
            raise ValueError(
                f"report.claims[{i}] ({c['claim']!r}): {c['better']} vs {c['worse']} on "
                f"{c['test_set']} is not a comparison of the grid (cells must share a "
                "backbone or a train set, and both must be in grid.models x grid.train_sets "
                "with the test set in grid.test_sets)")
        diff = sign * r["mean_diff"]
        ci = None if r["ci"] is None else tuple(sorted((sign * r["ci"][0], sign * r["ci"][1])))
        v = verdict(diff, ci, r["p_holm"], alpha)
        reason = ("" if v != "inconclusive" else
                  f"at {r['n']} seeds the smallest attainable p is {r['min_p']:.3g}"
                  if r["min_p"] >= alpha else f"Holm p {r['p_holm']:.3g} ≥ {alpha}")
        out.append({**c, "index": i, "family": r["family"], "n": r["n"], "diff": diff,
                    "ci": ci, "p": r["p"], "p_holm": r["p_holm"], "verdict": v, "reason": reason})
    return out


def comparisons_csv(rows: list[dict]) -> str:
    """All comparisons, one per line (a header only when the grid has no pairs)."""
    cis = [r["ci"] or (None, None) for r in rows]
    return pd.DataFrame([{**r, "ci_low": lo, "ci_high": hi} for r, (lo, hi) in zip(rows, cis)],
                        columns=COLUMNS, dtype=object).to_csv(index=False)


def _pp(x) -> str:
    return f"{x * 100 + 0.0:+.2f}"          # + 0.0: no '-0.00'


def _ci(ci) -> str:
    return "—" if ci is None else f"[{_pp(ci[0])}, {_pp(ci[1])}]"


def claims_markdown(judged: list[dict], rows: list[dict], cfg: dict, left_out: int = 0) -> str:
    """The claims that apply to this grid, then every comparison; `left_out`: how many
    configured claims concern cells or test sets outside the grid."""
    n = rows[0]["n"] if rows else 0
    lvl = f"{cfg['level'] * 100:g} %"
    lines = [f"# Claims, measured ({cfg['metric']}, {n} seeds per cell)", "",
             f"Seed-by-seed paired comparisons: mean difference in percentage points, its "
             f"{lvl} t interval, two-sided paired sign-flip permutation p-value "
             f"({'exact' if rows and rows[0]['exact'] else 'Monte Carlo'}), Holm-corrected "
             f"within its family; significant when the Holm p < {cfg['alpha']}. "
             "Mean over seeds only: no seed or cell was selected on test data here.", ""]
    if left_out:
        lines += [f"{left_out} configured claim{'s' * (left_out != 1)} (`report.claims`) "
                  "concern cells or test sets outside this grid: not listed.", ""]
    if not judged:
        lines.append("No claim of `report.claims` concerns this grid's cells: state your "
                     "own there (docs/evidence.md).")
    else:
        lines += ["| Claim | Test set | better − worse (pp) | " + lvl + " CI (pp) | p | "
                  "Holm p | Verdict |", "|---|---|---|---|---|---|---|"]
    for j in judged:
        lines.append(f"| {j['claim']} | {j['test_set']} | {_pp(j['diff'])} | {_ci(j['ci'])} "
                     f"| {j['p']:.3g} | {j['p_holm']:.3g} | **{j['verdict']}**"
                     + (f" ({j['reason']})" if j["reason"] else "") + " |")
    for family in FAMILIES:
        fam = [r for r in rows if r["family"] == family]
        lines += ["", f"## All comparisons, family \"{family}\" ({len(fam)} tests, Holm)", "",
                  "| A | B | Test set | A − B (pp) | " + lvl + " CI (pp) | p | Holm p | "
                  "significant |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['a']} | {r['b']} | {r['test_set']} | {_pp(r['mean_diff'])} | "
                  f"{_ci(r['ci'])} | {r['p']:.3g} | {r['p_holm']:.3g} | "
                  f"{'yes' if r['significant'] else 'no'} |" for r in fam]
    return "\n".join(lines) + "\n"
