import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_stage_times_splits_wall_time_at_dvc_stage_lines_and_keeps_the_exit_status():
    script = ("import time; print('Verifying data sources'); time.sleep(0.2); "
              "print(\"Running stage 'crop@kdef':\"); time.sleep(0.6); "
              "print(\"Stage 'augment' didn't change, skipping\"); "
              "print(\"Running stage 'merge':\"); time.sleep(0.3); raise SystemExit(3)")
    p = subprocess.run([sys.executable, ROOT / "bench/stage_times.py", sys.executable, "-c",
                        script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3
    assert "Stage 'augment' didn't change, skipping" in p.stdout      # passed through
    out = json.loads(p.stdout[p.stdout.index("{"):])
    assert list(out["stages_s"]) == ["crop@kdef", "merge"]
    assert 0.55 <= out["stages_s"]["crop@kdef"] < 2 and 0.25 <= out["stages_s"]["merge"] < 2
    assert out["total_s"] >= 1.0 and out["returncode"] == 3


def test_stage_times_saves_its_json_and_cell_overhead_splits_a_cell(tmp_path):
    script = "import time; print(\"Running stage 'finetune@vgg16-TINY':\"); time.sleep(0.5)"
    saved = tmp_path / "times.json"
    p = subprocess.run([sys.executable, ROOT / "bench/stage_times.py", "--save", saved,
                        sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0
    assert json.loads(saved.read_text()) == json.loads(p.stdout[p.stdout.index("{"):])
    times = json.loads(saved.read_text())
    times["stages_s"]["finetune@vgg16-TINY"] = 20.0        # a known wall time
    saved.write_text(json.dumps(times))
    cell = {"cell": "vgg16-TINY", "model": "vgg16", "per_seed": [
        {"epoch_seconds": {"step1": [3.0], "step2": [5.0],
                           "cache": {"build_s": 2.5, "hit": False}}},
        {"epoch_seconds": {"step1": [1.0], "step2": [2.0],
                           "cache": {"build_s": 0, "hit": True}}}]}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/vgg16-TINY.json").write_text(json.dumps(cell))
    p = subprocess.run([sys.executable, ROOT / "bench/cell_overhead.py", saved,
                        "--metrics", tmp_path / "metrics"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # steady: 2 seeds x (1 + 2) s = 6 s of 20 s; the first seed's extra 8 - 3 = 5 s
    assert out["cells"]["vgg16-TINY"] == {
        "wall_s": 20.0, "seeds": 2, "steady_training_s": 6.0, "first_seed_extra_s": 5.0,
        "cache_build_s": 2.5, "overhead_share": 0.7}
    assert out["backbones"] == {"vgg16": {"wall_s": 20.0, "steady_training_s": 6.0,
                                          "overhead_share": 0.7}}
    assert out["concurrent_stages"] == 1                     # a dvc repro: one at a time
    saved.write_text(json.dumps({**times, "jobs": 2}))       # fer.train.parallel_repro -j 2
    p = subprocess.run([sys.executable, ROOT / "bench/cell_overhead.py", saved,
                        "--metrics", tmp_path / "metrics"], capture_output=True, text=True,
                       timeout=60)
    assert json.loads(p.stdout)["concurrent_stages"] == 2


def test_cell_overhead_leaves_a_one_seed_cell_out_of_the_sums(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("cell_overhead",
                                                  ROOT / "bench/cell_overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    one = {"per_seed": [{"epoch_seconds": {"step1": [3.0], "step2": [5.0]}}]}
    row = mod.cell_overhead(10.0, one)
    assert row["steady_training_s"] is None and row["overhead_share"] is None
    assert row["seeds"] == 1 and row["cache_build_s"] == 0
    p = subprocess.run([sys.executable, ROOT / "bench/stage_times.py", "--save", "x.json"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode != 0 and "usage" in p.stderr and not (tmp_path / "x.json").exists()


# heavy (~25 s: two fresh TensorFlow processes; out of `make test`): the one-trace
# behaviour it measures is tested by tests/test_activations.py::test_an_entry_traces_*
@pytest.mark.heavy
def test_cache_trace_builds_both_ways_and_reports_their_ratio():
    p = subprocess.run([sys.executable, ROOT / "bench/cache_trace.py", "--models", "vgg16",
                        "--size", "32", "--images", "40"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})  # as make
    assert p.returncode == 0, p.stderr[-2000:]
    (row,) = json.loads(p.stdout)["cache_trace"]
    assert row["model"] == "vgg16" and row["images"] == 40 and row["k"] == 5
    assert set(row["seconds"]) == {"predict_on_batch", "one_trace"}
    assert row["ratio"] == round(row["seconds"]["predict_on_batch"]
                                 / row["seconds"]["one_trace"], 2)
    assert row["max_abs_diff"] < 1e-4             # the same activations, up to rounding
