"""The grid's numbers as metrics files: metrics/summary.json (every cell's accuracy,
intervals and the claims' tests; MLflow's aggregate run) and the headline that
`dvc exp show` compares experiments on."""
from __future__ import annotations


def summary_metrics(cells: list[dict], tests: list[str], intervals: dict,
                    judged: list[dict]) -> dict:
    """Per cell and test set the accuracy (mean, std, selected and best seed's) and its
    intervals; per judged claim (`claim<place in report.claims>`) difference, p, verdict."""
    summary = {}
    for c in cells:
        key = c["selection"]["key"]
        summary[c["cell"]] = {t: {
            **{f"accuracy_{k}": round(c["summary"][t]["accuracy"][k], 4)
               for k in ("mean", "std", key, "max_test_selected")},
            **({"accuracy_mean_ci_low": round(iv["mean_ci"][0], 4),
                "accuracy_mean_ci_high": round(iv["mean_ci"][1], 4)} if iv["mean_ci"] else {}),
            f"accuracy_{key}_bootstrap_low": round(iv["bootstrap"][0], 4),
            f"accuracy_{key}_bootstrap_high": round(iv["bootstrap"][1], 4)}
            for t in tests for iv in [intervals[c["cell"]][t]["accuracy"]]}
    if judged:
        summary["claims"] = {f"claim{j['index'] + 1}": {
            "better_minus_worse": round(j["diff"], 4), "p_holm": round(j["p_holm"], 4),
            "supported": int(j["verdict"] == "supported")} for j in judged}
    return summary


def headline_metrics(cells: list[dict], summary: dict, refs: list[dict],
                     tests: list[str]) -> dict:
    """What experiments are compared on: per cell and test set the mean, std and selected
    seed's accuracy; each reference model's accuracy per test set."""
    headline = {c["cell"]: {t: {k: summary[c["cell"]][t][k]
                                for k in ("accuracy_mean", "accuracy_std",
                                          f"accuracy_{c['selection']['key']}")}
                            for t in tests} for c in cells}
    if refs:
        headline["reference"] = {r["name"]: {t: round(m["accuracy"], 4)
                                             for t, m in r["tests"].items()} for r in refs}
    return headline
