"""Configuration drives the DAG: a user's own databases (no KDEF, no GAN) through `dvc
repro` with only YAML written, in a fresh copy of the repository."""
import json
import shutil
import sys

import pytest

from dag import DVC as dvc, demo_repo, ran, run
from test_resume import KILL_HOOK, _kill_midway, _leftovers, _outs

DATA = """\
root: data
databases:
  jaffe: {kind: jaffe, path: data/jaffe}
  faces: {kind: folders, name: FACES, path: data/KDEF_GAN_PFA, require_all: true}
  ck: {kind: ck, path: data/CK+, peak_frames: 3, neutral_frames: 1}
"""
MERGE = """\
train_sets:
  MINE: [jaffe, jaffe_da, faces]
test_sets:
  CKT: [ck]
"""
OVERRIDES = ["data=byo", "merge=byo", "crop.size=32", "augment.source=jaffe",
             "augment.part=jaffe_da", "augment.copies=1", "gan.emotions=[]",
             "grid.models=[vgg16]", "grid.train_sets=[MINE]", "grid.test_sets=[CKT]",
             "train.seeds=1", "train.max_images=null", "train.batch_size=16",
             # the other protocols, named for this configuration
             "model=vgg16", "ksearch.train_set=MINE", "crossval.sets=[MINE,CKT]",
             "crossval.models=[vgg16]", "gan_quality.models=[]", "gan_quality.train_set=MINE",
             "gan_quality.gan_set=MINE", "export.model=vgg16", "export.train_set=MINE"]


@pytest.mark.slow
def test_own_databases_without_kdef_or_gan_run_end_to_end(tmp_path, demo_root):
    data = tmp_path / "data"
    shutil.copytree(demo_root[0], data)
    shutil.rmtree(data / "KDEF")                           # the user has no KDEF
    repo = tmp_path / "repo"
    env = demo_repo(repo, *OVERRIDES, data=data,
                    extra_files={"conf/data/byo.yaml": DATA, "conf/merge/byo.yaml": MERGE})
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{repo / 'mlflow.db'}"
    py = sys.executable

    first = run([dvc, "repro", "aggregate"], repo, env)
    assert ran(first) == {"import@jaffe", "import@faces", "import@ck", "crop@jaffe",
                           "crop@faces", "crop@ck", "augment", "merge", "baselines",
                           "finetune@vgg16-MINE", "aggregate"}
    stages = run([dvc, "stage", "list"], repo, env)
    assert "gan@" not in stages and "import@kdef" not in stages
    counts = json.loads((repo / "metrics/datasets.json").read_text())
    assert counts["MINE"] == 2 * 70 + 56 and set(counts) == {"MINE", "CKT"}
    cell = json.loads((repo / "metrics/finetune/vgg16-MINE.json").read_text())
    assert set(cell["summary"]) == {"CKT"} and cell["selection"]["on"] == "val"
    assert (repo / "build/testsets/CKT/images.npy").is_file()
    assert "MINE" in (repo / "reports/tables/table3.md").read_text()

    second = run([dvc, "repro", "aggregate"], repo, env)
    assert ran(second) == set() and "up to date" in second

    # a test database's option changes: exactly its chain re-runs, the train side does not
    run([py, "-m", "fer.params", "profile=demo", *OVERRIDES,
         "data.databases.ck.neutral_frames=2"], repo, env)
    third = run([dvc, "repro", "aggregate"], repo, env)
    assert ran(third) == {"import@ck", "crop@ck", "merge", "baselines",
                          "finetune@vgg16-MINE", "aggregate"}

    # the cell killed midway, as it publishes its model: the rerun takes its seed from the
    # resume cache and ends with the uninterrupted run's bytes (the metrics file's wall
    # times aside) and no temporaries anywhere (a cell killed between seeds resumes the
    # same way: tests/test_grid.py)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_HOOK)
    cell, metrics = "finetune@vgg16-MINE", "metrics/finetune/vgg16-MINE.json"

    def without_timings(x):
        if isinstance(x, dict):
            return {k: without_timings(v) for k, v in x.items() if k != "epoch_seconds"}
        return [without_timings(v) for v in x] if isinstance(x, list) else x

    before, record = _outs(repo, cell), json.loads((repo / metrics).read_text())
    _kill_midway(repo, env, cell, "MINE", hook)
    assert any(".MINE.tmp-" in p for p in _leftovers(repo))
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
    sets = [a for o in ["profile=demo", *OVERRIDES, "data.databases.ck.neutral_frames=2",
                        "report.bootstrap_resamples=123"] for a in ("-S", o)]
    fourth = run([dvc, "exp", "run", "aggregate", *sets], repo, env)
    assert ran(fourth) == {"baselines", "aggregate"}        # the two that read `report`
    assert "bootstrap_resamples: 123" in (repo / "params.yaml").read_text()
