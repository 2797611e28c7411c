"""Kill-and-rerun: a stage SIGKILLed while its output is half written, then re-run, ends
with the bytes of an uninterrupted run and no temporaries left anywhere."""
import signal
import subprocess
from pathlib import Path

import yaml

from dag import DVC, demo_repo, run

# Loaded by every Python the killed `dvc repro` starts (PYTHONPATH): the moment a stage
# is about to rename the temporary `.<FER_KILL_AT>.tmp-<pid>` onto its output, it
# SIGKILLs its whole process group (itself, its workers and dvc). The temporary is fully
# there then, so the kill always lands midway, not by luck of timing.
KILL_HOOK = '''
import os, re, signal
_replace = os.replace
_target = re.compile(r"\\." + re.escape(os.environ["FER_KILL_AT"]) + r"\\.tmp-\\d+")

def replace(src, dst, *args, **kwargs):
    if _target.fullmatch(os.path.basename(os.fspath(src))):
        os.killpg(0, signal.SIGKILL)
    return _replace(src, dst, *args, **kwargs)

os.replace = replace
'''
WATCHED = ("build", "reports", "metrics")


def _outs(repo: Path, stage: str) -> dict:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    return {o["path"]: o["md5"] for o in lock["outs"]}


def _leftovers(repo: Path) -> list:
    return sorted(str(p.relative_to(repo)) for top in WATCHED for p in (repo / top).rglob("*")
                  if ".tmp-" in p.name or ".old-" in p.name)


def _kill_midway(repo: Path, env: dict, stage: str, output_name: str, hook_dir: Path) -> None:
    env = {**env, "PYTHONPATH": str(hook_dir), "FER_KILL_AT": output_name}
    p = subprocess.run([DVC, "repro", "-f", "-s", stage], cwd=repo, env=env,
                       capture_output=True, text=True, start_new_session=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, f"{stage} was not killed:\n{p.stderr[-2000:]}"


def test_killed_stages_rerun_to_identical_outputs(tmp_path, demo_root):
    repo = tmp_path / "repo"
    env = demo_repo(repo, data=demo_root[0])
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(KILL_HOOK)
    run([DVC, "repro", "augment"], repo, env)
    augment_part = yaml.safe_load((repo / "params.yaml").read_text())["augment"]["part"]
    stages = {"crop@kdef": "kdef", "augment": augment_part}
    before = {s: _outs(repo, s) for s in stages}
    assert len(before["crop@kdef"]) == 3 and len(before["augment"]) == 3

    for stage, output_name in stages.items():
        _kill_midway(repo, env, stage, output_name, hook_dir)
        left = _leftovers(repo)
        assert any(f".{output_name}.tmp-" in p for p in left), left    # killed midway
        run([DVC, "repro", "-f", "-s", stage], repo, env)
        assert _outs(repo, stage) == before[stage]
        assert _leftovers(repo) == []
    status = run([DVC, "status", "augment"], repo, env)
    assert "up to date" in status

