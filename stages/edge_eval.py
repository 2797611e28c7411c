"""DVC stage edge_eval: paper Table 10, measured in TF.js itself in each configured runtime
(Node + WASM, headless Chromium + WASM or WebGL), next to Python TF on this machine."""
import json
from pathlib import Path

from fer.core.atomic import write_json, write_text
from fer.core.params import load_params
from fer.core.timing import concurrent_stages, shared_note
from fer.data.dataset import load_dataset, stratified_subset
from fer.data.layout import set_dir
from fer.edge.table10 import measure, table10_markdown, with_references

BASELINES = Path("metrics/baselines.json")


def main() -> None:
    params = load_params()
    e, edge = params["export"], params["edge"]
    cap = edge.get("max_images")
    tests = {t: stratified_subset(load_dataset(set_dir(t)), cap, 0)
             for t in params["grid"]["test_sets"]}
    sizes = {n: json.loads(Path(f"metrics/export/{n}.json").read_text())["size_mb"]
             for n in e["models"]}
    rows, measured = measure(e["models"], e["variants"], sizes, tests, edge)
    refs = (json.loads(BASELINES.read_text())["models"] if BASELINES.is_file() else [])
    # latencies timed while other stages shared the machine (the reference rows' own)
    shared = shared_note(max([concurrent_stages()]
                             + [r.get("concurrent_stages", 1) for r in refs]))
    rows = with_references(rows, refs, tests)
    table = table10_markdown(rows, tests, cap, bool(refs), shared)
    write_text("reports/table10.md", table)
    write_json("metrics/edge.json", rows)
    # for `dvc exp show`: per exported model and variant its size and first runtime's latency
    write_json("metrics/headline/edge.json", {n: {
        v: {"size_mb": sizes[n][v], **({"median_ms": measured[n, v, 0]["median_ms"]}
                                       if (n, v, 0) in measured else {})}
        for v in e["variants"]} for n in e["models"]})
    print(table)


if __name__ == "__main__":
    main()
