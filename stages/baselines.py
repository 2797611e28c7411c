"""DVC stage baselines: reference models (pretrained, not trained here) scored on every grid
test set's face crops exactly as the grid's models are, plus model size and latency."""
from fer.core.atomic import atomic_dir, write_json, write_text
from fer.core.params import load_params
from fer.core.timing import concurrent_stages, shared_note
from fer.core.tracking import log_datasets, metric_key, mlflow_run
from fer.data.dataset import load_dataset
from fer.data.layout import set_dir
from fer.evaluate.baselines import baselines_markdown, score_reference
from fer.evaluate.metrics import HEADLINE, write_confusions


def main() -> None:
    params = load_params()
    cfg, test_sets = params["report"], params["grid"]["test_sets"]
    tests = {t: load_dataset(set_dir(t)) for t in test_sets}
    models = []
    for name in cfg["reference_models"]:
        row = score_reference(name, tests, cfg)
        with atomic_dir(f"reports/baselines/{name}") as tmp:
            write_confusions(row["tests"], f"{name} (reference, not trained here)", tmp,
                             metric_key)
        models.append(row)
        print(f"{name}: " + ", ".join(f"{t} accuracy {m['accuracy']:.3f}"
                                      for t, m in row["tests"].items())
              + f"; {row['size_mb']} MB, {row['median_ms']} ms median")
    lines = baselines_markdown(models, cfg["level"])
    if note := shared_note(concurrent_stages()):
        lines += ["", note]
    write_text("reports/baselines.md", "\n".join(lines) + "\n")
    write_json("metrics/baselines.json", {"models": models})
    import mlflow
    for r in models:
        with mlflow_run("baselines", r["name"],
                        params={k: r[k] for k in ("package", "runtime", "label_map")},
                        tags={"kind": r["kind"]}):
            log_datasets(test=[set_dir(t) for t in test_sets])
            mlflow.log_metrics({k: r[k] for k in ("size_mb", "median_ms", "p90_ms")}
                               | {f"{metric_key(t)}_{k}": m[k] for t, m in r["tests"].items()
                                  for k in HEADLINE})


if __name__ == "__main__":
    main()
