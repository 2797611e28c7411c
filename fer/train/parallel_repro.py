"""`dvc repro` with up to N stages running at once.

Each stage to run (changed or downstream of a change, within the targets and their upstream
stages) runs as `dvc --wait-for-lock repro --single-item <stage>` once its upstream stages
have finished, up to N at a time, longest chain first. The first failure stops new starts,
Ctrl-C or SIGTERM stops the running stages, and `dvc.lock` is rewritten in `dvc.yaml` order.
`--gpus 0,1`: a stage in slot i sees only GPU i mod len. Details: docs/scale-out.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pydot


def read_dag(dot: str) -> tuple[list, dict]:
    """Stages in file order and each stage's upstream stages, from `dvc dag --dot` (networkx's
    pydot output, read back the same way; a `.dvc` file is a node too: `repro --single-item
    data.dvc` records changed data first)."""
    graph = nx.nx_pydot.from_pydot(pydot.graph_from_dot_data(dot)[0])
    return list(graph), {s: set(graph.predecessors(s)) for s in graph}


def dag(upstream: dict) -> nx.DiGraph:
    """`upstream` as a graph with edges pointing downstream (networkx: DVC's own graphs)."""
    return nx.from_dict_of_lists(upstream, create_using=nx.DiGraph).reverse()


def to_run(stages: list, upstream: dict, changed: set, targets: list) -> list:
    """The changed stages and everything downstream of them, within the targets and
    their upstream stages (all stages without targets), in file order."""
    graph = dag(upstream)
    run = {s for c in changed if c in graph for s in (c, *nx.descendants(graph, c))}
    if targets:
        run &= {s for t in targets for s in (t, *nx.ancestors(graph, t))}
    return [s for s in stages if s in run]


def priorities(stages: list, upstream: dict) -> dict:
    """Each stage's rank for starting first: the stages on the longest path from it to the
    end of the DAG, then its position in the file (later first), so long chains start early
    and what is started gets finished (durations are not weighed: docs/scale-out.md)."""
    graph, depth = dag(upstream), {}
    for s in reversed(list(nx.topological_sort(graph))):
        depth[s] = 1 + max((depth[d] for d in graph.successors(s)), default=0)
    return {s: (depth[s], i) for i, s in enumerate(stages)}


def order_lockfile(path: Path, stages: list) -> None:
    """Rewrite `dvc.lock` with its stages in `stages` order (DVC appends an entry when a
    stage first finishes)."""
    if not path.is_file():
        return
    from dvc.repo import Repo
    from dvc.utils.serialize import modify_yaml
    with Repo(str(path.parent)) as repo, repo.lock, modify_yaml(str(path)) as data:
        entries = data.get("stages") or {}
        rank = {s: i for i, s in enumerate(stages)}
        keys = sorted(entries, key=lambda s: (rank.get(s, len(rank)), s))
        if list(entries) != keys:
            data["stages"] = {k: entries[k] for k in keys}


@dataclass
class Running:
    """A stage's `dvc repro` process, its output thread, start time and slot (GPU)."""
    process: subprocess.Popen
    pump: threading.Thread
    began: float
    slot: int


def pump(stage: str, stream, prefixed: bool, lock: threading.Lock) -> None:
    """Pass a stage's output through, whole lines, prefixed when several share the terminal."""
    for line in stream:
        with lock:
            sys.stdout.write(f"{stage}| {line}" if prefixed else line)
            sys.stdout.flush()


def _dvc_output(dvc: str, *args) -> str:
    p = subprocess.run([dvc, "--wait-for-lock", *args], capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"parallel_repro: `dvc {' '.join(args)}` failed:\n{p.stderr.strip()}")
    return p.stdout


def run(jobs: int, targets: list, dvc: str, save=None, gpus=()) -> int:
    start = time.perf_counter()
    stages, upstream = read_dag(_dvc_output(dvc, "dag", "--dot"))
    unknown = [t for t in targets if t not in upstream]
    if unknown:
        print(f"parallel_repro: no stage named {', '.join(unknown)} in the DAG "
              f"(stages: {', '.join(stages)})", file=sys.stderr)
        return 2
    status = _dvc_output(dvc, "status", "--json")
    pending = to_run(stages, upstream, set(json.loads(status or "{}")), targets)
    planned = set(pending)
    rank = priorities(stages, upstream)
    print(f"parallel_repro: {len(pending)} of {len(stages)} stages to check, "
          f"{jobs} at a time", flush=True)
    env = {**os.environ, "FER_CONCURRENT_STAGES": str(jobs)}
    lock = threading.Lock()
    running, done, seconds, intervals, failed = {}, set(), {}, {}, None
    try:
        while pending or running:
            while failed is None and pending and len(running) < jobs:
                ready = [s for s in pending
                         if all(u in done or u not in planned for u in upstream[s])]
                if not ready:
                    break
                ready = max(ready, key=rank.get)
                pending.remove(ready)
                slot = min(set(range(jobs)) - {r.slot for r in running.values()})
                stage_env = env if not gpus else {
                    **env, "CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]}
                p = subprocess.Popen([dvc, "--wait-for-lock", "repro", "--single-item",
                                      ready], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", bufsize=1, env=stage_env,
                                     start_new_session=True)   # stopped as a group: below
                pumping = threading.Thread(target=pump, args=(ready, p.stdout, jobs > 1, lock))
                pumping.start()
                running[ready] = Running(p, pumping, time.perf_counter(), slot)
            if not running:
                break
            finished = _wait_any(running)
            r = running.pop(finished)
            r.pump.join()
            now = time.perf_counter()
            seconds[finished] = round(now - r.began, 1)
            intervals[finished] = [round(r.began - start, 1), round(now - start, 1)]
            if r.process.returncode == 0:
                done.add(finished)
            elif failed is None:
                failed = (finished, r.process.returncode)
    except BaseException:            # Ctrl-C, SIGTERM (main), an error here: stop the stages
        stop([r.process for r in running.values()])
        for r in running.values():
            r.process.wait()
            r.pump.join()
        raise
    order_lockfile(Path("dvc.lock"), stages)
    total = time.perf_counter() - start
    code = failed[1] if failed else 0
    if failed:
        print(f"parallel_repro: stage '{failed[0]}' failed (exit {failed[1]}); not run: "
              f"{', '.join(pending) or 'nothing'}", file=sys.stderr)
    text = json.dumps({"command": f"python -m fer.train.parallel_repro -j {jobs}"
                       + "".join(f" {t}" for t in targets),
                       "returncode": code, "jobs": jobs, "total_s": round(total, 1),
                       "stages_s": seconds, "intervals_s": intervals}, indent=1)
    print(text)
    if save:
        from fer.core.atomic import write_text
        write_text(save, text + "\n")
    return code


STOP_GRACE_S = 20.0


def _group_alive(p: subprocess.Popen) -> bool:
    if p.poll() is None:
        return True
    try:                             # the leader (dvc) is gone; its command may not be
        os.killpg(p.pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop(processes: list, grace: float = STOP_GRACE_S) -> None:
    """Stop each stage's process group (dvc and its command): SIGINT, as Ctrl-C would (dvc
    records nothing), then SIGTERM to groups alive after `grace` seconds, SIGKILL after as
    long again (a command that ignores SIGINT, e.g. a shell's background job)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in processes if _group_alive(p)]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _group_alive(p)]
            time.sleep(0.05)
        if not alive:
            return


def _wait_any(running: dict) -> str:
    """The name of a running stage whose process has ended (polls: portable)."""
    while True:
        for stage, r in running.items():
            if r.process.poll() is not None:
                return stage
        time.sleep(0.2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-j", "--jobs", type=int, default=None,
                    help="stages at a time (default: the FER_JOBS execution setting, 2)")
    ap.add_argument("--save", help="also write the per-stage times JSON to this file")
    beside = Path(sys.executable).with_name("dvc")     # this environment's dvc
    ap.add_argument("--dvc", default=str(beside) if beside.is_file()
                    else shutil.which("dvc") or "dvc",
                    help="the dvc executable (default: the one beside this Python, or on PATH)")
    ap.add_argument("--gpus", default="",
                    help="comma-separated GPU ids: a stage started in slot i of N sees only "
                         "GPU i mod len (CUDA_VISIBLE_DEVICES); default: every stage sees all")
    ap.add_argument("targets", nargs="*", help="stages to bring up to date (default: all)")
    args = ap.parse_args(argv)
    if args.jobs is None:
        from fer.core.settings import load
        args.jobs = load().jobs
    if args.jobs < 1:
        ap.error(f"-j must be 1 or more, not {args.jobs}")
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()]
    # SIGTERM unwinds like Ctrl-C (the stages are stopped and waited for); SIGINT counts
    # even where it was ignored (a shell's background job), and the stages inherit that
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args.jobs, args.targets, args.dvc, args.save, gpus)
    except KeyboardInterrupt:
        print("parallel_repro: interrupted; the running stages were stopped", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
