"""Configuration drives the DAG: the README's own-data example (no KDEF, no GAN; a
detect: false database of 48-px crops without neutral, a CSV database with a person
column) runs through `dvc repro` to reports/index.html, export and edge_eval, in a fresh
copy of the repository. Its YAML and overrides are read from README.md itself, so the
example cannot drift from what is tested; only sizes for a CPU are added."""
import json
import re
import shlex
import sys

import pytest
import yaml

from dag import DVC as dvc, demo_repo, exp_show_metrics, ran, run
from fer.data.demo import SIZES, write_jaffe, write_labelled_csv, write_tight_crops
from fer.core.params import ROOT, compose
from test_resume import KILL_HOOK, _kill_midway, _leftovers, _outs

# CPU sizes on top of the README's overrides (the demo profile comes first)
SMALL = ["crop.size=32", "augment.copies=1", "grid.models=[vgg16]", "model=vgg16",
         "~export.models", "+export.models={vgg16:WEB_DA}", "export.variants=[float32,uint8]",
         "crossval.models=[vgg16]", "crossval.folds=2", "train.seeds=1", "train.max_images=null", "train.batch_size=16",
         "edge.runtimes=[{where:node,backend:wasm,accuracy:true}]", "edge.runs=1",
         "edge.max_images=7", "report.latency_runs=1", "report.bootstrap_resamples=100"]
ALL_STAGES = {"import@jaffe", "import@ck48", "import@web", "crop@jaffe", "crop@ck48",
              "crop@web", "augment", "merge", "baselines", "finetune@vgg16-WEB_DA",
              "aggregate", "ksearch", "crossval", "gan_quality", "export@vgg16", "edge_eval",
              "report"}


def readme_example() -> tuple[str, str, list[str]]:
    """(conf/data/mine.yaml, conf/merge/mine.yaml, fer.core.params overrides) as README.md
    shows them."""
    text = (ROOT / "README.md").read_text()
    yaml_block = re.search(r"```yaml\n(# conf/data/mine\.yaml.*?)```", text, re.S).group(1)
    data, merge = yaml_block.split("# conf/merge/mine.yaml")
    command = re.search(r"```bash\n(python -m fer\.core\.params data=mine.*?)\n(?:dvc repro)",
                        text, re.S).group(1)
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "fer.core.params"]
    return data, merge, words[3:]


