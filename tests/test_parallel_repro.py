"""`python -m fer.train.parallel_repro` on a real four-stage DVC project (a -> b, c -> d): stages
that do not depend on each other run side by side, none starts before its upstream
stages end, a failure stops the run and names the stage, and `dvc.lock` lists stages
in `dvc.yaml` order whatever order they finished in."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fer.train.parallel_repro import priorities, read_dag, stop, to_run

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")

# each stage records when it ran, sleeps (or waits for another stage to start: overlap
# without relying on timing), and writes its output from its inputs' bytes
STAMP = """\
import json, os, sys, time
from pathlib import Path
name, ins = sys.argv[1], sys.argv[2:]
began = time.time()
Path("started").mkdir(exist_ok=True)
Path("started", name).write_text("")
if Path("wait_" + name).exists():
    other = Path("started", Path("wait_" + name).read_text())
    while not other.exists() and time.time() < began + 60:
        time.sleep(0.05)
time.sleep(float(Path("sleep_" + name).read_text()) if Path("sleep_" + name).exists() else 0.5)
if Path("fail_" + name).exists():
    sys.exit(3)
Path(name + ".txt").write_text(name + "(" + ",".join(Path(i).read_text() for i in ins) + ")")
Path("times").mkdir(exist_ok=True)
Path("times", name).write_text(json.dumps([began, time.time()] + [os.environ.get(v) for v in (
    "CUDA_VISIBLE_DEVICES", "FER_CONCURRENT_STAGES", "TF_FORCE_GPU_ALLOW_GROWTH")]))
