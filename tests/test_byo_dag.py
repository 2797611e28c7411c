"""Configuration drives the DAG: a user's own databases (no KDEF, no GAN) through `dvc
repro` with only YAML written, in a fresh copy of the repository."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer.params import ROOT

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
OVERRIDES = ["data=byo", "merge=byo", "profile=demo", "crop.size=32", "augment.source=jaffe",
             "augment.part=jaffe_da", "augment.copies=1", "gan.emotions=[]",
             "grid.models=[vgg16]", "grid.train_sets=[MINE]", "grid.test_sets=[CKT]",
             "train.seeds=1", "train.max_images=null", "train.batch_size=16"]


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def _ran(log):
    return set(re.findall(r"Running stage '([^']+)'", log))


@pytest.mark.slow
def test_own_databases_without_kdef_or_gan_run_end_to_end(tmp_path):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for f in files:
        if (ROOT / f).is_file() and not f.startswith(("data/", "metrics/", "reports/")) \
                and f != "dvc.lock":
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    (repo / "conf/data/byo.yaml").write_text(DATA)
    (repo / "conf/merge/byo.yaml").write_text(MERGE)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"],
           "TF_CPP_MIN_LOG_LEVEL": "2", "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'm.db'}"}
    py, dvc = sys.executable, str(Path(bindir) / "dvc")
    _run(["git", "init", "-q"], repo, env)
    _run([py, "-m", "fer.demo_data", "data"], repo, env)
    shutil.rmtree(repo / "data/KDEF")                     # the user has no KDEF
    _run([dvc, "add", "-q", "data"], repo, env)
    _run([py, "-m", "fer.params", *OVERRIDES], repo, env)

    first = _run([dvc, "repro", "aggregate"], repo, env)
    assert _ran(first) == {"import@jaffe", "import@faces", "import@ck", "crop@jaffe",
                           "crop@faces", "crop@ck", "augment", "merge",
                           "finetune@vgg16-MINE", "aggregate"}
    stages = _run([dvc, "stage", "list"], repo, env)
    assert "gan@" not in stages and "import@kdef" not in stages
    counts = json.loads((repo / "metrics/datasets.json").read_text())
    assert counts["MINE"] == 2 * 70 + 56 and set(counts) == {"MINE", "CKT"}
    cell = json.loads((repo / "metrics/finetune/vgg16-MINE.json").read_text())
    assert set(cell["summary"]) == {"CKT"} and cell["selection"]["on"] == "val"
    assert (repo / "build/testsets/CKT/images.npy").is_file()
    assert "MINE" in (repo / "reports/tables/table3.md").read_text()

    second = _run([dvc, "repro", "aggregate"], repo, env)
    assert _ran(second) == set() and "up to date" in second

    # a test database's option changes: exactly its chain re-runs, the train side does not
    _run([py, "-m", "fer.params", *OVERRIDES, "data.databases.ck.neutral_frames=2"], repo, env)
    third = _run([dvc, "repro", "aggregate"], repo, env)
    assert _ran(third) == {"import@ck", "crop@ck", "merge", "finetune@vgg16-MINE",
                           "aggregate"}
