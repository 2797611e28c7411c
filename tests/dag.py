"""A fresh copy of this repository with the demo data, for tests that run DVC itself."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fer.core.params import ROOT

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")


def run(cmd, cwd, env) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def ran(log) -> set:
    """The stages a `dvc repro`/`dvc exp run` log says it ran."""
    return set(re.findall(r"Running stage '([^']+)'", log))


def demo_env() -> dict:
    env = {**os.environ, "PATH": str(BIN) + os.pathsep + os.environ["PATH"],
           "TF_CPP_MIN_LOG_LEVEL": "2", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def demo_repo(repo: Path, *overrides: str, data: Path | None = None,
              extra_files: dict | None = None) -> dict:
    """Copy the tracked and untracked-unignored files (no data, metrics, reports or lock)
    to `repo`, add `extra_files` ({relative path: text}, e.g. a user's conf/ group files), put
    the demo data in (a copy of `data`, the session's `demo_root`, or written afresh),
    `dvc add` it, compose params.yaml with the demo profile plus `overrides`, commit;
    returns the environment to run dvc with."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file() and not f.startswith(("data/", "metrics/", "reports/")) \
                and f != "dvc.lock":
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    for f, text in (extra_files or {}).items():
        (repo / f).write_text(text)
    if (ROOT / "web/node_modules").is_dir():          # TF.js for the edge/baselines stages
        (repo / "web/node_modules").symlink_to(ROOT / "web/node_modules")
    env = demo_env()
    py = sys.executable
    run(["git", "init", "-q"], repo, env)
    if data is None:
        run([py, "-m", "fer.data.demo", "data"], repo, env)
    else:
        shutil.copytree(data, repo / "data")
    run([DVC, "add", "-q", "data"], repo, env)
    run([py, "-m", "fer.core.params", "profile=demo", *overrides], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "demo"], repo, env)
    return env


def exp_show_metrics(repo, env) -> list[dict]:
    """`dvc exp show --json`: for each row it shows (workspace, commits, experiments) its
    metric leaves as {"<file>:<dotted key>": value}."""
    out = subprocess.run([DVC, "exp", "show", "--json"], cwd=repo, env=env, capture_output=True,
                         text=True, check=True).stdout
    rows = []

    def leaves(d, prefix):
        if isinstance(d, dict):
            return {k: v for key, val in d.items()
                    for k, v in leaves(val, f"{prefix}.{key}").items()}
        return {prefix: d}

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("metrics"), dict):
                rows.append({k.replace(":.", ":", 1): v for f, m in node["metrics"].items()
                             for k, v in leaves(m.get("data", {}), f + ":").items()})
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(out))
    return rows