"""

# c sleeps longer than b: finished first, b would come first in an unordered dvc.lock
DVC_YAML = {"stages": {
    "a": {"cmd": "python stamp.py a data/x", "deps": ["stamp.py", "data"], "outs": ["a.txt"]},
    "c": {"cmd": "python stamp.py c a.txt", "deps": ["stamp.py", "a.txt"], "outs": ["c.txt"]},
    "b": {"cmd": "python stamp.py b a.txt", "deps": ["stamp.py", "a.txt"], "outs": ["b.txt"]},
    "d": {"cmd": "python stamp.py d b.txt c.txt",
          "deps": ["stamp.py", "b.txt", "c.txt"], "outs": ["d.txt"]},
}}


@pytest.fixture
def project(tmp_path):
    env = {**os.environ, "PATH": f"{Path(DVC).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    for var in ("CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH", "FER_CONCURRENT_STAGES"):
        env.pop(var, None)
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/x").write_text("x1")
    subprocess.run([DVC, "add", "data", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "stamp.py").write_text(STAMP)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (tmp_path / "wait_b").write_text("c")          # b runs until c has started
    (tmp_path / "sleep_c").write_text("1.5")       # and c ends after b
    return tmp_path, env


def repro(project, *args):
    root, env = project
    p = subprocess.run([sys.executable, "-m", "fer.train.parallel_repro", *args], cwd=root, env=env,
                       capture_output=True, text=True, timeout=180)
    report = json.loads(p.stdout[p.stdout.rindex("\n{") + 1:])
    return p, report


def interval(root, name):
    return json.loads((root / "times" / name).read_text())[:2]


def stage_env(root, name):
    return json.loads((root / "times" / name).read_text())[2:]


def test_independent_stages_overlap_and_none_starts_before_its_inputs(project):
    root, _ = project
    p, report = repro(project, "-j", "2", "--gpus", "0,1")
    assert p.returncode == 0, p.stderr
    assert set(report["stages_s"]) == {"a", "b", "c", "d"} and report["jobs"] == 2
    assert (root / "d.txt").read_text() == "d(b(a(x1)),c(a(x1)))"
    a, b, c, d = (interval(root, s) for s in "abcd")
    assert b[0] < c[1] and c[0] < b[1], "b and c did not run side by side"
    assert a[1] <= min(b[0], c[0]) and max(b[1], c[1]) <= d[0]
    assert list(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == ["a", "c", "b", "d"]
    assert "b| " in p.stdout and "c| " in p.stdout           # output prefixed per stage
    # one GPU per running stage, each stage told it shares; GPU memory growth is left to
    # the stage (stages/__init__.py hands TensorFlow the FER_GPU_MEMORY_GROWTH setting)
    assert {stage_env(root, "b")[0], stage_env(root, "c")[0]} == {"0", "1"}
    assert stage_env(root, "a") == ["0", "2", None]
    assert c[1] > b[1]                                         # c ended last

    p, report = repro(project, "-j", "2")                      # up to date: nothing runs
    assert p.returncode == 0 and report["stages_s"] == {}

    (root / "data/x").write_text("x2")          # new data, not yet recorded in data.dvc
    p, report = repro(project, "-j", "2", "c")  # c and what it needs: data.dvc, a
    assert p.returncode == 0, p.stderr
    assert set(report["stages_s"]) == {"data.dvc", "a", "c"}
    assert (root / "c.txt").read_text() == "c(a(x2))" and (root / "b.txt").read_text() == "b(a(x1))"
    status = subprocess.run([DVC, "status", "--json", "data.dvc"], cwd=root, env=project[1],
                            capture_output=True, text=True, check=True).stdout
    assert json.loads(status) == {}                            # the new data is recorded


def test_a_failed_stage_stops_the_run_and_is_named(project):
    root, _ = project
    (root / "fail_b").write_text("")
    (root / "wait_b").unlink()
    p, report = repro(project, "-j", "2")
    assert p.returncode == report["returncode"] != 0            # dvc's status (255)
    assert f"stage 'b' failed (exit {p.returncode}); not run: d" in p.stderr
    assert not (root / "d.txt").exists() and (root / "c.txt").exists()
    assert "d" not in report["stages_s"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])    # kill; Ctrl-C
def test_a_signal_stops_the_running_stages_and_keeps_nothing(project, sig):
    root, env = project
    (root / "sleep_a").write_text("60")
    p = subprocess.Popen([sys.executable, "-m", "fer.train.parallel_repro", "-j", "2"], cwd=root,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while not (root / "started/a").exists() and time.time() < deadline:
        time.sleep(0.1)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=30)                # not the stage's 60 s
    assert p.returncode == 128 + sig, out
    assert not (root / "a.txt").exists() and not (root / "times/a").exists()
    lock = root / "dvc.lock"
    assert not lock.exists() or "a" not in (yaml.safe_load(lock.read_text()) or {}).get(
        "stages", {})
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and
            _cwd(pid) == str(root)]
    assert left == [], "stage processes outlived the run"


def test_a_stage_that_ignores_sigint_is_terminated_after_the_grace_period():
    p = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal("
                          "signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); "
                          "time.sleep(60)"], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    assert p.stdout.readline() == "ready\n"
    began = time.monotonic()
    stop([p], grace=1.0)
    assert p.wait(timeout=5) == -signal.SIGTERM and time.monotonic() - began < 5


def _cwd(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def test_one_job_runs_the_stages_one_after_another(project):
    root, env = project
    (root / "wait_b").unlink()                     # one at a time: b cannot wait for c
    # no -j: the FER_JOBS execution setting decides (default 2)
    p, report = repro((root, {**env, "FER_JOBS": "1"}))
    assert p.returncode == 0, p.stderr
    spans = sorted(interval(root, s) for s in "abcd")
    assert all(x[1] <= y[0] for x, y in zip(spans, spans[1:]))
    assert "b| " not in p.stdout                               # one stage: no prefixes
    assert stage_env(root, "b") == [None, "1", None]          # alone: nothing set but N


def test_unknown_target_is_refused_before_anything_runs(project):
    root, env = project
    p = subprocess.run([sys.executable, "-m", "fer.train.parallel_repro", "e"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no stage named e" in p.stderr
    assert not (root / "a.txt").exists()


def test_the_plan_follows_changes_downstream_and_targets_upstream():
    dot = "\n".join(['strict digraph {', '"data.dvc";', '"a";', '"b";', '"c";', '"d";',
                     '"data.dvc" -> "a";', '"a" -> "b";', '"a" -> "c";', '"b" -> "d";',
                     '"c" -> "d";', '}'])
    stages, upstream = read_dag(dot)
    assert stages == ["data.dvc", "a", "b", "c", "d"] and upstream["d"] == {"b", "c"}
    assert upstream["a"] == {"data.dvc"} and upstream["data.dvc"] == set()
    assert to_run(stages, upstream, {"b"}, []) == ["b", "d"]
    assert to_run(stages, upstream, {"data.dvc"}, ["c"]) == ["data.dvc", "a", "c"]
    assert to_run(stages, upstream, set(), []) == []


def test_the_longest_chain_starts_first_then_the_deepest_stage():
    # merge -> cell1, cell2 -> aggregate; cell2 -> export -> edge (the demo's shape)
    stages = ["merge", "cell1", "cell2", "aggregate", "export", "edge"]
    upstream = {"merge": set(), "cell1": {"merge"}, "cell2": {"merge"},
                "aggregate": {"cell1", "cell2"}, "export": {"cell2"}, "edge": {"export"}}
    rank = priorities(stages, upstream)
    assert {s: r[0] for s, r in rank.items()} == {"merge": 4, "cell1": 2, "cell2": 3,
                                                  "aggregate": 1, "export": 2, "edge": 1}
    assert max(["cell1", "cell2"], key=rank.get) == "cell2"    # its chain is longer
    assert max(["cell1", "export"], key=rank.get) == "export"  # equal: the deeper one
