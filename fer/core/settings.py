"""Execution settings: where and how the work runs, never what it computes.

Kept out of params.yaml on purpose: DVC re-runs a stage when a tracked param changes, and
none of these can change a number (tests/test_settings.py), so switching the executor
from local to Ray, moving a cache or changing the number of stages side by side re-runs
nothing. Anything that can change a result stays a tracked param.

Each setting is read from an environment variable, else from the untracked file
`local.yaml` at the repository root (git-ignored; keys as below, lower case without the
FER_ prefix), else its default:

| variable | default | what |
|---|---|---|
| FER_EXECUTOR | local | where seeds, k values and folds train: local (one after another in the stage process) or ray (Ray tasks at RAY_ADDRESS, else a local Ray instance) |
| FER_RAY_CPUS_PER_SEED | 1 | Ray resources of one task |
| FER_RAY_GPUS_PER_SEED | 1 | one seed per GPU (0 where the cluster has no GPU) |
| FER_RAY_MAX_RETRIES | 3 | a task whose worker dies runs again, up to this many times |
| FER_RAY_SHARED_DIR | (none) | a path every Ray worker mounts: datasets are written there once, named by content, instead of going through Ray's object store |
| FER_CACHE_DIR | .cache/activations | the content-keyed activation cache |
| FER_GPU_MEMORY_GROWTH | true | allocate GPU memory as needed, so stages can share a GPU |
| FER_JOBS | 2 | stages at a time for `python -m fer.train.parallel_repro` (`make demo`) |

RAY_ADDRESS and MLFLOW_TRACKING_URI are read by Ray and MLflow themselves.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOCAL_FILE = ROOT / "local.yaml"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Settings:
    executor: str = "local"
    ray_cpus_per_seed: float = 1.0
    ray_gpus_per_seed: float = 1.0
    ray_max_retries: int = 3
    ray_shared_dir: str | None = None
    cache_dir: str = ".cache/activations"
    gpu_memory_growth: bool = True
    jobs: int = 2


class SettingsError(ValueError):
    pass


def _convert(name: str, kind: type, raw, source: str):
    if raw is None or raw == "":
        return None
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{source}: {raw!r} is not a valid {kind.__name__} for "
                            f"{name}") from None


def load(environ=None, local_file: Path = LOCAL_FILE) -> Settings:
    """The settings in force: environment over `local.yaml` over the defaults; a bad value
    is an error naming its variable or file."""
    environ = os.environ if environ is None else environ
    local = {}
    if Path(local_file).is_file():
        local = yaml.safe_load(Path(local_file).read_text()) or {}
        if not isinstance(local, dict):
            raise SettingsError(f"{local_file}: expected a mapping of settings")
        unknown = sorted(set(local) - {f.name for f in fields(Settings)})
        if unknown:
            raise SettingsError(f"{local_file}: unknown setting(s) {unknown}; known: "
                                f"{', '.join(f.name for f in fields(Settings))}")
    values, sources = {}, {}
    for f in fields(Settings):
        kind = {"float": float, "int": int, "bool": bool}.get(str(f.type).split(" ")[0], str)
        var = f"FER_{f.name.upper()}"
        for raw, source in ((environ.get(var), var),
                            (local.get(f.name), f"{local_file}: {f.name}")):
            value = _convert(var, kind, raw, source)
            if value is not None:
                values[f.name], sources[f.name] = value, source
                break
    s = Settings(**values)
    where = {f.name: sources.get(f.name, f"FER_{f.name.upper()} (default)")
             for f in fields(Settings)}
    for name, ok, expected in (
            ("executor", s.executor in EXECUTORS, f"one of {', '.join(EXECUTORS)}"),
            ("jobs", s.jobs >= 1, "at least 1"),
            ("ray_cpus_per_seed", s.ray_cpus_per_seed > 0, "more than 0"),
            ("ray_gpus_per_seed", s.ray_gpus_per_seed >= 0, "0 or more"),
            ("ray_max_retries", s.ray_max_retries >= 0, "0 or more")):
        if not ok:
            raise SettingsError(f"{where[name]} = {getattr(s, name)!r}: expected {expected}")
    return s


def worker_env(s: Settings | None = None) -> dict:
    """The driver's settings as FER_* variables for a Ray worker, which has neither the
    driver's environment nor its local.yaml (the cache folder made absolute)."""
    s = s or load()
    values = {**{f.name: getattr(s, f.name) for f in fields(Settings)},
              "cache_dir": str((ROOT / s.cache_dir).resolve())}
    return {f"FER_{k.upper()}": str(v) for k, v in values.items() if v is not None}
