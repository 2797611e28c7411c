"""The DVC DAG end to end on the demo data, in a fresh copy of the repository."""
import json

import numpy as np
import pytest

from fer.data.demo import SIZES
from fer.data.labels import EMOTIONS

from dag import DVC as dvc, demo_repo, ran as _ran, run as _run

FAST_GAN = ["gan.epochs=4", "gan.keep_from=2", "gan.keep_every=2", "gan.sample_every=2"]


# heavy (185 s, out of `make test`): tests/test_byo_dag.py runs the DAG through DVC (repro,
# no-op repro, exact re-runs, `dvc exp run -S`), tests/test_resume.py a crop and a
# GAN through DVC, and the stages' own tests the counts; `make demo` runs all of this
@pytest.mark.heavy
def test_demo_dag_repro_and_exp_run(tmp_path, demo_root):
    repo = tmp_path / "repo"
    env = demo_repo(repo, *FAST_GAN, data=demo_root[0])

    # the data half (the fine-tune grid takes ~20 CPU minutes; tests/test_grid.py covers
    # a cell through the same stage script)
    first = _run([dvc, "repro", "merge"], repo, env)
    assert {"import@kdef", "crop@ck", "augment", "gan@sad", "merge"} <= _ran(first)
    counts = json.loads((repo / "metrics/datasets.json").read_text())
    # the frontal KDEF faces and 5 copies each, the PFA faces, 20 GAN images per emotion
    s = SIZES["demo"]
    ol = 2 * s.kdef_per_sex * len(s.kdef_sessions) * 7 * (1 + 5)
    pfa, gan_q = 7 * 2 * s.kdef_per_sex * len(s.pfa_sessions), 7 * 20
    assert counts["KDEF_OL"] == ol and counts["KDEF_PFA"] == ol + pfa
    assert counts["KDEF_Q"] == ol + gan_q and counts["KDEF_PFA_Q"] == ol + pfa + gan_q
    assert counts["JAFFE"] == 70 and counts["CK+"] > 0
    assert (repo / "reports/augment_grid.png").stat().st_size > 1000
    assert np.load(repo / "build/derived/gan_q/fear/images.npy").shape[0] == 20
    gan = json.loads((repo / "metrics/gan/fear.json").read_text())
    assert gan["chosen_epoch"] in (2, 4) and set(gan["kid"]) == {"2", "4"}
    import mlflow
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["dcgan"])
    assert sorted(runs["tags.mlflow.runName"]) == sorted(f"dcgan-{e}" for e in EMOTIONS)
    assert {"metrics.d_loss", "metrics.g_loss", "metrics.kid", "params.gan.epochs",
            "tags.git_commit"} <= set(runs.columns)
    history = mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "d_loss")
    assert [m.step for m in history] == [1, 2, 3, 4]

    second = _run([dvc, "repro", "merge"], repo, env)
    assert _ran(second) == set() and "up to date" in second

    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "lock"], repo, env)
    sets = ["-S", "profile=demo", *[a for o in FAST_GAN for a in ("-S", o)]]
    third = _run([dvc, "exp", "run", "merge", *sets, "-S", "augment.rotation=0.05"], repo, env)
    assert _ran(third) == {"augment", "merge"}
    assert "rotation: 0.05" in (repo / "params.yaml").read_text()
