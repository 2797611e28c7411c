"""Calls into MLflow's stores and the seconds spent in them, over a whole DAG run.

    FER_MLFLOW_CALLS=$PWD/mlflow_calls.jsonl PYTHONPATH=bench/mlflow_calls:$PWD \\
        python -m fer.train.parallel_repro          # (or make demo's steps)
    python bench/mlflow_calls.py mlflow_calls.jsonl

Every process with bench/mlflow_calls/ on PYTHONPATH (its sitecustomize.py) counts and
times each public method of MLflow's SQLite tracking and registry stores and of its local
artifact repository (nested calls once, at the outermost), and appends one JSON line at
exit. This prints, as JSON, per stage kind (finetune, gan, ...) and in total: the calls,
the writes among them (log_*, set_*, create_*, update_*, record_*, delete_*), the
seconds in all calls and the artifact repository's share."""
import json
import sys
from collections import defaultdict

WRITES = ("log_", "set_", "create_", "update_", "record_", "delete_", "finalize_")


def main(path):
    per = defaultdict(lambda: defaultdict(float))
    for line in open(path):
        rec = json.loads(line)
        argv = rec["argv"]
        kind = (argv[0].rsplit(".", 1)[-1] if argv and argv[0].startswith("stages.")
                else next((a.rsplit("/", 1)[-1].removesuffix(".py") for a in argv
                           if "stages" in a), "other"))
        for name, (n, sec) in rec["calls"].items():
            for k in (kind, "total"):
                per[k]["calls"] += n
                per[k]["seconds"] += sec
                per[k]["writes"] += n if name.split(".", 1)[1].startswith(WRITES) else 0
                per[k]["artifact_seconds"] += sec if name.startswith("artifact.") else 0
                per[k]["log_model_seconds"] += sec if name == "pyfunc.log_model" else 0
    print(json.dumps({k: {m: round(v, 1) for m, v in d.items()} for k, d in sorted(per.items())},
                     indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
