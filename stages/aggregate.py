"""DVC stage aggregate: the grid's cells -> paper Tables 2, 3, 6 and 9, the paired tests of
the paper's claims and metrics/summary.json for `dvc metrics show` / `dvc exp show`."""
import json
from pathlib import Path

from fer.core.atomic import write_json, write_text
from fer.evaluate.claims import claims_markdown, comparisons, comparisons_csv, judge_claims
from fer.core.params import load_params
from fer.evaluate.tables import (table2_markdown, table3_markdown, table3_rows,
                        table6_markdown, table9_markdown, to_csv)
from fer.evaluate.stats import cell_intervals
from fer.evaluate.summary import headline_metrics, summary_metrics
from fer.core.tracking import flat, metric_key, mlflow_run

BASELINES = Path("metrics/baselines.json")


def main() -> None:
    params = load_params()
    grid, tests, cfg = params["grid"], params["grid"]["test_sets"], params["report"]
    cells = [json.loads(Path(f"metrics/finetune/{m}-{t}.json").read_text())
             for t in grid["train_sets"] for m in grid["models"]]
    intervals = {c["cell"]: cell_intervals(c, tests, cfg) for c in cells}
    refs = json.loads(BASELINES.read_text())["models"] if BASELINES.is_file() else []
    rows = comparisons(cells, tests, cfg)
    judged = judge_claims(cfg["claims"], rows, cfg["alpha"],
                          grid=({c["cell"] for c in cells}, set(tests)))
    out = Path("reports/tables")
    outputs = {
        "table3.md": table3_markdown(cells, tests, intervals, refs, cfg["level"]),
        "table3.csv": to_csv(table3_rows(cells, tests, intervals, refs)),
        "table6.md": "\n".join(table6_markdown(cells, t) for t in tests),
        "table9.md": table9_markdown(cells),
        # each backbone's row as its cells recorded it (fer.train.grid): no Keras here
        "table2.md": table2_markdown([next(c["architecture"] for c in cells if c["model"] == m)
                                      for m in grid["models"]]),
        "claims.md": claims_markdown(judged, rows, cfg, len(cfg["claims"]) - len(judged)),
        "comparisons.csv": comparisons_csv(rows),
    }
    for name, text in outputs.items():
        write_text(out / name, text)
    summary = summary_metrics(cells, tests, intervals, judged)
    write_json("metrics/summary.json", summary)
    write_json("metrics/headline/accuracy.json", headline_metrics(cells, summary, refs, tests))
    import mlflow
    with mlflow_run("aggregate", "aggregate", params={"report": {k: v for k, v in cfg.items()
                                                                  if k != "claims"}}):
        mlflow.log_metrics({metric_key(k): v for k, v in flat(summary).items()})
    print(outputs["table3.md"])
    print(outputs["claims.md"].split("\n## ")[0])


if __name__ == "__main__":
    main()