@pytest.mark.slow
def test_readme_own_data_example_runs_to_the_report(tmp_path):
    data_yaml, merge_yaml, overrides = readme_example()
    overrides = overrides + SMALL
    data = tmp_path / "data"
    data.mkdir()
    write_jaffe(data, SIZES["demo"], seed=0)              # data/jaffe, as the demo's
    write_tight_crops(data, seed=0)                       # data/ck48
    write_labelled_csv(data, seed=0)                      # data/web
    repo = tmp_path / "repo"
    env = demo_repo(repo, *overrides, data=data,
                    extra_files={"conf/data/mine.yaml": data_yaml,
                                 "conf/merge/mine.yaml": merge_yaml})
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{repo / 'mlflow.db'}"
    py = sys.executable

    first = run([dvc, "repro"], repo, env)
    assert ran(first) == ALL_STAGES
    stages = run([dvc, "stage", "list"], repo, env)
    assert "gan@" not in stages and "import@kdef" not in stages
    page = (repo / "reports/index.html").read_text()
    ids = re.findall(r'<section id="(\w+)"', page)
    assert "gan" not in ids and "table8" not in ids and "baselines" in ids
    assert "<td>ck48</td>\n<td>36</td>\n<td>not run (detect: false)</td>" in page
    counts = json.loads((repo / "metrics/datasets.json").read_text())
    assert counts == {"WEB_DA": 2 * 25, "CK48": 36, "JAFFE": 70}
    web = json.loads((repo / "metrics/crop/web.json").read_text())
    assert web["detection_rate"] == 1.0 and web["pad"] == 0.25 and "warning" not in web
    cell = json.loads((repo / "metrics/finetune/vgg16-WEB_DA.json").read_text())
    assert set(cell["summary"]) == {"CK48", "JAFFE"} and cell["selection"]["on"] == "val"
    table6 = (repo / "reports/tables/table6.md").read_text()
    assert "| neutral | " in table6 and "n/a |" in table6.split("JAFFE")[0]   # CK48: none
    claims = (repo / "reports/tables/claims.md").read_text()
    assert "KDEF" not in claims and "8 configured claims" in claims
    for note in ("reports/tables/table3.md", "reports/tables/table6.md",
                 "reports/table7_crossval.md"):
        text = (repo / note).read_text()
        assert "PFA" not in text and "DCGAN" not in text, note
    edge = json.loads((repo / "metrics/edge.json").read_text())
    assert edge and (repo / "build/tfjs/vgg16/uint8/model.json").is_file()

    second = run([dvc, "repro"], repo, env)
    assert ran(second) == set() and "up to date" in second

    # execution settings are no params and change no number: with the activation cache
    # moved (FER_CACHE_DIR) a stage re-run from scratch writes the same bytes, and the
    # pipeline stays up to date with the settings switched (FER_EXECUTOR=ray)
    moved = {**env, "FER_CACHE_DIR": str(tmp_path / "moved_cache")}
    before = _outs(repo, "ksearch")
    run([dvc, "repro", "-f", "-s", "ksearch"], repo, moved)
    assert any((tmp_path / "moved_cache").iterdir()) and _outs(repo, "ksearch") == before
    assert "up to date" in run([dvc, "status"], repo, {**moved, "FER_EXECUTOR": "ray"})

    # a label edited in the web set's csv: its chain re-runs (the csv is inside the
    # database folder, hence part of data.dvc), nothing of the test side's crops
    csv = repo / "data/web/labels.csv"
    lines = csv.read_text().splitlines()
    name, label, person = lines[1].split(",")
    lines[1] = ",".join([name, "sad" if label != "sad" else "happy", person])
    csv.write_text("\n".join(lines) + "\n")
    run([dvc, "add", "-q", "data"], repo, env)
    status = run([dvc, "status"], repo, env)
    assert "import@web" in status and "crop@jaffe" not in status and "crop@ck48" not in status

    csv.write_text("\n".join([*lines[:1], f"{name},{label},{person}", *lines[2:]]) + "\n")
    run([dvc, "add", "-q", "data"], repo, env)
    assert ran(run([dvc, "repro"], repo, env)) == set()      # the same bytes as before

    # a test database's option changes: its chain is stale (import@jaffe too: it reads the
    # whole entry), the train side's is not; DVC re-runs what is downstream of a stale
    # stage by itself, so `dvc status` says what matters without re-running it
    run([py, "-m", "fer.core.params", "profile=demo", *overrides, "+data.databases.jaffe.square=false"],
        repo, env)
    status = run([dvc, "status"], repo, env)
    assert "crop@jaffe" in status
    assert not {"import@web", "crop@web", "augment", "crop@ck48", "import@ck48"} & \
        set(re.findall(r"^(\S+):", status, re.M))
    run([py, "-m", "fer.core.params", "profile=demo", *overrides], repo, env)
    assert "up to date" in run([dvc, "status"], repo, env)

    # the cell killed midway, as it publishes its model: the rerun takes its seed from the
    # resume cache and ends with the uninterrupted run's bytes (the metrics file's wall
    # times aside) and no temporaries anywhere
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_HOOK)
    cell, metrics = "finetune@vgg16-WEB_DA", "metrics/finetune/vgg16-WEB_DA.json"

    def without_timings(x):
        if isinstance(x, dict):
            return {k: without_timings(v) for k, v in x.items() if k != "epoch_seconds"}
        return [without_timings(v) for v in x] if isinstance(x, list) else x

    before, record = _outs(repo, cell), json.loads((repo / metrics).read_text())
    _kill_midway(repo, env, cell, "WEB_DA", hook)
    assert any(".WEB_DA.tmp-" in p for p in _leftovers(repo))
    log = run([dvc, "repro", "-f", "-s", cell], repo, env)
    assert "seed 0 (cached)" in log, log[-2000:]
    after = _outs(repo, cell)
    assert {p: m for p, m in after.items() if p != metrics} == \
        {p: m for p, m in before.items() if p != metrics}
    assert without_timings(json.loads((repo / metrics).read_text())) == \
        without_timings(record)
    assert _leftovers(repo) == []

    # `dvc exp run -S` composes params.yaml from conf/ (the user's group files included)
    # with the overrides and re-runs exactly what they touch
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "lock"], repo, env)
    sets = [a for o in ["profile=demo", *overrides, "report.alpha=0.01"] for a in ("-S", o)]
    fourth = run([dvc, "exp", "run", *sets], repo, env)
    # aggregate, the one stage that reads report.alpha, and the page that shows its tables
    assert ran(fourth) == {"aggregate", "report"}
    assert "alpha: 0.01" in (repo / "params.yaml").read_text()

    # `dvc exp show` compares the headline numbers only: per cell and test set the mean,
    # std and selected seed's accuracy, the reference model's, each TF.js variant's size
    # and latency (no GAN here); the same for the workspace and the experiment
    rows = exp_show_metrics(repo, env)
    assert len(rows) >= 2
    expected = headline_leaves(yaml.safe_load((repo / "params.yaml").read_text()))
    for metrics in rows:
        assert len(metrics) == expected == 3 * 2 + 2 + 2 * 2, sorted(metrics)
        for t in ("CK48", "JAFFE"):
            key = f"metrics/headline/accuracy.json:vgg16-WEB_DA.{t}.accuracy_mean"
            assert 0 <= metrics[key] <= 1
    assert headline_leaves(compose(["profile=demo"])) == 69   # the demo: 8 cells x 2 tests x 3
    # + 2 reference + 1 Table 8 model + 2 label fidelity + 2 models x 4 variants x 2


def headline_leaves(p: dict) -> int:
    """The metric leaves `dvc exp show` shows for a configuration: 3 per cell and test
    set, one per reference model and test set, one per GAN quality model and two for
    the label fidelity, and a size and a latency per exported model and TF.js variant."""
    tests = len(p["grid"]["test_sets"])
    gan = bool(p["gan"]["emotions"])
    return (3 * len(p["grid"]["models"]) * len(p["grid"]["train_sets"]) * tests
            + len(p["report"]["reference_models"]) * tests
            + (len(p["gan_quality"]["models"]) + 2 * bool(p["gan_quality"]["classifier"])) * gan
            + 2 * len(p["export"]["models"]) * len(p["export"]["variants"]))
