"""DVC stage aggregate: the grid's cells -> paper Tables 2, 3, 6 and 9 (Markdown + CSV)
and metrics/summary.json for `dvc metrics show` / `dvc exp show`."""
import json
from pathlib import Path

from fer.atomic import atomic_file, write_json
from fer.grid import model_spec
from fer.models import table2
from fer.params import load_params
from fer.report import (table2_markdown, table3_markdown, table3_rows,
                        table6_markdown, table9_markdown, to_csv)


def main() -> None:
    params = load_params()
    grid, tests = params["grid"], params["grid"]["test_sets"]
    cells = [json.loads(Path(f"metrics/finetune/{m}-{t}.json").read_text())
             for t in grid["train_sets"] for m in grid["models"]]
    out = Path("reports/tables")
    outputs = {
        "table3.md": table3_markdown(cells, tests),
        "table3.csv": to_csv(table3_rows(cells, tests)),
        "table6.md": "\n".join(table6_markdown(cells, t) for t in tests),
        "table9.md": table9_markdown(cells),
        "table2.md": table2_markdown(table2([model_spec(params, m, weights="none")
                                             for m in grid["models"]])),
    }
    for name, text in outputs.items():
        with atomic_file(out / name) as f:
            f.write(text)
    write_json("metrics/summary.json", {
        f"{c['model']}-{c['train_set']}": {
            t: {f"accuracy_{k}": round(c["summary"][t]["accuracy"][k], 4)
                for k in ("mean", "std", c["selection"]["key"], "max_test_selected")}
            for t in tests} for c in cells})
    print(outputs["table3.md"])


if __name__ == "__main__":
    main()
